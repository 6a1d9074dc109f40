//! Target 2: the expression language alone. The input is a program, wrapped
//! into a fixed minimal prism.toml (`common::wrap_program`: inputs `x`, `w`,
//! `y`, `z` over dims `b`, `n`, `d`, each declared when the program names it),
//! so the fuzzer explores expressions rather than TOML. Programs that parse
//! on their own must also round-trip through the printer.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
    },
    |data: &[u8]| {
        common::check_expression(&String::from_utf8_lossy(data));
    }
);
