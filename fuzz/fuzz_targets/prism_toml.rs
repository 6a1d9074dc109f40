//! Target 1: a whole prism.toml through `prism::frontend::parse`, the check
//! listing of what it accepts, the diagnostics of what it rejects, and the
//! reference interpreter on each accepted workload at a small point
//! (`common::check_toml`). Bytes that are not UTF-8 are decoded lossily
//! (U+FFFD is a multi-byte character, which span arithmetic must respect).

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // One interpreter thread: deterministic, and two targets can share
        // a 2-core machine.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
    },
    |data: &[u8]| {
        common::check_toml(&String::from_utf8_lossy(data));
    }
);
