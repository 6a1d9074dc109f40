//! The CUDA device library (headers under cuda/), embedded by build.rs so a
//! downstream build can write it next to generated kernels without a prism
//! checkout.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/device_library.rs"));

/// Write every header under `dir` (e.g. `dir/prism/common.cuh`), so that
/// `nvcc -I dir` finds them. Returns the paths of the headers.
///
/// Safe while other threads or processes compile against `dir` (prism
/// bench and the tuner compile workloads in parallel, each writing the
/// library first): a header whose content is already right is left alone,
/// and any other is written to a temporary file and renamed over the old
/// one, so a reader sees the old or the new header, never a truncated
/// one. (A plain rewrite once made nvcc fail on an H200 with "namespace
/// prism has no member FlashPartial".)
pub fn write_to(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut written = Vec::new();
    for (rel, text) in DEVICE_LIBRARY {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
            written.push(path);
            continue;
        }
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        std::fs::write(&tmp, text)?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        written.push(path);
    }
    Ok(written)
}
