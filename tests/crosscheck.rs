//! The numeric cross-check: the lowered μGraphs of every workload agree with
//! the reference, and planted wrong μGraphs (wrong maps, accumulators,
//! counts, operands, constants, dropped ops) are all caught — by validation
//! or by the cross-check, never silently accepted.

use prism::frontend;
use prism::ir::{BinaryOp, ReduceOp, ScalarExpr, UnaryOp, Workload};
use prism::search::crosscheck::{CrossCheckOptions, cross_check, trial_dims};
use prism::ugraph::lower::{LowerOptions, lower};
use prism::ugraph::{AccumKind, BlockGraph, BlockOp, KernelBody, KernelGraph, ValueId};

fn ops() -> prism::ir::Spec {
    frontend::parse("ops.toml", include_str!("data/ops.toml")).expect("ops.toml parses")
}

#[test]
fn lowered_workloads_pass_the_cross_check() {
    let spec = ops();
    let bundled = frontend::embedded().expect("bundled");
    for w in spec
        .workloads
        .iter()
        .chain(bundled.workloads.iter().filter(|w| {
            // The model-sized workloads have constant 4096/14336 dims; they are
            // covered by tests/lowering.rs at their own points.
            !["gated_mlp", "lora", "ntrans", "gqa_decode"].contains(&w.name.as_str())
        }))
    {
        for options in [LowerOptions::default(), LowerOptions::direct()] {
            let g = lower(w, &options).expect("lowers");
            let trials = cross_check(w, &g, &CrossCheckOptions::default())
                .unwrap_or_else(|e| panic!("{}: {e}", w.name));
            // Four trials, plus one for a split loop (flash attention).
            let split = g.kernels.iter().any(|k| {
                matches!(&k.body, prism::ugraph::KernelBody::Block(b)
                    if b.forloop.as_ref().is_some_and(|f| f.split.is_some()))
            });
            assert_eq!(trials.len(), 4 + usize::from(split), "{}", w.name);
        }
    }
}

#[test]
fn trials_include_dims_beyond_the_largest_tile() {
    let spec = ops();
    let w = spec.workload("rms_linear").expect("rms_linear");
    let g = lower(w, &LowerOptions::default()).expect("lowers");
    // Tiles: bm 64 (n may reach 40 > 16), bn 64, bk 32 -> largest 64.
    let big: Vec<i64> = (1..4)
        .flat_map(|t| trial_dims(w, &g, t).into_values())
        .collect();
    assert!(big.contains(&131), "trial dims {big:?} lack 2*64+3");
}

fn block_mut(g: &mut KernelGraph, k: usize) -> &mut BlockGraph {
    match &mut g.kernels[k].body {
        KernelBody::Block(b) => b,
        KernelBody::Predefined(_) => panic!("kernel {k} is predefined"),
    }
}

/// Apply `mutate` to a fresh lowering of `w` (with the rms fusion, without
/// fusion regions, so kernel indices are per operator); the mutant must be
/// rejected.
fn assert_rejected(w: &Workload, label: &str, mutate: impl Fn(&mut KernelGraph)) {
    let options = LowerOptions {
        fuse_rms_matmul: true,
        fuse_regions: false,
        flash_attention: false,
    };
    let mut g = lower(w, &options).expect("lowers");
    mutate(&mut g);
    let result = cross_check(w, &g, &CrossCheckOptions::default());
    assert!(
        result.is_err(),
        "planted bug `{label}` in {} was not caught",
        w.name
    );
}

