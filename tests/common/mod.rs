//! Helpers shared by the integration tests.

use std::path::PathBuf;
use std::process::{Command, Output};

/// nvcc, or `None` (with a notice) when it is missing and not required.
/// With `PRISM_REQUIRE_NVCC` set (CI sets it to 1) a missing nvcc fails the
/// test instead of skipping it.
#[allow(dead_code)] // not every test crate compiles
pub fn nvcc() -> Option<PathBuf> {
    match prism::nvcc::find() {
        Ok(n) => Some(n),
        Err(e) if std::env::var_os("PRISM_REQUIRE_NVCC").is_none() => {
            eprintln!("skipping: {e}\n(set PRISM_REQUIRE_NVCC=1 to make this a failure)");
            None
        }
        Err(e) => panic!("PRISM_REQUIRE_NVCC is set but nvcc is missing: {e}"),
    }
}

/// The `prism` binary run with `args` in the crate root, colours off.
#[allow(dead_code)] // not every test crate runs the binary
pub fn prism(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(args)
        .env("NO_COLOR", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("prism runs")
}

/// Captured output as text.
#[allow(dead_code)]
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A fresh, empty directory under the system temp dir
/// (`prism-<what>-<pid>-<name>`), removed on drop.
#[allow(dead_code)] // not every test crate uses it
pub struct TempDir(pub PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// [`TempDir`] `prism-<what>-<pid>-<name>`, created empty.
#[allow(dead_code)] // not every test crate uses it
pub fn temp_dir(what: &str, name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("prism-{what}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}

/// Choices drawn from proptest's vector for the program generators of the
/// property tests; 0 (also past the end) is always the simplest option, so
/// shrinking simplifies the program.
#[allow(dead_code)] // not every test crate uses it
pub struct Tape<'a> {
    /// The choices.
    pub choices: &'a [u32],
    /// How many were taken.
    pub at: usize,
}

#[allow(dead_code)] // not every test crate uses every method
impl Tape<'_> {
    /// The next choice, below `n`.
    pub fn pick(&mut self, n: usize) -> usize {
        let c = self.choices.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        c as usize % n.max(1)
    }

    /// True with probability `num / den` (false for a zero choice).
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.pick(den) >= den - num
    }

    /// One of `items`.
    pub fn of<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.pick(items.len())]
    }
}

/// The bundled prism.toml and, per workload, what a build embeds: the
/// variants the committed prism.lock names (resolved offline, as CI
/// builds) and their generated kernels.
#[allow(dead_code)] // not every test crate reads the lock
pub fn bundled_locked() -> (
    prism::ir::Spec,
    Vec<(
        prism::tune::resolve::Resolution,
        prism::codegen::WorkloadKernels,
    )>,
) {
    let spec = prism::frontend::parse("prism.toml", prism::frontend::EMBEDDED_PRISM_TOML)
        .expect("bundled prism.toml parses");
    let lock_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("prism.lock");
    let lock = prism::tune::lock::Lock::read(&lock_path)
        .expect("prism.lock reads")
        .expect("prism.lock is committed");
    let locked = spec
        .workloads
        .iter()
        .map(|w| {
            let r = prism::tune::resolve::resolve(
                &spec,
                w,
                Some(&lock),
                &lock.nvcc,
                true,
                "prism.lock",
                "prism tune prism.toml",
            )
            .expect("the lock covers every bucket");
            let k = prism::codegen::cuda::generate_variants(w, &r.variants, r.dispatch.clone())
                .expect("generates");
            (r, k)
        })
        .collect();
    (spec, locked)
}

/// A LoRA adapter of rank 32, `x @ w + (x @ a) @ b` at n = 64: wider than
/// the matmul template's low-rank side product (16 columns), so no single
/// kernel computes it.
#[allow(dead_code)] // not every test crate uses it
pub fn wide_lora() -> prism::ir::Workload {
    prism::frontend::parse(
        "lora32.toml",
        r#"
[workload.lora32]
inputs = { x = "f16[n, 256]", w = "f16[256, 256]", a = "f16[256, 32]", b = "f16[32, 256]" }
program = "x @ w + (x @ a) @ b"
dims = { n = [64] }
"#,
    )
    .expect("parses")
    .workload("lora32")
    .expect("workload")
    .clone()
}
