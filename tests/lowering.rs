//! The direct lowering (and the fused rms_norm → matmul) against the
//! reference interpreter: every workload of tests/data/ops.toml and of the
//! bundled prism.toml's small programs is lowered to a μGraph, run by the
//! μGraph interpreter in f64, and compared with the kernel-graph reference.

use prism::frontend;
use prism::ir::{DimBindings, Spec, Workload};
use prism::reference::{Precision, compare, eval, random_inputs};
use prism::ugraph::lower::{LowerOptions, lower};
use prism::ugraph::{KernelBody, TensorRole, interp, validate};

const OPS: &str = include_str!("data/ops.toml");

fn ops() -> Spec {
    match frontend::parse("ops.toml", OPS) {
        Ok(s) => s,
        Err(r) => panic!("ops.toml does not parse:\n{r}"),
    }
}

fn check(w: &Workload, dims: &DimBindings, options: &LowerOptions) {
    let graph = lower(w, options).expect("lowers");
    validate::validate(&graph).unwrap_or_else(|e| panic!("{}: invalid μGraph: {e}", w.name));
    let inputs = random_inputs(w, dims, 7).expect("inputs");
    let want = eval(&w.graph, dims, &inputs, Precision::F64).expect("reference");
    let got = interp::run(&graph, dims, &inputs).unwrap_or_else(|e| panic!("{}: {e}", w.name));
    assert_eq!(got.len(), want.len(), "{}: output count", w.name);
    for (i, (g, r)) in got.iter().zip(&want).enumerate() {
        let c = compare(g, r).unwrap_or_else(|| {
            panic!(
                "{} output {i}: shape {:?} vs {:?}",
                w.name, g.shape, r.shape
            )
        });
        assert!(
            c.rel_l2 <= 1e-12 && c.non_finite_mismatches == 0,
            "{} output {i} at {dims:?}: {c:?}",
            w.name
        );
    }
}

#[test]
fn every_ops_workload_matches_the_reference_at_its_points() {
    for w in &ops().workloads {
        for p in &w.points {
            check(w, p, &LowerOptions::default());
            check(w, p, &LowerOptions::direct());
            check(
                w,
                p,
                &LowerOptions {
                    fuse_rms_matmul: true,
                    fuse_regions: false,
                    flash_attention: false,
                },
            );
        }
    }
}

#[test]
fn every_ops_workload_matches_at_the_corners_of_its_ranges() {
    for w in &ops().workloads {
        for pick in [
            |v: &prism::ir::DimValues| v.min(),
            |v: &prism::ir::DimValues| v.max(),
        ] {
            let dims: DimBindings = w
                .dims
                .iter()
                .map(|d| (d.name.clone(), pick(&d.values)))
                .collect();
            check(w, &dims, &LowerOptions::default());
        }
    }
}

/// Kernels of the direct lowering, plus the rms fusion when `fuse`.
fn kernel_count(w: &Workload, fuse: bool) -> usize {
    lower(
        w,
        &LowerOptions {
            fuse_rms_matmul: fuse,
            fuse_regions: false,
            flash_attention: false,
        },
    )
    .expect("lowers")
    .kernels
    .len()
}

fn fused_kernel_count(w: &Workload) -> usize {
    lower(w, &LowerOptions::default())
        .expect("lowers")
        .kernels
        .len()
}

#[test]
fn fusion_regions_merge_chains_prologues_and_epilogues() {
    let spec = ops();
    // (x + row) * col / 3 - d: one elementwise kernel.
    assert_eq!(
        fused_kernel_count(spec.workload("broadcast").expect("w")),
        1
    );
    // Two outputs of elementwise chains over x, one kernel each, and the
    // shared `square(x) + 1` (read twice) materialized once.
    assert_eq!(
        fused_kernel_count(spec.workload("unary_chain").expect("w")),
        3
    );
    let bundled = frontend::embedded().expect("bundled prism.toml");
    // silu(x @ w1) * (x @ w3): one kernel, two matmuls sharing the x tiles,
    // silu and the product in the epilogue.
    assert_eq!(
        fused_kernel_count(bundled.workload("swiglu").expect("w")),
        1
    );
    assert_eq!(
        fused_kernel_count(bundled.workload("gated_mlp").expect("w")),
        1
    );
    // rms_norm(x) @ w_up * rms_norm(x) @ w_gate: one kernel, the norm shared.
    assert_eq!(
        fused_kernel_count(bundled.workload("rmsnorm_mlp").expect("w")),
        1
    );
    // x @ w + (x @ a) @ b: x@a, x@w, then (x@a)@b with the sum in its
    // epilogue (the two matmuls do not share a left operand).
    assert_eq!(fused_kernel_count(bundled.workload("lora").expect("w")), 3);
    // ntrans: per norm, one reduction (square, mean, + eps, rsqrt) and one
    // elementwise kernel.
    assert_eq!(
        fused_kernel_count(bundled.workload("ntrans").expect("w")),
        4
    );
}

#[test]
fn one_kernel_per_operator_and_constants_are_inlined() {
    let spec = ops();
    let w = spec.workload("broadcast").expect("broadcast");
    // (x + row) * col / 3 - d: add, mul, div, sub; the constants are inlined.
    assert_eq!(kernel_count(w, true), 4);
}

#[test]
fn rms_norm_matmul_fuses_into_one_kernel() {
    let spec = ops();
    let w = spec.workload("rms_linear").expect("rms_linear");
    // Unfused: square, mean, add, rsqrt, mul, matmul.
    assert_eq!(kernel_count(w, false), 6);
    assert_eq!(kernel_count(w, true), 1);
    // The bundled rmsnorm_mlp shares the norm between two matmuls: two fused
    // kernels and the product.
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let mlp = bundled.workload("rmsnorm_mlp").expect("rmsnorm_mlp");
    assert_eq!(kernel_count(mlp, true), 3);
}

#[test]
fn outputs_that_are_inputs_or_repeated_get_their_own_tensor() {
    let spec = ops();
    let w = spec.workload("outputs").expect("outputs");
    let g = lower(w, &LowerOptions::default()).expect("lowers");
    let outs: Vec<usize> = g
        .tensors
        .iter()
        .filter_map(|t| match t.role {
            TensorRole::Output(j) => Some(j),
            _ => None,
        })
        .collect();
    let mut sorted = outs.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2]);
    assert!(
        g.kernels
            .iter()
            .all(|k| matches!(k.body, KernelBody::Block(_)))
    );
}

/// The bundled workloads whose programs are cheap at small dims: the same
/// programs with the dims shrunk (the bundled dims are fixed by their
/// models, so the programs are re-declared here with ranges).
#[test]
fn bundled_programs_at_small_dims() {
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let small: &[(&str, &[(&str, i64)])] = &[
        ("rms_norm", &[("n", 7), ("d", 72)]),
        ("rmsnorm_mlp", &[("n", 7), ("d", 72)]),
        ("swiglu", &[("n", 7), ("d", 72)]),
        (
            "attention",
            &[("b", 2), ("h", 2), ("s", 3), ("kv", 50), ("dh", 16)],
        ),
        (
            "qk_norm_attention",
            &[("b", 2), ("h", 2), ("s", 3), ("kv", 50), ("dh", 16)],
        ),
        ("gqa_decode", &[("b", 3), ("kv", 100)]),
        ("ntrans", &[("n", 7)]),
    ];
    for (name, dims) in small {
        let w = bundled.workload(name).expect("bundled workload");
        let dims: DimBindings = dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        check(w, &dims, &LowerOptions::default());
    }
}