#[test]
fn planted_wrong_mugraphs_are_all_rejected() {
    let spec = ops();
    let rms = spec.workload("rms_linear").expect("rms_linear").clone();
    let bmm = spec
        .workload("batched_matmul")
        .expect("batched_matmul")
        .clone();
    let red = spec.workload("reductions").expect("reductions").clone();
    let bc = spec.workload("broadcast").expect("broadcast").clone();
    let lay = spec.workload("layout").expect("layout").clone();
    let un = spec.workload("unary_chain").expect("unary_chain").clone();
    let attn = spec
        .workload("softmax_attention")
        .expect("softmax_attention")
        .clone();
    let v = ValueId;
    let mut planted = 0;
    let mut check = |w: &Workload, label: &str, f: &dyn Fn(&mut KernelGraph)| {
        assert_rejected(w, label, f);
        planted += 1;
    };
    // The fused rms_norm → matmul kernel: ops 0..=10 (see ugraph::fused).
    check(&rms, "mean over the tile instead of the data", &|g| {
        if let BlockOp::Reduce { count, .. } = &mut block_mut(g, 0).ops[4] {
            *count = None;
        }
    });
    check(&rms, "max accumulator for the matmul", &|g| {
        block_mut(g, 0).ops[5] = BlockOp::Accum {
            kind: AccumKind::Max,
            input: v(2),
        };
    });
    check(&rms, "missing normalization", &|g| {
        block_mut(g, 0).outputs[0].value = v(5)
    });
    check(&rms, "sqrt instead of rsqrt", &|g| {
        block_mut(g, 0).ops[9] = BlockOp::Unary(UnaryOp::Sqrt, v(8));
    });
    check(&rms, "norm of the weights", &|g| {
        block_mut(g, 0).ops[3] = BlockOp::Unary(UnaryOp::Square, v(1));
    });
    check(&rms, "wrong epsilon", &|g| {
        block_mut(g, 0).ops[7] = BlockOp::Const(ScalarExpr::lit(1.0))
    });
    check(&rms, "sum instead of mean", &|g| {
        if let BlockOp::Reduce { op, .. } = &mut block_mut(g, 0).ops[4] {
            *op = ReduceOp::Sum;
        }
    });
    check(&rms, "scale added instead of multiplied", &|g| {
        block_mut(g, 0).ops[10] = BlockOp::Binary(BinaryOp::Add, v(5), v(9));
    });
    check(&rms, "loop walks the wrong axis of x", &|g| {
        block_mut(g, 0).inputs[0].fmap = Some(0)
    });
    check(&rms, "rows of x replicated", &|g| {
        block_mut(g, 0).inputs[0].imap[1] = None
    });
    check(
        &rms,
        "loop tile changed under the reduction's count",
        &|g| {
            if let BlockOp::Reduce { count, .. } = &mut block_mut(g, 0).ops[4] {
                *count = Some(prism::ir::DimExpr::constant(64));
            }
        },
    );
    // Plain lowerings.
    check(&bmm, "swapped matmul operands", &|g| {
        block_mut(g, 0).ops[2] = BlockOp::Matmul(v(1), v(0));
    });
    check(&bmm, "operand read through the other's tensor", &|g| {
        let b = block_mut(g, 0);
        b.inputs[1].tensor = b.inputs[0].tensor;
    });
    check(&bmm, "no accumulation over k (max)", &|g| {
        block_mut(g, 0).ops[3] = BlockOp::Accum {
            kind: AccumKind::Max,
            input: v(2),
        };
    });
    check(&red, "reduction over the wrong axis", &|g| {
        let b = block_mut(g, 0);
        b.inputs[0].fmap = Some(1);
    });
    check(&red, "max instead of sum", &|g| {
        block_mut(g, 0).ops[1] = BlockOp::Reduce {
            op: ReduceOp::Max,
            input: v(0),
            axis: 0,
            count: None,
        };
        block_mut(g, 0).ops[2] = BlockOp::Accum {
            kind: AccumKind::Max,
            input: v(1),
        };
    });
    check(&bc, "dropped constant scale", &|g| {
        let b = block_mut(g, 2);
        b.outputs[0].value = v(0);
    });
    check(&bc, "off by a constant", &|g| {
        let b = block_mut(g, 3);
        if let Some(BlockOp::Const(c)) = b.ops.iter_mut().find(|o| matches!(o, BlockOp::Const(_))) {
            *c = ScalarExpr::lit(4.0);
        }
    });
    check(&lay, "transpose that does not transpose", &|g| {
        let b = block_mut(g, 0);
        b.ops[1] = BlockOp::Input(0);
        b.inputs[0].imap[0] = Some(vec![0, 1, 2]);
    });
    check(&un, "silu instead of sigmoid", &|g| {
        for k in 0..g.kernels.len() {
            let b = block_mut(g, k);
            for op in &mut b.ops {
                if *op == BlockOp::Unary(UnaryOp::Sigmoid, v(0)) {
                    *op = BlockOp::Unary(UnaryOp::Silu, v(0));
                }
            }
        }
    });
    check(&attn, "softmax without the max shift", &|g| {
        // The sub kernel: x - max(x) becomes x - 0.
        for k in 0..g.kernels.len() {
            let b = block_mut(g, k);
            if b.ops.len() == 3 && matches!(b.ops[2], BlockOp::Binary(BinaryOp::Sub, _, _)) {
                b.ops[2] = BlockOp::Binary(BinaryOp::Mul, v(0), v(0));
            }
        }
    });
    check(&attn, "normalized by the wrong sum", &|g| {
        for k in 0..g.kernels.len() {
            let b = block_mut(g, k);
            if b.ops.len() == 3 && matches!(b.ops[2], BlockOp::Binary(BinaryOp::Div, _, _)) {
                b.ops[2] = BlockOp::Binary(BinaryOp::Div, v(0), v(0));
            }
        }
    });
    assert!(planted >= 20, "only {planted} planted bugs");
}

