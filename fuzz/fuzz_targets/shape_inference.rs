//! Target 3: shape inference. A structured input (the `arbitrary` crate) is a
//! list of inputs with symbolic shapes and a sequence of `GraphBuilder` calls
//! on operands picked from the nodes built so far, with random axes,
//! permutations and reshape dims. Whatever the builder accepts is a graph
//! valid for every dim value, so: its shapes evaluate at small dims, agree
//! with the operators' concrete meaning, and, when every tensor is small,
//! the reference interpreter runs it (f64 and declared precision) on seeded
//! inputs (with inf, NaN and signed zeros mixed in on request) and returns
//! outputs of the inferred shapes. Nothing may panic.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use prism::ir::{
    BinaryOp, DType, DimBindings, DimExpr, Graph, GraphBuilder, NodeId, Op, ReduceOp, ScalarExpr,
    UnaryOp, type_string,
};
use prism::reference::Tensor;
use prism::reference::random::normal;

const SYMBOLS: [&str; 3] = ["a", "b", "c"];
const MAX_INPUTS: usize = 4;
const MAX_RANK: usize = 5;
const MAX_STEPS: usize = 48;
const MAX_SCALAR: usize = 12;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Sym {
    A,
    B,
    C,
}

impl Sym {
    fn name(self) -> &'static str {
        SYMBOLS[self as usize]
    }
    fn expr(self) -> DimExpr {
        DimExpr::symbol(self.name())
    }
}

/// One dim of an input type or a reshape target.
#[derive(Arbitrary, Debug, Clone)]
enum Dim {
    One,
    Small(u8),
    Wide(i64),
    Sym(Sym),
    Scaled(i8, Sym),
    Shift(Sym, i8),
    Prod(Sym, Sym),
    Poly(Vec<(i64, Sym, Option<Sym>)>),
}

impl Dim {
    fn expr(&self) -> DimExpr {
        match self {
            Dim::One => DimExpr::constant(1),
            Dim::Small(c) => DimExpr::constant(i64::from(*c % 9)),
            Dim::Wide(c) => DimExpr::constant(*c),
            Dim::Sym(s) => s.expr(),
            Dim::Scaled(c, s) => s.expr().mul(&DimExpr::constant(i64::from(*c))),
            Dim::Shift(s, c) => s.expr().add(&DimExpr::constant(i64::from(*c))),
            Dim::Prod(s, t) => s.expr().mul(&t.expr()),
            Dim::Poly(terms) => {
                terms
                    .iter()
                    .take(4)
                    .fold(DimExpr::constant(0), |acc, (c, s, t)| {
                        let mut m = s.expr().mul(&DimExpr::constant(*c));
                        if let Some(t) = t {
                            m = m.mul(&t.expr());
                        }
                        acc.add(&m)
                    })
            }
        }
    }
}

/// A scalar constant, as a short RPN program over a stack.
#[derive(Arbitrary, Debug, Clone)]
enum ScalarTok {
    Lit(f64),
    Int(i8),
    Dim(Sym),
    Unary(u8),
    Binary(u8),
}

fn scalar(toks: &[ScalarTok]) -> ScalarExpr {
    let mut stack: Vec<ScalarExpr> = Vec::new();
    for t in toks.iter().take(MAX_SCALAR) {
        match t {
            ScalarTok::Lit(v) => stack.push(ScalarExpr::lit(*v)),
            ScalarTok::Int(v) => stack.push(ScalarExpr::lit(f64::from(*v))),
            ScalarTok::Dim(s) => stack.push(ScalarExpr::Dim(s.name().to_string())),
            ScalarTok::Unary(u) => {
                if let Some(a) = stack.pop() {
                    stack.push(ScalarExpr::Unary(unary(*u), Box::new(a)));
                }
            }
            ScalarTok::Binary(b) => {
                if stack.len() >= 2 {
                    let y = stack.pop().unwrap();
                    let x = stack.pop().unwrap();
                    stack.push(ScalarExpr::Binary(binary(*b), Box::new(x), Box::new(y)));
                }
            }
        }
    }
    stack.pop().unwrap_or(ScalarExpr::lit(1.0))
}

