//! Regressions from fuzzing (docs/RELIABILITY.md): every input a fuzz target
//! ever crashed on is replayed here through the target's own checks, and the
//! committed seed corpora stay inputs the checks pass on.
//!
//! The text targets' checks live in `fuzz/fuzz_targets/common.rs`, shared
//! with the fuzz targets, so a crash replays here exactly as the fuzzer saw
//! it. Crash inputs of the text targets are committed under
//! `fuzz/regressions/<target>/`; the structured `shape_inference` target's
//! inputs are bytes decoded by the `arbitrary` crate, so its regressions are
//! written out below as the builder calls they decode to.

#[path = "../fuzz/fuzz_targets/common.rs"]
mod common;

use std::path::{Path, PathBuf};

fn files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Run `check` on every file of `dir` (decoded as the fuzz target decodes
/// its bytes); a panic names the file.
fn replay(dir: &str, check: fn(&str)) -> usize {
    let files = files(dir);
    for f in &files {
        let bytes = std::fs::read(f).expect("a readable file");
        let text = String::from_utf8_lossy(&bytes);
        let result = std::panic::catch_unwind(|| check(&text));
        assert!(
            result.is_ok(),
            "{} failed its fuzz target's checks",
            f.display()
        );
    }
    files.len()
}

#[test]
fn prism_toml_seeds_pass() {
    let n = replay("fuzz/seeds/prism_toml", common::check_toml);
    assert!(n >= 30, "only {n} seeds in fuzz/seeds/prism_toml");
}

#[test]
fn expression_seeds_pass() {
    let n = replay("fuzz/seeds/expression", common::check_expression);
    assert!(n >= 30, "only {n} seeds in fuzz/seeds/expression");
}

#[test]
fn prism_toml_regressions() {
    replay("fuzz/regressions/prism_toml", common::check_toml);
}

#[test]
fn expression_regressions() {
    replay("fuzz/regressions/expression", common::check_expression);
}

/// The bundled and test prism.toml files are accepted by the harness, and
/// the wrapper of the expression target accepts the bundled programs it can
/// (a program naming only `x`, `w`, `y`, `z`).
#[test]
fn the_harness_accepts_valid_files() {
    for path in [
        "prism.toml",
        "tests/fixture/prism.toml",
        "tests/data/ops.toml",
    ] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
            .expect("a readable file");
        assert!(common::check_source(&text).is_some(), "{path} rejected");
    }
    for program in [
        "matmul(rms_norm(x), w)",
        "y @ w + x",
        "let h = rms_norm(x, eps=1e-5)\nout = softmax(h @ w, -1)\n",
        "exp(z) * (1 / sqrt(n)) - z",
        "it's = x", // not a TOML literal string: escaped
        "\"quoted\\\" \u{7f}\r\n x",
    ] {
        let source = common::wrap_program(program);
        let spec = common::check_source(&source);
        let decoded: toml::Table = toml::from_str(&source).expect("the wrapper writes TOML");
        let got = decoded["workload"]["e"]["program"]
            .as_str()
            .expect("a string");
        assert_eq!(got, program, "the wrapper changed the program");
        if !program.contains('\'') && !program.contains('"') {
            assert!(spec.is_some(), "{program:?} rejected:\n{source}");
        }
    }
}

/// What the `shape_inference` target checks, on one graph written out: the
/// builder's shapes evaluate at small dims and the interpreter returns
/// outputs of those shapes, with inf, NaN and signed zeros in the inputs.
/// Regressions of that target go beside it, as builder calls.
#[test]
fn shape_inference_checks_on_a_written_graph() {
    use prism::ir::{BinaryOp, DType, DimBindings, DimExpr, GraphBuilder, ReduceOp, UnaryOp};
    use prism::reference::Tensor;

    let (a, b, c) = (
        DimExpr::symbol("a"),
        DimExpr::symbol("b"),
        DimExpr::symbol("c"),
    );
    let mut g = GraphBuilder::new();
    let x = g.input("x", DType::F16, vec![a.clone(), b.clone()]);
    let w = g.input("w", DType::F16, vec![b.clone(), c.clone()]);
    let m = g.matmul(x, w).unwrap();
    let top = g.reduce(ReduceOp::Max, m, -1, true).unwrap();
    let shifted = g.binary(BinaryOp::Sub, m, top).unwrap();
    let e = g.unary(UnaryOp::Exp, shifted);
    let t = g.transpose(e, 0, -1).unwrap();
    let flat = g.reshape(t, vec![c.mul(&a)]).unwrap();
    let mean = g.reduce(ReduceOp::Mean, x, 0, false).unwrap();
    g.output("flat", flat);
    g.output("mean", mean);
    let graph = g.finish();

    let dims: DimBindings = [("a", 2), ("b", 3), ("c", 4)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let shapes = common::small_shapes(&graph, &dims).expect("small shapes");
    let special = [f64::NAN, f64::INFINITY, -0.0, 1.0, f64::NEG_INFINITY, 0.5];
    let inputs = vec![
        Tensor::new(vec![2, 3], special.to_vec()).unwrap(),
        Tensor::new(vec![3, 4], (0..12).map(|i| special[i % 6]).collect()).unwrap(),
    ];
    common::eval_checked(&graph, &dims, &inputs, &shapes);
}