/// Mutants of the fused kernels (fusion regions on): wrong epilogues, wrong
/// second operand, dropped shared norm.
#[test]
fn planted_wrong_fused_kernels_are_rejected() {
    let bundled = frontend::embedded().expect("bundled");
    let swiglu = bundled.workload("swiglu").expect("swiglu").clone();
    let mlp = bundled
        .workload("rmsnorm_mlp")
        .expect("rmsnorm_mlp")
        .clone();
    let ntrans = bundled.workload("ntrans").expect("ntrans").clone();
    let v = ValueId;
    let fused = |w: &Workload, label: &str, mutate: &dyn Fn(&mut BlockGraph)| {
        let mut g = lower(w, &LowerOptions::default()).expect("lowers");
        mutate(block_mut(&mut g, 0));
        assert!(
            cross_check(w, &g, &CrossCheckOptions::default()).is_err(),
            "planted bug `{label}` in fused {} was not caught",
            w.name
        );
    };
    // swiglu: %3 = acc(x·w_gate), %6 = acc(x·w_up), %7 = silu(%3), %8 = %7 * %6.
    fused(&swiglu, "silu on the wrong product", &|b| {
        b.ops[7] = BlockOp::Unary(UnaryOp::Silu, v(6));
    });
    fused(&swiglu, "second matmul reads the first weight", &|b| {
        b.inputs[2].tensor = b.inputs[1].tensor;
    });
    fused(&swiglu, "epilogue adds instead of multiplying", &|b| {
        b.ops[8] = BlockOp::Binary(BinaryOp::Add, v(7), v(6));
    });
    // rmsnorm_mlp: %14 = acc2 * norm; dropping the norm on one branch.
    fused(&mlp, "norm applied to one matmul only", &|b| {
        b.ops[14] = BlockOp::Binary(BinaryOp::Mul, v(13), v(7));
    });
    fused(&mlp, "the second matmul accumulates the maximum", &|b| {
        b.ops[13] = BlockOp::Accum {
            kind: AccumKind::Max,
            input: v(12),
        };
    });
    // ntrans's first kernel: rsqrt(mean(square(h)) + eps) as one reduction.
    fused(&ntrans, "reduction prologue without the square", &|b| {
        let square = b
            .ops
            .iter()
            .position(|o| matches!(o, BlockOp::Unary(UnaryOp::Square, _)))
            .expect("a square in the prologue");
        if let BlockOp::Unary(_, a) = b.ops[square] {
            b.ops[square] = BlockOp::Unary(UnaryOp::Relu, a);
        }
    });
}
