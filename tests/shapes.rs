//! Shape inference: the IR builder's rules, and the shapes of the bundled
//! workloads.

use prism::frontend;
use prism::ir::{DType, DimExpr, GraphBuilder, ReduceOp, ShapeError, UnaryOp, type_string};

fn d(s: &str) -> DimExpr {
    match s.parse::<i64>() {
        Ok(c) => DimExpr::constant(c),
        Err(_) => DimExpr::symbol(s),
    }
}

fn shape(dims: &[&str]) -> Vec<DimExpr> {
    dims.iter().map(|s| d(s)).collect()
}

#[test]
fn broadcasting_follows_numpy() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F16, shape(&["n", "d"]));
    let r = b.input("r", DType::F16, shape(&["d"]));
    let c = b.input("c", DType::F16, shape(&["n", "1"]));
    let s = b.input("s", DType::F16, shape(&["b", "1", "1"]));
    let xr = b
        .binary(prism::ir::BinaryOp::Add, x, r)
        .expect("[n,d] + [d]");
    assert_eq!(b.shape(xr), shape(&["n", "d"]).as_slice());
    let xc = b
        .binary(prism::ir::BinaryOp::Mul, c, x)
        .expect("[n,1] * [n,d]");
    assert_eq!(b.shape(xc), shape(&["n", "d"]).as_slice());
    let xs = b
        .binary(prism::ir::BinaryOp::Sub, x, s)
        .expect("[n,d] - [b,1,1]");
    assert_eq!(b.shape(xs), shape(&["b", "n", "d"]).as_slice());
    let bad = b.input("bad", DType::F16, shape(&["n", "e"]));
    assert!(matches!(
        b.binary(prism::ir::BinaryOp::Add, x, bad),
        Err(ShapeError::Broadcast { .. })
    ));
    let half = b.input("h", DType::F32, shape(&["n", "d"]));
    assert!(matches!(
        b.binary(prism::ir::BinaryOp::Add, x, half),
        Err(ShapeError::DtypeMismatch { .. })
    ));
}

#[test]
fn matmul_shapes() {
    let mut b = GraphBuilder::new();
    let a = b.input("a", DType::BF16, shape(&["b", "h", "m", "k"]));
    let w = b.input("w", DType::BF16, shape(&["k", "n"]));
    let y = b.matmul(a, w).expect("batched x plain");
    assert_eq!(type_string(b.dtype(y), b.shape(y)), "bf16[b, h, m, n]");
    let v = b.input("v", DType::BF16, shape(&["k"]));
    assert!(matches!(b.matmul(a, v), Err(ShapeError::MatmulRank { .. })));
    let wt = b.input("wt", DType::BF16, shape(&["n", "k"]));
    assert!(matches!(
        b.matmul(a, wt),
        Err(ShapeError::MatmulInner { .. })
    ));
    let other = b.input("o", DType::BF16, shape(&["c", "1", "k", "n"]));
    assert!(matches!(
        b.matmul(a, other),
        Err(ShapeError::Broadcast { .. })
    ));
}

#[test]
fn reductions_permutes_reshapes() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F32, shape(&["b", "h", "s"]));
    let r = b.reduce(ReduceOp::Sum, x, -1, false).expect("sum");
    assert_eq!(b.shape(r), shape(&["b", "h"]).as_slice());
    let r = b.reduce(ReduceOp::Max, x, 1, true).expect("max");
    assert_eq!(b.shape(r), shape(&["b", "1", "s"]).as_slice());
    assert!(matches!(
        b.reduce(ReduceOp::Mean, x, 3, false),
        Err(ShapeError::Axis { axis: 3, rank: 3 })
    ));
    assert!(matches!(
        b.reduce(ReduceOp::Mean, x, -4, false),
        Err(ShapeError::Axis { .. })
    ));
    let p = b.permute(x, &[2, 0, 1]).expect("permute");
    assert_eq!(b.shape(p), shape(&["s", "b", "h"]).as_slice());
    assert_eq!(
        b.permute(x, &[0, 1, 2]),
        Ok(x),
        "identity permutation is the input itself"
    );
    assert!(matches!(
        b.permute(x, &[0, 0, 1]),
        Err(ShapeError::Permutation { .. })
    ));
    assert!(matches!(
        b.permute(x, &[0, 1]),
        Err(ShapeError::Permutation { .. })
    ));
    let t = b.transpose(x, -1, -2).expect("transpose");
    assert_eq!(b.shape(t), shape(&["b", "s", "h"]).as_slice());
    // Merge and split dims symbolically.
    let hs = DimExpr::symbol("h").mul(&DimExpr::symbol("s"));
    let m = b.reshape(x, vec![d("b"), hs.clone()]).expect("merge");
    assert_eq!(b.shape(m), &[d("b"), hs]);
    let back = b.reshape(m, shape(&["b", "h", "s"])).expect("split");
    assert_eq!(b.shape(back), b.shape(x));
    assert!(matches!(
        b.reshape(x, shape(&["b", "h"])),
        Err(ShapeError::Reshape { .. })
    ));
}

#[test]
fn identical_nodes_are_shared() {
    let mut b = GraphBuilder::new();
    let x = b.input("x", DType::F16, shape(&["n"]));
    let e1 = b.unary(UnaryOp::Exp, x);
    let e2 = b.unary(UnaryOp::Exp, x);
    assert_eq!(e1, e2);
    assert_eq!(b.graph().nodes.len(), 2);
}

#[test]
fn bundled_workloads_have_the_expected_types() {
    let spec = frontend::embedded().expect("bundled prism.toml parses");
    let expect = [
        ("rms_norm", "f16[n, d]"),
        ("rmsnorm_mlp", "f16[n, d]"),
        ("swiglu", "f16[n, d]"),
        ("attention", "f16[b, h*s, dh]"),
        ("qk_norm_attention", "f16[b, h*s, dh]"),
        ("gqa_decode", "f16[b, 32, 128]"),
        ("gated_mlp", "f16[n, 14336]"),
        ("lora", "f16[n, 4096]"),
        ("ntrans", "f16[n, 4096]"),
    ];
    let names: Vec<&str> = spec.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, expect.map(|(n, _)| n));
    for (name, ty) in expect {
        let w = spec.workload(name).expect("declared");
        assert_eq!(w.graph.outputs.len(), 1, "{name}");
        let n = w.graph.node(w.graph.outputs[0].node);
        assert_eq!(type_string(n.dtype, &n.shape), ty, "{name}");
        for p in &w.points {
            w.check_point(p).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    // rms_norm(X) is computed once in rmsnorm_mlp although both matmuls use it.
    let mlp = spec.workload("rmsnorm_mlp").expect("declared");
    let rsqrts = mlp
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, prism::ir::Op::Unary(UnaryOp::Rsqrt, _)))
        .count();
    assert_eq!(rsqrts, 1);
    // Prism's evaluation points.
    assert_eq!(spec.workload("swiglu").map(|w| w.points.len()), Some(5));
    assert_eq!(spec.workload("attention").map(|w| w.points.len()), Some(4));
}
