//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// nvcc, or `None` (with a notice) when it is missing and not required.
/// With `PRISM_REQUIRE_NVCC` set (CI sets it to 1) a missing nvcc fails the
/// test instead of skipping it.
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