fn unary(u: u8) -> UnaryOp {
    UnaryOp::ALL[usize::from(u) % UnaryOp::ALL.len()]
}
fn binary(b: u8) -> BinaryOp {
    BinaryOp::ALL[usize::from(b) % BinaryOp::ALL.len()]
}
fn reduce_op(r: u8) -> ReduceOp {
    ReduceOp::ALL[usize::from(r) % ReduceOp::ALL.len()]
}
fn dtype(d: u8) -> DType {
    DType::ALL[usize::from(d) % DType::ALL.len()]
}

#[derive(Arbitrary, Debug)]
struct InputDecl {
    /// Below 224: the case's dtype; else one picked by this byte.
    dtype: u8,
    shape: Vec<Dim>,
}

/// One builder call. Operands are indices into the nodes built so far.
#[derive(Arbitrary, Debug)]
enum Step {
    Unary(u8, u8),
    Binary(u8, u8, u8),
    Matmul(u8, u8),
    Reduce(u8, u8, i8, bool),
    ReduceWide(u8, u8, i64, bool),
    Permute(u8, Vec<i8>),
    PermuteWide(u8, Vec<i64>),
    /// A random permutation of the operand's axes (drawn by rotation).
    PermuteValid(u8, u8),
    Transpose(u8, i8, i8),
    Reshape(u8, Vec<Dim>),
    /// Merge axis `i` with the next one.
    Flatten(u8, u8),
    /// Split axis `i` into `[f, dim / f]` when the quotient is exact.
    Split(u8, u8, Dim),
    /// Insert a 1 before axis `i`.
    Unsqueeze(u8, u8),
    Const(Vec<ScalarTok>, u8),
    Output(u8),
}

#[derive(Arbitrary, Debug)]
enum DimValue {
    Small(u8),
    Any(i64),
}

#[derive(Arbitrary, Debug)]
struct Case {
    dtype: u8,
    inputs: Vec<InputDecl>,
    steps: Vec<Step>,
    dims: [DimValue; 3],
    seed: u64,
    /// Mix inf, NaN, signed zeros and extremes into the inputs.
    special: bool,
}

fuzz_target!(
    init: {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(1).build_global();
    },
    |case: Case| run(case)
);

fn pick(nodes: &[NodeId], i: u8) -> NodeId {
    nodes[usize::from(i) % nodes.len()]
}

