//! The equivalence verifier (`prism::verify`): proofs of true equivalences,
//! no proof (and a numeric counterexample) for planted wrong ones, a property
//! test and an e-graph-wide numeric check as guards against unsound rules,
//! determinism, and `prism equiv`.

mod common;

use common::{prism, text};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use prism::ir::{
    BinaryOp, DType, DimBindings, DimExpr, Graph, GraphBuilder, NodeId, ReduceOp, ScalarExpr,
    UnaryOp,
};
use prism::reference::{Tensor, compare};
use prism::verify::equiv_file::{self, EquivProblem};
use prism::verify::numeric::{eval_by_name, eval_node, random_inputs_by_name};
use prism::verify::{
    Expr, Limits, StopReason, Verdict, counterexample, from_graph, prove, saturate, to_graph,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------- helpers

fn idents(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .map(str::to_string)
        .collect()
}

/// Inputs every case may use; a case declares the ones its sides mention.
const POOL: &[(&str, &str)] = &[
    ("x", "[n, d]"),
    ("y", "[n, d]"),
    ("w", "[d, e]"),
    ("w2", "[d, e]"),
    ("s", "[n, 1]"),
    ("c", "[1, e]"),
    ("a", "[d, r]"),
    ("b", "[r, e]"),
    ("q", "[d, d]"),
    ("k", "[d, d]"),
    ("t", "[d, 1]"),
    ("h", "[b2, n, d]"),
];

/// An equivalence problem over the inputs of [`POOL`] that `lhs` and `rhs`
/// mention, every dim in 1..=64, dtype f32.
fn case(lhs: &str, rhs: &str) -> EquivProblem {
    let used = idents(&format!("{lhs} {rhs}"));
    let inputs: Vec<&(&str, &str)> = POOL
        .iter()
        .filter(|(n, _)| used.iter().any(|u| u == n))
        .collect();
    let mut dims: Vec<String> = inputs.iter().flat_map(|(_, t)| idents(t)).collect();
    dims.sort();
    dims.dedup();
    let inputs: Vec<String> = inputs
        .iter()
        .map(|(n, t)| format!("{n} = \"{t}\""))
        .collect();
    let dims: Vec<String> = dims.iter().map(|d| format!("{d} = \"1..=64\"")).collect();
    let src = format!(
        "inputs = {{ {} }}\ndims = {{ {} }}\nlhs = \"{lhs}\"\nrhs = \"{rhs}\"\ndtype = \"f32\"\n",
        inputs.join(", "),
        dims.join(", ")
    );
    equiv_file::parse("case.toml", &src).unwrap_or_else(|r| panic!("{lhs} = {rhs}:\n{r}"))
}

fn exprs(p: &EquivProblem) -> (Expr, Expr) {
    (
        p.lhs_expr().expect("lhs converts"),
        p.rhs_expr().expect("rhs converts"),
    )
}

fn verdict(p: &EquivProblem, limits: &Limits) -> Verdict {
    let (l, r) = exprs(p);
    prove(&l, &r, limits).expect("prove runs")
}

// ---------------------------------------------------------------- proofs

/// True equivalences the rule set proves, each with why.
const TRUE: &[(&str, &str, &str)] = &[
    (
        "rms_norm(x) @ w",
        "(x @ w) * rsqrt(mean(square(x), -1, keepdim=true) + 1e-6)",
        "rms_norm's row scale moves past the matmul (row-scale rule)",
    ),
    (
        "(x @ w) * s + (x @ w2) * s",
        "(x @ (w + w2)) * s",
        "common factor, then matmul distributivity",
    ),
    (
        "x @ w + (x @ a) @ b",
        "x @ (w + a @ b)",
        "LoRA: distributivity and matmul associativity",
    ),
    (
        "softmax(x)",
        "exp(x) / sum(exp(x), -1, keepdim=true)",
        "exp(x - m) = exp(x) exp(-m); exp(-m) leaves the sum and cancels in the ratio",
    ),
    ("(x * 2) @ w", "(x @ w) * 2", "scalar out of a matmul"),
    (
        "x @ (w * 0.5)",
        "(x @ w) * 0.5",
        "scalar out of a right operand",
    ),
    ("sum(x * 3, -1)", "sum(x, -1) * 3", "scalar out of a sum"),
    ("transpose(transpose(x))", "x", "a transpose undoes itself"),
    (
        "transpose(x @ w)",
        "transpose(w) @ transpose(x)",
        "(AB)ᵀ = BᵀAᵀ",
    ),
    ("mean(x, -1)", "sum(x, -1) / d", "mean = sum / count"),
    (
        "mean(x, -1, keepdim=true) * 2",
        "sum(x * 2, -1, keepdim=true) / d",
        "mean, scale out of sum",
    ),
    ("exp(x + y)", "exp(x) * exp(y)", "exp of a sum"),
    ("x * y + x * x", "x * (y + x)", "distributivity"),
    (
        "(x - y) * 2",
        "2 * x - y * 2",
        "distributivity over a difference",
    ),
    ("x @ (w * c)", "(x @ w) * c", "column scale out of a matmul"),
    ("(x * s) @ w", "(x @ w) * s", "row scale out of a matmul"),
    (
        "(x / s) @ w",
        "(x @ w) / s",
        "division by a row vector is a row scale",
    ),
    ("silu(x)", "x / (1 + exp(-x))", "silu's definition"),
    ("silu(x)", "x * sigmoid(x)", "silu's definition"),
    (
        "sum(x + y, -1)",
        "sum(x, -1) + sum(y, -1)",
        "a sum splits over +",
    ),
    (
        "max(x + s, -1, keepdim=true)",
        "max(x, -1, keepdim=true) + s",
        "a row constant leaves a max",
    ),
    (
        "exp(x - max(x, -1, keepdim=true)) * exp(max(x, -1, keepdim=true))",
        "exp(x)",
        "online softmax rescaling",
    ),
    (
        "(x @ q) @ transpose(x @ k)",
        "x @ (q @ transpose(k)) @ transpose(x)",
        "attention scores: transpose of a product, associativity",
    ),
    (
        "transpose(q) @ k",
        "transpose(transpose(k) @ q)",
        "(AᵀB) = (BᵀA)ᵀ",
    ),
    (
        "sum(x @ w, -1, keepdim=true)",
        "x @ sum(w, -1, keepdim=true)",
        "summing the columns of a product",
    ),
    (
        "sum(h * 2, 0)",
        "sum(h, 0) * 2",
        "a batch-axis sum, then a reshape (keepdim=false)",
    ),
    (
        "sum(x + s, -1, keepdim=true)",
        "sum(x, -1, keepdim=true) + s * d",
        "a row constant summed over d columns is d times itself",
    ),
    ("(x / 2) / 4", "x * 0.125", "constant folding (exact)"),
    (
        "-(x - y)",
        "y - x",
        "negation normal form and folding (-1)(-1)",
    ),
];

#[test]
fn true_equivalences_are_proven() {
    let limits = Limits::default();
    let mut proven = 0;
    for (lhs, rhs, why) in TRUE {
        let t = Instant::now();
        let p = case(lhs, rhs);
        let v = verdict(&p, &limits);
        eprintln!("{lhs} = {rhs}: {v:?} in {:?}", t.elapsed());
        assert!(
            v.is_equivalent(),
            "not proven: {lhs} = {rhs} ({why}): {v:?}"
        );
        let ce = counterexample(&p.lhs_graph(), &p.rhs_graph(), &p.workload.dims, &[1, 2]);
        assert!(ce.is_none(), "{lhs} = {rhs} differs numerically: {ce:?}");
        proven += 1;
    }
    assert!(proven >= 12);
}

// ---------------------------------------------------------------- refutations

/// Wrong equivalences: never proven, always refuted numerically.
const WRONG: &[(&str, &str, &str)] = &[
    (
        "x / sum(x, -1, keepdim=true)",
        "x / sum(x, 0, keepdim=true)",
        "wrong axis in a reduction",
    ),
    ("q @ k", "k @ q", "swapped matmul operands"),
    ("(x * 2) @ w", "x @ w", "dropped scale"),
    ("rms_norm(x) @ w", "x @ w", "missing normalization"),
    (
        "x * rsqrt(mean(square(x), -1, keepdim=true) + 1e-6)",
        "x * sqrt(mean(square(x), -1, keepdim=true) + 1e-6)",
        "rsqrt vs sqrt",
    ),
    ("sum(x, -1)", "mean(x, -1)", "sum vs mean"),
    ("max(x, -1)", "sum(x, -1)", "max vs sum"),
    ("exp(x + y)", "exp(x) + exp(y)", "exp of a sum is not a sum"),
    (
        "transpose(q @ k)",
        "transpose(q) @ transpose(k)",
        "transpose of a product keeps the order",
    ),
    ("q * t", "q * transpose(t)", "row scale vs column scale"),
    (
        "(q * transpose(t)) @ k",
        "(q @ k) * transpose(t)",
        "a column scale of the left operand does not leave the matmul",
    ),
    (
        "q @ (k * t)",
        "(q @ k) * t",
        "a row scale of the right operand does not leave the matmul",
    ),
    ("x * 2 + 1", "(x + 1) * 2", "off by a constant"),
    ("silu(x)", "sigmoid(x)", "silu vs sigmoid"),
    ("softmax(x)", "softmax(x, 0)", "softmax over the wrong axis"),
    (
        "x @ w + (x @ a) @ b",
        "x @ w + (x @ a) @ b * 2",
        "LoRA with a wrong scale",
    ),
    ("(x + y) * (x + y)", "x * x + y * y", "missing cross terms"),
    (
        "rms_norm(x)",
        "x * rsqrt(mean(square(x), -1, keepdim=true) + 1e-3)",
        "wrong epsilon",
    ),
    (
        "exp(x - max(x, -1, keepdim=true))",
        "exp(x) - exp(max(x, -1, keepdim=true))",
        "exp of a difference is not a difference",
    ),
    (
        "sum(x, -1) / n",
        "mean(x, -1)",
        "dividing by the wrong count",
    ),
    (
        "sum(x * y, -1)",
        "sum(x, -1) * sum(y, -1)",
        "a sum of products is not a product of sums",
    ),
    (
        "max(-x, -1)",
        "-max(x, -1)",
        "max does not commute with a negative scale",
    ),
    (
        "log(square(x))",
        "log(x) + log(x)",
        "log of a product of non-positive values",
    ),
    ("sqrt(square(x))", "x", "sqrt(x²) = |x|"),
    ("sqrt(x) * sqrt(x)", "x", "sqrt of negative values"),
    (
        "x * relu(y) / relu(y)",
        "x",
        "cancelling a factor that can be zero (0/0 where y ≤ 0)",
    ),
    ("exp(log(x))", "x", "log of negative values"),
    (
        "sum(transpose(q), -1)",
        "sum(q, -1)",
        "sum over the other axis",
    ),
    (
        "reshape(transpose(q), [d * d])",
        "reshape(q, [d * d])",
        "a transpose changes the element order",
    ),
    (
        "x / (y * 2)",
        "x / y * 2",
        "division does not distribute like that",
    ),
    (
        "sum(x + s, -1, keepdim=true)",
        "sum(x, -1, keepdim=true) + s",
        "a broadcast operand is summed d times",
    ),
    ("relu(-x)", "-relu(x)", "relu is not odd"),
    ("q @ (k @ q)", "(q @ q) @ k", "matmul is not commutative"),
];

#[test]
fn wrong_equivalences_are_not_proven_and_have_counterexamples() {
    let limits = Limits::default();
    for (lhs, rhs, why) in WRONG {
        let t = Instant::now();
        let p = case(lhs, rhs);
        let v = verdict(&p, &limits);
        eprintln!("{lhs} ≠ {rhs}: {v:?} in {:?}", t.elapsed());
        assert!(
            matches!(v, Verdict::Unknown { .. }),
            "UNSOUND: proved {lhs} = {rhs} ({why})"
        );
        let ce = counterexample(&p.lhs_graph(), &p.rhs_graph(), &p.workload.dims, &[1, 2]);
        let Some(ce) = ce else {
            panic!("no counterexample for {lhs} ≠ {rhs} ({why})");
        };
        assert!(!ce.comparison.within(1e-6), "{ce:?}");
    }
    assert!(WRONG.len() >= 20);
}

// ---------------------------------------------------------------- determinism

#[test]
fn proofs_are_deterministic() {
    let limits = Limits::default();
    for (lhs, rhs) in [
        (TRUE[3].0, TRUE[3].1),
        (TRUE[2].0, TRUE[2].1),
        (WRONG[16].0, WRONG[16].1),
        (WRONG[1].0, WRONG[1].1),
    ] {
        let p = case(lhs, rhs);
        let first = verdict(&p, &limits);
        for _ in 0..2 {
            assert_eq!(verdict(&p, &limits), first, "{lhs} vs {rhs}");
        }
    }
}

#[test]
fn limits_bound_the_search() {
    let p = case(WRONG[16].0, WRONG[16].1);
    let v = verdict(
        &p,
        &Limits {
            nodes: 50,
            ..Limits::default()
        },
    );
    assert!(
        matches!(
            v,
            Verdict::Unknown {
                reason: StopReason::NodeLimit,
                saturated: false,
                ..
            }
        ),
        "{v:?}"
    );
    let v = verdict(
        &p,
        &Limits {
            iterations: 1,
            ..Limits::default()
        },
    );
    assert!(
        matches!(
            v,
            Verdict::Unknown {
                reason: StopReason::IterationLimit,
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn sides_of_different_types_are_an_error() {
    let p = case("x @ w", "x @ w");
    let l = p.lhs_expr().expect("converts");
    let q = case("transpose(x)", "transpose(x)");
    let r = q.lhs_expr().expect("converts");
    assert!(prove(&l, &r, &Limits::default()).is_err());
}

#[test]
fn deep_graphs_convert_without_recursion() {
    let mut b = GraphBuilder::new();
    let n = DimExpr::symbol("n");
    let mut x = b.input("x", DType::F32, vec![n]);
    for i in 0..200_000 {
        x = b.unary(
            if i % 2 == 0 {
                UnaryOp::Exp
            } else {
                UnaryOp::Neg
            },
            x,
        );
    }
    b.output("out", x);
    let g = b.finish();
    let e = from_graph(&g, x).expect("converts");
    assert_eq!(e.as_ref().len(), 200_001);
    let back = to_graph(&e, egg::Id::from(200_000)).expect("converts back");
    assert_eq!(back.nodes.len(), 200_001);
}

// ---------------------------------------------------------------- e-graph-wide check

/// Saturate the e-graph of `terms` and check every e-node numerically: its
/// value (computed from its children's e-class values) must equal its
/// e-class's value. Every union comes from a rule, so an unsound rule that
/// fired shows up here. Returns the number of e-nodes checked.
fn check_egraph(terms: &[&Expr], limits: &Limits, dims: &DimBindings, seed: u64) -> usize {
    use egg::{AstSize, Extractor};
    let sat = saturate(terms, limits).expect("saturates");
    let eg = &sat.egraph;
    let graphs: Vec<Graph> = terms
        .iter()
        .map(|t| to_graph(t, egg::Id::from(t.as_ref().len() - 1)).expect("to graph"))
        .collect();
    let refs: Vec<&Graph> = graphs.iter().collect();
    let inputs = random_inputs_by_name(&refs, dims, seed).expect("inputs");
    let ex = Extractor::new(eg, AstSize);
    let mut classes: Vec<(usize, egg::Id)> = eg
        .classes()
        .map(|c| (ex.find_best_cost(c.id), c.id))
        .collect();
    classes.sort();
    let mut value: BTreeMap<egg::Id, Tensor> = BTreeMap::new();
    for &(_, id) in &classes {
        let node = ex.find_best_node(id).clone();
        let v = eval_node(
            &node,
            dims,
            &inputs,
            |c| value.get(&eg.find(c)),
            |c| Some(&eg[c].data),
        )
        .unwrap_or_else(|e| panic!("evaluating {node:?}: {e}"));
        if let Some(v) = v {
            value.insert(id, v);
        }
    }
    let mut checked = 0;
    for c in eg.classes() {
        let Some(want) = value.get(&c.id) else {
            continue;
        };
        for n in &c.nodes {
            let got = eval_node(
                n,
                dims,
                &inputs,
                |ch| value.get(&eg.find(ch)),
                |ch| Some(&eg[ch].data),
            )
            .unwrap_or_else(|e| panic!("evaluating {n:?}: {e}"))
            .expect("a tensor");
            let cmp = compare(&got, want).expect("same shape");
            assert!(
                cmp.within(1e-8),
                "UNSOUND union: e-node {n} {:?} differs from its e-class ({:?}): {cmp:?}\nclass best: {}",
                n,
                c.id,
                ex.find_best(c.id).1
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_enode_of_saturated_egraphs_is_numerically_sound() {
    let limits = Limits {
        nodes: 4_000,
        iterations: 12,
        ..Limits::default()
    };
    let mut total = 0;
    for (lhs, rhs, _) in TRUE.iter().chain(WRONG) {
        // Domain-restricted functions (log, sqrt of negatives) are NaN on
        // both sides alike; the check is about unions.
        let p = case(lhs, rhs);
        let (l, r) = exprs(&p);
        let dims: DimBindings = p
            .workload
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), [3, 4, 5, 2][i % 4]))
            .collect();
        total += check_egraph(&[&l, &r], &limits, &dims, 7);
    }
    eprintln!("checked {total} e-nodes");
    assert!(total > 1_000, "only {total} e-nodes checked");
}

// ---------------------------------------------------------------- property test

/// Shapes of the random programs: `[n, d]`, `[n, 1]`, `[d, d]`, rank 0.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    Nd,
    N1,
    Dd,
    S,
}

/// A random program's syntax tree (small: depth ≤ 4).
#[derive(Clone, Debug)]
enum E {
    In(&'static str),
    Lit(f64),
    DimD,
    Un(UnaryOp, Box<E>),
    Bin(BinaryOp, Box<E>, Box<E>),
    Mm(Box<E>, Box<E>),
    /// Reduce over the last axis, keepdim.
    Red(ReduceOp, Box<E>),
    T(Box<E>),
}

fn b(e: E) -> Box<E> {
    Box::new(e)
}

struct Gen {
    rng: ChaCha8Rng,
}

impl Gen {
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn leaf(&mut self, ty: Ty) -> E {
        match ty {
            Ty::Nd => E::In(self.pick(&["a", "b2"])),
            Ty::N1 => E::In("r"),
            Ty::Dd => E::In("w"),
            Ty::S => {
                if self.rng.random_bool(0.25) {
                    E::DimD
                } else {
                    E::Lit(self.pick(&[2.0, 0.5, -1.0, 3.0, 1.0]))
                }
            }
        }
    }

    /// A value bounded away from zero and positive: a safe denominator.
    fn positive(&mut self, ty: Ty, depth: u32) -> E {
        let inner = self.expr(ty, depth);
        match self.rng.random_range(0..3) {
            0 => E::Un(UnaryOp::Exp, b(self.leaf(ty))),
            1 => E::Bin(
                BinaryOp::Add,
                b(E::Un(UnaryOp::Square, b(inner))),
                b(E::Lit(1.0)),
            ),
            _ => E::Un(UnaryOp::Sigmoid, b(inner)),
        }
    }

    fn expr(&mut self, ty: Ty, depth: u32) -> E {
        if depth == 0 || self.rng.random_bool(0.25) || ty == Ty::S {
            return self.leaf(ty);
        }
        let d = depth - 1;
        match self.rng.random_range(0..10) {
            0 | 1 => {
                let u = self.pick(&[
                    UnaryOp::Neg,
                    UnaryOp::Square,
                    UnaryOp::Sigmoid,
                    UnaryOp::Silu,
                    UnaryOp::Relu,
                    UnaryOp::Exp,
                ]);
                // exp only of leaves: no overflow.
                let a = if u == UnaryOp::Exp {
                    self.leaf(ty)
                } else {
                    self.expr(ty, d)
                };
                E::Un(u, b(a))
            }
            2..=4 => {
                let op = self.pick(&BinaryOp::ALL);
                let a = self.expr(ty, d);
                let other = match (ty, self.rng.random_range(0..4)) {
                    (Ty::Nd, 0) => Ty::N1,
                    (_, 1) => Ty::S,
                    _ => ty,
                };
                let c = if op == BinaryOp::Div {
                    self.positive(other, d)
                } else {
                    self.expr(other, d)
                };
                if self.rng.random_bool(0.5) || op == BinaryOp::Div {
                    E::Bin(op, b(a), b(c))
                } else {
                    E::Bin(op, b(c), b(a))
                }
            }
            5 | 6 => match ty {
                Ty::Nd => E::Mm(b(self.expr(Ty::Nd, d)), b(self.expr(Ty::Dd, d))),
                Ty::Dd => E::Mm(b(E::T(b(self.expr(Ty::Nd, d)))), b(self.expr(Ty::Nd, d))),
                _ => E::Red(
                    self.pick(&[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Mean]),
                    b(self.expr(Ty::Nd, d)),
                ),
            },
            7 => match ty {
                Ty::Dd => E::T(b(self.expr(Ty::Dd, d))),
                Ty::N1 => E::Red(ReduceOp::Sum, b(self.expr(Ty::Nd, d))),
                _ => E::T(b(E::T(b(self.expr(ty, d))))),
            },
            _ => self.expr(ty, d),
        }
    }

    /// A random semantics-preserving rewrite somewhere in `e`.
    fn rewrite(&mut self, e: &E) -> E {
        let go_deep = self.rng.random_bool(0.6);
        match e {
            E::Bin(op, x, y) if go_deep => {
                if self.rng.random_bool(0.5) {
                    E::Bin(*op, b(self.rewrite(x)), y.clone())
                } else {
                    E::Bin(*op, x.clone(), b(self.rewrite(y)))
                }
            }
            E::Un(u, x) if go_deep => E::Un(*u, b(self.rewrite(x))),
            E::Mm(x, y) if go_deep => {
                if self.rng.random_bool(0.5) {
                    E::Mm(b(self.rewrite(x)), y.clone())
                } else {
                    E::Mm(x.clone(), b(self.rewrite(y)))
                }
            }
            E::Red(r, x) if go_deep => E::Red(*r, b(self.rewrite(x))),
            E::T(x) if go_deep => E::T(b(self.rewrite(x))),
            E::Bin(BinaryOp::Sub, x, y) => E::Bin(
                BinaryOp::Add,
                x.clone(),
                b(E::Bin(BinaryOp::Mul, b(E::Lit(-1.0)), y.clone())),
            ),
            E::Bin(BinaryOp::Div, x, y) => E::Bin(
                BinaryOp::Mul,
                x.clone(),
                b(E::Bin(BinaryOp::Div, b(E::Lit(1.0)), y.clone())),
            ),
            E::Bin(BinaryOp::Mul, x, y) if matches!(**y, E::Bin(BinaryOp::Add, ..)) => {
                let E::Bin(_, p, q) = &**y else {
                    unreachable!()
                };
                E::Bin(
                    BinaryOp::Add,
                    b(E::Bin(BinaryOp::Mul, x.clone(), p.clone())),
                    b(E::Bin(BinaryOp::Mul, x.clone(), q.clone())),
                )
            }
            E::Mm(x, w) if matches!(**x, E::Bin(BinaryOp::Mul, _, ref s) if matches!(**s, E::In("r") | E::Lit(_))) =>
            {
                let E::Bin(_, a, s) = &**x else {
                    unreachable!()
                };
                E::Bin(BinaryOp::Mul, b(E::Mm(a.clone(), w.clone())), s.clone())
            }
            E::Bin(op @ (BinaryOp::Add | BinaryOp::Mul), x, y) => E::Bin(*op, y.clone(), x.clone()),
            E::Red(ReduceOp::Mean, x) => E::Bin(
                BinaryOp::Div,
                b(E::Red(ReduceOp::Sum, x.clone())),
                b(E::DimD),
            ),
            E::T(x) if matches!(**x, E::Mm(..)) => {
                let E::Mm(p, q) = &**x else { unreachable!() };
                E::Mm(b(E::T(q.clone())), b(E::T(p.clone())))
            }
            other => E::Bin(BinaryOp::Mul, b(other.clone()), b(E::Lit(1.0))),
        }
    }

    /// A random small change somewhere in `e` (usually not equivalent).
    fn mutate(&mut self, e: &E, ty: Ty) -> E {
        let go_deep = self.rng.random_bool(0.5);
        match e {
            E::Bin(op, x, y) if go_deep => E::Bin(*op, b(self.mutate(x, ty)), y.clone()),
            E::Un(u, x) if go_deep => E::Un(*u, b(self.mutate(x, ty))),
            E::Bin(BinaryOp::Sub, x, y) => E::Bin(BinaryOp::Sub, y.clone(), x.clone()),
            E::Bin(BinaryOp::Add, x, y) => E::Bin(BinaryOp::Sub, x.clone(), y.clone()),
            E::Bin(BinaryOp::Mul, x, y) => E::Bin(BinaryOp::Add, x.clone(), y.clone()),
            E::Un(UnaryOp::Sigmoid, x) => E::Un(UnaryOp::Silu, x.clone()),
            E::Un(u, x) => E::Un(
                if *u == UnaryOp::Square {
                    UnaryOp::Neg
                } else {
                    UnaryOp::Square
                },
                x.clone(),
            ),
            E::Red(r, x) => E::Red(
                match r {
                    ReduceOp::Sum => ReduceOp::Max,
                    ReduceOp::Max => ReduceOp::Mean,
                    ReduceOp::Mean => ReduceOp::Sum,
                },
                x.clone(),
            ),
            E::Mm(x, y) if ty == Ty::Dd => E::Mm(y.clone(), x.clone()),
            E::In("a") => E::In("b2"),
            E::In("b2") => E::In("a"),
            E::Lit(v) => E::Lit(v + 1.0),
            other => E::Bin(BinaryOp::Mul, b(other.clone()), b(E::Lit(2.0))),
        }
    }
}

/// Build `e` into `bd` (inputs a, b2: [n, d], r: [n, 1], w: [d, d]).
fn build(bd: &mut GraphBuilder, ins: &BTreeMap<&str, NodeId>, e: &E) -> Option<NodeId> {
    Some(match e {
        E::In(n) => ins[n],
        E::Lit(v) => bd.constant(ScalarExpr::lit(*v), DType::F32),
        E::DimD => bd.constant(ScalarExpr::Dim("d".into()), DType::F32),
        E::Un(u, x) => {
            let x = build(bd, ins, x)?;
            bd.unary(*u, x)
        }
        E::Bin(op, x, y) => {
            let (x, y) = (build(bd, ins, x)?, build(bd, ins, y)?);
            bd.binary(*op, x, y).ok()?
        }
        E::Mm(x, y) => {
            let (x, y) = (build(bd, ins, x)?, build(bd, ins, y)?);
            bd.matmul(x, y).ok()?
        }
        E::Red(r, x) => {
            let x = build(bd, ins, x)?;
            bd.reduce(*r, x, -1, true).ok()?
        }
        E::T(x) => {
            let x = build(bd, ins, x)?;
            bd.transpose(x, -2, -1).ok()?
        }
    })
}

/// Two programs over the same inputs, as graphs with one output each.
fn graphs(p: &E, q: &E) -> Option<(Graph, Graph)> {
    let one = |e: &E| {
        let mut bd = GraphBuilder::new();
        let (n, d) = (DimExpr::symbol("n"), DimExpr::symbol("d"));
        let mut ins = BTreeMap::new();
        ins.insert("a", bd.input("a", DType::F32, vec![n.clone(), d.clone()]));
        ins.insert("b2", bd.input("b2", DType::F32, vec![n.clone(), d.clone()]));
        ins.insert(
            "r",
            bd.input("r", DType::F32, vec![n, DimExpr::constant(1)]),
        );
        ins.insert("w", bd.input("w", DType::F32, vec![d.clone(), d]));
        let out = build(&mut bd, &ins, e)?;
        bd.output("out", out);
        Some(bd.finish())
    };
    Some((one(p)?, one(q)?))
}

/// A random program and a partner: a rewrite of it (kind 0, equivalent), a
/// small mutation of it (kind 1) or another random program (kind 2).
fn random_pair(seed: u64) -> (E, E, u32) {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(seed),
    };
    let ty = g.pick(&[Ty::Nd, Ty::Nd, Ty::N1, Ty::Dd]);
    let p = g.expr(ty, 4);
    let kind = g.rng.random_range(0..3);
    let q = match kind {
        0 => {
            let mut q = g.rewrite(&p);
            for _ in 0..g.rng.random_range(0..3) {
                q = g.rewrite(&q);
            }
            q
        }
        1 => g.mutate(&p, ty),
        _ => g.expr(ty, 4),
    };
    (p, q, kind)
}

#[test]
fn every_enode_of_random_programs_egraphs_is_numerically_sound() {
    let limits = Limits {
        nodes: 3_000,
        iterations: 10,
        ..Limits::default()
    };
    let dims: DimBindings = [("n".to_string(), 3), ("d".to_string(), 5)].into();
    let mut total = 0;
    for seed in 0..150 {
        let (p, q, _) = random_pair(seed);
        let Some((gp, gq)) = graphs(&p, &q) else {
            continue;
        };
        let ep = from_graph(&gp, gp.outputs[0].node).expect("p");
        let eq = from_graph(&gq, gq.outputs[0].node).expect("q");
        total += check_egraph(&[&ep, &eq], &limits, &dims, seed);
    }
    eprintln!("checked {total} e-nodes");
    assert!(total > 10_000, "only {total} e-nodes checked");
}

#[derive(Default, Debug)]
struct PropStats {
    cases: usize,
    proven: usize,
    proven_rewrites: usize,
    rewrites: usize,
}

#[test]
fn property_proven_implies_numerically_equal() {
    use proptest::test_runner::{Config, TestRunner};
    use std::sync::Mutex;
    let stats = Mutex::new(PropStats::default());
    let limits = Limits {
        nodes: 3_000,
        iterations: 12,
        ..Limits::default()
    };
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::num::u64::ANY, |seed| {
        let (p, q, kind) = random_pair(seed);
        let Some((gp, gq)) = graphs(&p, &q) else {
            return Ok(());
        };
        let (op, oq) = (gp.outputs[0].node, gq.outputs[0].node);
        let (ep, eq) = (
            from_graph(&gp, op).expect("p"),
            from_graph(&gq, oq).expect("q"),
        );
        let Ok(v) = prove(&ep, &eq, &limits) else {
            return Ok(()); // different types
        };
        let mut st = stats.lock().expect("stats");
        st.cases += 1;
        if kind == 0 {
            st.rewrites += 1;
        }
        if v.is_equivalent() {
            st.proven += 1;
            if kind == 0 {
                st.proven_rewrites += 1;
            }
            drop(st);
            for (i, dims) in [[("n", 3), ("d", 5)], [("n", 4), ("d", 2)]]
                .iter()
                .enumerate()
            {
                let dims: DimBindings = dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
                let inputs =
                    random_inputs_by_name(&[&gp, &gq], &dims, seed ^ i as u64).expect("inputs");
                let (a, c) = (
                    eval_by_name(&gp, &dims, &inputs).expect("eval p"),
                    eval_by_name(&gq, &dims, &inputs).expect("eval q"),
                );
                let cmp = compare(&c, &a).expect("same shape");
                proptest::prop_assert!(
                    cmp.within(1e-9),
                    "UNSOUND: proved {p:?} = {q:?} but {cmp:?} at {dims:?}"
                );
            }
        }
        Ok(())
    });
    let st = stats.into_inner().expect("stats");
    eprintln!("{st:?}");
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(st.cases >= 200, "{st:?}");
    // The rewrites are true: most must be proven, or the test shows nothing.
    assert!(
        st.proven_rewrites * 10 >= st.rewrites * 7,
        "too few rewrites proven: {st:?}"
    );
}

// ---------------------------------------------------------------- prism equiv

fn data(name: &str) -> String {
    let p: PathBuf = ["tests", "data", "equiv", name].iter().collect();
    p.display().to_string()
}

#[test]
fn cli_equivalent_exits_0() {
    let out = prism(&["equiv", &data("rms_norm_matmul.toml")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("equivalent ("), "{stdout}");
    assert!(stdout.contains(" rewrites, ") && stdout.contains(" e-nodes)"));
}

#[test]
fn cli_not_equivalent_exits_1_with_a_counterexample() {
    let out = prism(&["equiv", &data("wrong_axis.toml")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("not equivalent: counterexample at n=")
            && stdout.contains("relative L2 error"),
        "{stdout}"
    );
    let out = prism(&["equiv", "--json", &data("wrong_axis.toml")]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["result"], "not_equivalent");
    assert!(v["counterexample"]["comparison"]["rel_l2"].as_f64() > Some(1e-6));
}

#[test]
fn cli_unknown_exits_2() {
    let out = prism(&["equiv", &data("relu_identity.toml")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("unknown: "), "{stdout}");
}

#[test]
fn cli_malformed_file_exits_2_with_its_location() {
    let out = prism(&["equiv", &data("malformed.toml")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error[unknown-op]: unknown op `exq`"),
        "{stderr}"
    );
    assert!(stderr.contains("malformed.toml:4:12"), "{stderr}");
    let out = prism(&["equiv", &data("no_such_file.toml")]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn equiv_file_errors_point_into_the_file() {
    let bad = |src: &str| match equiv_file::parse("f.toml", src) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(r) => r,
    };
    // A shape error in rhs, located in rhs's string.
    let src = "inputs = { x = \"f32[n, d]\", w = \"f32[d, e]\" }\n\
               dims = { n = 8, d = 4, e = 4 }\n\
               lhs = \"x @ w\"\n\
               rhs = \"w @ x\"\n";
    let r = bad(src);
    let d = &r.diagnostics[0];
    assert_eq!(d.code, "shape-mismatch", "{r}");
    assert_eq!(&src[d.span.range()], "w @ x", "{r}");
    // Different types of the two sides.
    let src = "inputs = { x = \"f32[n, d]\" }\ndims = { n = 8, d = 4 }\nlhs = \"x\"\nrhs = \"transpose(x)\"\n";
    let r = bad(src);
    assert_eq!(r.diagnostics[0].code, "type-mismatch", "{r}");
    // A bad input type, at the input's value.
    let src =
        "inputs = { x = \"f32[n, dd]\" }\ndims = { n = 8, d = 4 }\nlhs = \"x\"\nrhs = \"x\"\n";
    let r = bad(src);
    assert!(src[r.diagnostics[0].span.range()].contains("dd"), "{r}");
    // Missing and unknown keys.
    let r = bad("inputs = { x = \"f32[n]\" }\ndims = { n = 8 }\nlhs = \"x\"\nrhz = \"x\"\n");
    let codes: Vec<&str> = r.diagnostics.iter().map(|d| d.code).collect();
    assert!(
        codes.contains(&"unknown-key") && codes.contains(&"missing-key"),
        "{r}"
    );
    // TOML syntax.
    assert_eq!(bad("lhs = ").diagnostics[0].code, "toml-syntax");
    // An expression that tries to be a program.
    let r = bad("inputs = { x = \"f32[n]\" }\ndims = { n = 8 }\nlhs = \"x; z = x\"\nrhs = \"x\"\n");
    assert!(!r.diagnostics.is_empty());
}
