//! Build script of the prism library: embeds the device library (the CUDA
//! headers under cuda/) into the crate, with a fingerprint of their contents.
//!
//! Generated kernels include these headers. A downstream crate that uses prism
//! from its own build.rs gets them from the compiled prism library (written
//! next to the generated .cu before nvcc runs), so it needs no prism checkout.
//! The fingerprint goes into every cache key of compiled kernels: editing a
//! header invalidates them. Adding a header needs no code change.
//!
//! It also fingerprints prism's own sources (`src/**/*.rs`): the search
//! cache keys on it, so a prism whose search changed never reuses choices
//! an older one made.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, exts, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// The files under `dir` with one of `exts` (sorted, with their paths
/// relative to `dir`, `/`-separated) and a fingerprint of paths and
/// contents; `Err` is the `cargo::error` to print.
fn fingerprint(dir: &Path, exts: &[&str]) -> Result<(u64, Vec<(String, PathBuf)>), String> {
    let mut files = Vec::new();
    collect(dir, exts, &mut files).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    files.sort();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let rel = f
            .strip_prefix(dir)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        hash = fnv1a(rel.as_bytes(), hash);
        hash = fnv1a(&bytes, hash);
        out.push((rel, f));
    }
    Ok((hash, out))
}

/// The fingerprint of prism's sources, written to `OUT_DIR/source_hash.rs`.
fn source_hash(root: &Path) {
    println!("cargo::rerun-if-changed=src");
    let hash = match fingerprint(&root.join("src"), &["rs"]) {
        Ok((hash, _)) => hash,
        Err(e) => {
            println!("cargo::error={e}");
            return;
        }
    };
    let text = format!(
        "/// Fingerprint of prism's sources (paths and contents).\npub const SOURCE_HASH: u64 = {hash:#018x};\n"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("source_hash.rs");
    if let Err(e) = std::fs::write(&out, text) {
        println!("cargo::error=cannot write {}: {e}", out.display());
    }
}

/// FNV-1a, 64-bit: a stable content fingerprint with no dependency.
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    source_hash(&root);
    let cuda = root.join("cuda");
    println!("cargo::rerun-if-changed=cuda");
    let (hash, files) = match fingerprint(&cuda, &["cuh", "h"]) {
        Ok(x) => x,
        Err(e) => {
            println!("cargo::error=the device library: {e}");
            return;
        }
    };
    let mut src =
        String::from("/// The device library: (path under cuda/, contents), sorted by path.\n");
    src.push_str("pub const DEVICE_LIBRARY: &[(&str, &str)] = &[\n");
    for (rel, f) in &files {
        let _ = writeln!(
            src,
            "    ({rel:?}, include_str!({:?})),",
            f.display().to_string()
        );
    }
    src.push_str("];\n");
    let _ = writeln!(
        src,
        "/// Fingerprint of the device library's paths and contents.\npub const DEVICE_LIBRARY_HASH: u64 = {hash:#018x};"
    );
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("device_library.rs");
    if let Err(e) = std::fs::write(&out, src) {
        println!("cargo::error=cannot write {}: {e}", out.display());
    }
}