fn run(case: Case) {
    let mut b = GraphBuilder::new();
    let mut nodes: Vec<NodeId> = Vec::new();
    let default_dtype = dtype(case.dtype);
    for (i, input) in case.inputs.iter().take(MAX_INPUTS).enumerate() {
        let dt = if input.dtype < 224 {
            default_dtype
        } else {
            dtype(input.dtype)
        };
        let shape: Vec<DimExpr> = input.shape.iter().take(MAX_RANK).map(Dim::expr).collect();
        nodes.push(b.input(&format!("in{i}"), dt, shape));
    }
    if nodes.is_empty() {
        nodes.push(b.input("in0", default_dtype, vec![Sym::A.expr()]));
    }
    let mut outputs = 0;
    for step in case.steps.iter().take(MAX_STEPS) {
        let result = match step {
            Step::Unary(u, a) => Ok(b.unary(unary(*u), pick(&nodes, *a))),
            Step::Binary(op, x, y) => b.binary(binary(*op), pick(&nodes, *x), pick(&nodes, *y)),
            Step::Matmul(x, y) => b.matmul(pick(&nodes, *x), pick(&nodes, *y)),
            Step::Reduce(op, a, axis, keep) => {
                b.reduce(reduce_op(*op), pick(&nodes, *a), i64::from(*axis), *keep)
            }
            Step::ReduceWide(op, a, axis, keep) => {
                b.reduce(reduce_op(*op), pick(&nodes, *a), *axis, *keep)
            }
            Step::Permute(a, perm) => {
                let perm: Vec<i64> = perm
                    .iter()
                    .take(MAX_RANK + 1)
                    .map(|&p| i64::from(p))
                    .collect();
                b.permute(pick(&nodes, *a), &perm)
            }
            Step::PermuteWide(a, perm) => {
                let perm: Vec<i64> = perm.iter().take(MAX_RANK + 1).copied().collect();
                b.permute(pick(&nodes, *a), &perm)
            }
            Step::PermuteValid(a, r) => {
                let a = pick(&nodes, *a);
                let rank = b.shape(a).len();
                let mut perm: Vec<i64> = (0..rank as i64).collect();
                if rank > 0 {
                    perm.rotate_left(usize::from(*r) % rank);
                    if r & 0x80 != 0 && rank > 1 {
                        perm.swap(0, rank - 1);
                    }
                    // Negative spellings of the same axes.
                    if r & 0x40 != 0 {
                        perm.iter_mut().for_each(|p| *p -= rank as i64);
                    }
                }
                b.permute(a, &perm)
            }
            Step::Transpose(a, x, y) => b.transpose(pick(&nodes, *a), i64::from(*x), i64::from(*y)),
            Step::Reshape(a, dims) => {
                let shape = dims.iter().take(MAX_RANK).map(Dim::expr).collect();
                b.reshape(pick(&nodes, *a), shape)
            }
            Step::Flatten(a, i) => {
                let a = pick(&nodes, *a);
                let mut shape = b.shape(a).to_vec();
                if shape.len() >= 2 {
                    let i = usize::from(*i) % (shape.len() - 1);
                    let merged = shape[i].mul(&shape[i + 1]);
                    shape.splice(i..i + 2, [merged]);
                }
                b.reshape(a, shape)
            }
            Step::Split(a, i, f) => {
                let a = pick(&nodes, *a);
                let mut shape = b.shape(a).to_vec();
                if shape.is_empty() {
                    continue;
                }
                let i = usize::from(*i) % shape.len();
                let f = f.expr();
                let Some(q) = shape[i].div_exact(&f) else {
                    continue;
                };
                shape.splice(i..i + 1, [f, q]);
                b.reshape(a, shape)
            }
            Step::Unsqueeze(a, i) => {
                let a = pick(&nodes, *a);
                let mut shape = b.shape(a).to_vec();
                let i = usize::from(*i) % (shape.len() + 1);
                shape.insert(i, DimExpr::constant(1));
                b.reshape(a, shape)
            }
            Step::Const(toks, dt) => Ok(b.constant(scalar(toks).fold(), dtype(*dt))),
            Step::Output(a) => {
                b.output(&format!("out{outputs}"), pick(&nodes, *a));
                outputs += 1;
                continue;
            }
        };
        match result {
            Ok(id) => nodes.push(id),
            Err(e) => {
                let _ = e.to_string();
                let _ = e.hint();
            }
        }
    }
    if outputs == 0 {
        let last = *nodes.last().unwrap();
        b.output("out", last);
    }
    let graph = b.finish();
    for i in 0..graph.nodes.len() {
        let n = &graph.nodes[i];
        let _ = graph.describe(NodeId(i));
        let _ = type_string(n.dtype, &n.shape);
        for s in &n.shape {
            let _ = s.render(|s| s.to_string());
        }
        if let Op::Const(c) = &n.op {
            let _ = c.to_string();
        }
    }

    let dims: DimBindings = SYMBOLS
        .iter()
        .zip(&case.dims)
        .map(|(s, v)| {
            let v = match v {
                DimValue::Small(x) => i64::from(x % 4) + 1,
                DimValue::Any(x) => *x,
            };
            (s.to_string(), v)
        })
        .collect();
    let Some(shapes) = common::small_shapes(&graph, &dims) else {
        trace(&graph, "not evaluated");
        return;
    };
    check_concrete(&graph, &shapes);
    let inputs = inputs(&graph, &shapes, case.seed, case.special);
    common::eval_checked(&graph, &dims, &inputs, &shapes);
    trace(&graph, "evaluated");
}

