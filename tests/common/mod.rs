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