/// With `PRISM_FUZZ_TRACE` set, one line per input on stderr: how large the
/// graph was and whether the interpreter ran it (to see how much of a corpus
/// gets that far: run the target with `-runs=0` on the corpus).
fn trace(graph: &Graph, what: &str) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("PRISM_FUZZ_TRACE").is_some()) {
        let ops = graph
            .nodes
            .iter()
            .filter(|n| !matches!(n.op, Op::Input(_) | Op::Const(_)))
            .count();
        eprintln!(
            "trace: {} inputs, {ops} ops, {} outputs: {what}",
            graph.inputs.len(),
            graph.outputs.len()
        );
    }
}

/// Seeded inputs for every graph input at `shapes`, rounded to their dtypes.
fn inputs(graph: &Graph, shapes: &[Vec<usize>], seed: u64, special: bool) -> Vec<Tensor> {
    const SPECIAL: [f64; 8] = [
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        0.0,
        -0.0,
        1e300,
        -1e-300,
        65504.0,
    ];
    (0..graph.inputs.len())
        .map(|i| {
            let node = graph
                .nodes
                .iter()
                .position(|n| n.op == Op::Input(i))
                .expect("every input has a node");
            let dt = graph.inputs[i].dtype;
            let mut t = normal(
                shapes[node].clone(),
                1.0,
                seed.wrapping_add(i as u64),
                |v| dt.round(v),
            );
            if special {
                let len = t.data.len();
                for (k, s) in SPECIAL.iter().enumerate() {
                    let at = (seed as usize).wrapping_add(k * 7919) % len;
                    t.data[at] = dt.round(*s);
                }
            }
            t
        })
        .collect()
}

/// The concrete shapes agree with each operator's meaning: what the symbolic
/// checks promised holds at these dims.
fn check_concrete(graph: &Graph, shapes: &[Vec<usize>]) {
    let elems = |s: &[usize]| s.iter().product::<usize>();
    for (i, node) in graph.nodes.iter().enumerate() {
        let out = &shapes[i];
        assert_eq!(out.len(), node.shape.len(), "node %{i}: rank");
        match &node.op {
            Op::Input(_) | Op::Unary(..) => {}
            Op::Const(_) => assert!(
                out.is_empty(),
                "node %{i}: a constant of rank {}",
                out.len()
            ),
            Op::Binary(_, x, y) => {
                let (sx, sy) = (&shapes[x.0], &shapes[y.0]);
                assert_eq!(
                    out.len(),
                    sx.len().max(sy.len()),
                    "node %{i}: broadcast rank"
                );
                for k in 0..out.len() {
                    let dim = |s: &[usize]| {
                        if k + s.len() >= out.len() {
                            s[k + s.len() - out.len()]
                        } else {
                            1
                        }
                    };
                    let (dx, dy) = (dim(sx), dim(sy));
                    assert!(
                        (dx == out[k] || dx == 1) && (dy == out[k] || dy == 1),
                        "node %{i}: {sx:?} and {sy:?} do not broadcast to {out:?}"
                    );
                }
            }
            Op::Matmul(x, y) => {
                let (sx, sy) = (&shapes[x.0], &shapes[y.0]);
                assert_eq!(sx[sx.len() - 1], sy[sy.len() - 2], "node %{i}: matmul k");
                assert_eq!(out[out.len() - 2], sx[sx.len() - 2], "node %{i}: matmul m");
                assert_eq!(out[out.len() - 1], sy[sy.len() - 1], "node %{i}: matmul n");
            }
            Op::Reduce {
                input,
                axis,
                keepdim,
                ..
            } => {
                let mut want = shapes[input.0].clone();
                if *keepdim {
                    want[*axis] = 1;
                } else {
                    want.remove(*axis);
                }
                assert_eq!(out, &want, "node %{i}: reduce");
            }
            Op::Permute(a, perm) => {
                let want: Vec<usize> = perm.iter().map(|&p| shapes[a.0][p]).collect();
                assert_eq!(out, &want, "node %{i}: permute");
            }
            Op::Reshape(a) => {
                assert_eq!(
                    elems(out),
                    elems(&shapes[a.0]),
                    "node %{i}: reshape of {:?} to {out:?}",
                    shapes[a.0]
                );
            }
        }
    }
}
