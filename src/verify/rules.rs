//! The rewrite rules, and the shape-checked applier every rule goes through.
//!
//! Every rule is an egg [`Rewrite`] whose searcher is a pattern and whose
//! applier is a [`Checked`]: a function that looks at the match (the
//! bound e-classes and their [`Data`]) and either declines or describes a
//! term to add (a [`Build`]). Before anything is added, the term is
//! type-checked bottom-up with [`infer`], and its shape and dtype must equal
//! those of the matched e-class; otherwise the match is dropped. That makes
//! "merging two e-classes of different shapes" impossible through a rule, and
//! rejects the ill-typed instances of plain rules (e.g. distributing a matmul
//! over an add that broadcasts along the contraction axis).
//!
//! Type checking is a safety net, not a soundness argument: a rule that is
//! well-typed but wrong (`matmul(a * r, b) = matmul(a, b) * r` for `r` that
//! scales *columns* of `a`, with square shapes) would pass it. Each rule's
//! comment says why it is sound over the reals; the guards encode the side
//! conditions. `tests/verify.rs` checks every e-node of saturated e-graphs
//! numerically.
//!
//! Rules are written over the normal form the one-way definition rules
//! produce: `a - b` is `a + (-1)*b`, `-a` is `(-1)*a`, `a / b` is
//! `a * recip(b)`, `rsqrt` is `recip(sqrt)`, `square(a)` is `a * a`,
//! `sigmoid`/`silu` are their definitions. Scale factors are pulled *out* of
//! matmuls and reductions, reshapes float *up* past elementwise operators and
//! permutes sink *down* towards the inputs, so two programs meet in the middle.

use std::borrow::Cow;
use std::sync::OnceLock;

use egg::{Applier, ENodeOrVar, Id, Language, Pattern, PatternAst, Rewrite, Subst, Symbol, Var};

use super::lang::{Node, Red, Un};
use super::shape::{Data, ShapeAnalysis, TensorEGraph, TensorInfo, broadcast, infer};
use crate::ir::{BinaryOp, DimExpr};

/// A verifier rule.
pub type Rule = Rewrite<Node, ShapeAnalysis>;

/// A small term to add to the e-graph. Slots are existing e-classes or new
/// nodes whose children are earlier slots (children ids are slot indices).
#[derive(Default, Debug)]
pub struct Build {
    slots: Vec<Slot>,
}

#[derive(Debug)]
enum Slot {
    Class(Id),
    Node(Node),
}

impl Build {
    /// An existing e-class.
    pub fn class(&mut self, id: Id) -> Id {
        self.push(Slot::Class(id))
    }

    /// A new node; its children are slots returned earlier.
    pub fn node(&mut self, n: Node) -> Id {
        self.push(Slot::Node(n))
    }

    fn push(&mut self, s: Slot) -> Id {
        self.slots.push(s);
        Id::from(self.slots.len() - 1)
    }

    /// Instantiate a pattern with a substitution.
    pub fn pattern(&mut self, ast: &PatternAst<Node>, subst: &Subst) -> Option<Id> {
        let mut map: Vec<Id> = Vec::with_capacity(ast.as_ref().len());
        for n in ast.as_ref() {
            let id = match n {
                ENodeOrVar::Var(v) => self.class(*subst.get(*v)?),
                ENodeOrVar::ENode(e) => {
                    let e = e.clone().map_children(|c| map[usize::from(c)]);
                    self.node(e)
                }
            };
            map.push(id);
        }
        map.last().copied()
    }

    /// Type-check the term rooted at `root` against the e-class it is to
    /// be merged into.
    fn check(&self, eg: &TensorEGraph, root: Id, eclass: Id) -> Result<(), String> {
        let mut data: Vec<Cow<'_, Data>> = Vec::with_capacity(self.slots.len());
        for s in &self.slots {
            let d = match s {
                Slot::Class(id) => Cow::Borrowed(&eg[*id].data),
                Slot::Node(n) => Cow::Owned(infer(n, |c| data[usize::from(c)].as_ref())?),
            };
            data.push(d);
        }
        let (Data::Tensor(got), Data::Tensor(want)) =
            (data[usize::from(root)].as_ref(), &eg[eclass].data)
        else {
            return Err("not a tensor".into());
        };
        if got.shape != want.shape {
            return Err(format!("shape {:?} instead of {:?}", got.shape, want.shape));
        }
        if let (Some(a), Some(b)) = (got.dtype, want.dtype)
            && a != b
        {
            return Err(format!("dtype {a} instead of {b}"));
        }
        Ok(())
    }

    fn add(self, eg: &mut TensorEGraph) -> Vec<Id> {
        let mut ids: Vec<Id> = Vec::with_capacity(self.slots.len());
        for s in self.slots {
            let id = match s {
                Slot::Class(id) => id,
                Slot::Node(n) => eg.add(n.map_children(|c| ids[usize::from(c)])),
            };
            ids.push(id);
        }
        ids
    }
}

/// What an applier sees of a match.
pub struct Ctx<'a> {
    pub eg: &'a TensorEGraph,
    pub subst: &'a Subst,
    /// The matched e-class.
    pub eclass: Id,
}

impl Ctx<'_> {
    pub fn id(&self, v: Var) -> Option<Id> {
        self.subst.get(v).copied()
    }

    pub fn data(&self, v: Var) -> Option<&Data> {
        Some(&self.eg[self.id(v)?].data)
    }

    pub fn t(&self, v: Var) -> Option<&TensorInfo> {
        self.data(v)?.tensor()
    }

    pub fn shape(&self, v: Var) -> Option<&[DimExpr]> {
        self.data(v)?.shape()
    }

    pub fn rank(&self, v: Var) -> Option<usize> {
        Some(self.shape(v)?.len())
    }

    pub fn int(&self, v: Var) -> Option<i64> {
        match self.data(v)? {
            Data::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn axis(&self, v: Var) -> Option<usize> {
        usize::try_from(self.int(v)?).ok()
    }

    pub fn perm(&self, v: Var) -> Option<&[usize]> {
        match self.data(v)? {
            Data::Perm(p) => Some(p),
            _ => None,
        }
    }

    pub fn target_shape(&self, v: Var) -> Option<&[DimExpr]> {
        match self.data(v)? {
            Data::Shape(s) => Some(s),
            _ => None,
        }
    }

    pub fn lit(&self, v: Var) -> Option<f64> {
        self.t(v)?.lit
    }

    /// A dim-polynomial leaf in the class bound to `v`.
    pub fn dim(&self, v: Var) -> Option<&DimExpr> {
        self.eg[self.id(v)?].nodes.iter().find_map(|n| match n {
            Node::Dim(d) => Some(d),
            _ => None,
        })
    }

    /// The matched e-class.
    pub fn class(&self) -> Option<&TensorInfo> {
        self.eg[self.eclass].data.tensor()
    }
}

type BuildFn = dyn Fn(&Ctx<'_>, &mut Build) -> Option<Id> + Send + Sync;

/// The applier of every rule: build, type-check against the matched
/// e-class, then add and union.
pub struct Checked {
    f: Box<BuildFn>,
}

impl Applier<Node, ShapeAnalysis> for Checked {
    fn apply_one(
        &self,
        egraph: &mut TensorEGraph,
        eclass: Id,
        subst: &Subst,
        _searcher_ast: Option<&PatternAst<Node>>,
        _rule_name: Symbol,
    ) -> Vec<Id> {
        let mut b = Build::default();
        let root = {
            let ctx = Ctx {
                eg: egraph,
                subst,
                eclass,
            };
            match (self.f)(&ctx, &mut b) {
                Some(r) => r,
                None => return vec![],
            }
        };
        if b.check(egraph, root, eclass).is_err() {
            return vec![];
        }
        let ids = b.add(egraph);
        let new = ids[usize::from(root)];
        if egraph.union(eclass, new) {
            vec![new]
        } else {
            vec![]
        }
    }
}

/// A pattern variable.
pub fn var(name: &str) -> Var {
    Var::from(Symbol::from(name))
}

fn pattern(s: &str) -> Result<Pattern<Node>, String> {
    s.parse::<Pattern<Node>>()
        .map_err(|e| format!("bad pattern `{s}`: {e}"))
}

/// A rule with a custom right-hand side.
pub fn rule_fn(
    name: impl Into<Symbol>,
    lhs: &str,
    f: impl Fn(&Ctx<'_>, &mut Build) -> Option<Id> + Send + Sync + 'static,
) -> Result<Rule, String> {
    Rewrite::new(name, pattern(lhs)?, Checked { f: Box::new(f) })
}

/// A pattern rule applied when `guard` holds.
pub fn rule_if(
    name: impl Into<Symbol>,
    lhs: &str,
    rhs: &str,
    guard: impl Fn(&Ctx<'_>) -> bool + Send + Sync + 'static,
) -> Result<Rule, String> {
    let rhs = pattern(rhs)?;
    rule_fn(name, lhs, move |c, b| {
        if !guard(c) {
            return None;
        }
        b.pattern(&rhs.ast, c.subst)
    })
}

/// A pattern rule (still shape-checked).
pub fn rule(name: impl Into<Symbol>, lhs: &str, rhs: &str) -> Result<Rule, String> {
    rule_if(name, lhs, rhs, |_| true)
}

/// Dim of `s` at axis `ax` of a broadcast result of rank `rank`, or `None`
/// when `s` does not reach that axis.
fn dim_at(s: &[DimExpr], rank: usize, ax: usize) -> Option<&DimExpr> {
    let off = rank.checked_sub(s.len())?;
    ax.checked_sub(off).and_then(|i| s.get(i))
}

/// Whether an operand of shape `s`, broadcast to rank `rank`, is constant
/// along axis `ax`: it does not reach the axis or has size 1 there.
fn const_along(s: &[DimExpr], rank: usize, ax: usize) -> bool {
    dim_at(s, rank, ax).is_none_or(DimExpr::is_one)
}

/// The axis of `s` that lines up with axis `ax` of a rank-`rank` result.
fn local_axis(s: &[DimExpr], rank: usize, ax: usize) -> Option<usize> {
    let off = rank.checked_sub(s.len())?;
    ax.checked_sub(off)
}

/// `a * b` when exact in f64.
fn exact_mul(a: f64, b: f64) -> Option<f64> {
    let p = a * b;
    if !p.is_finite() || (p == 0.0 && a != 0.0 && b != 0.0) {
        return None;
    }
    // Far from the subnormal range, so the FMA's error term cannot underflow.
    if p != 0.0 && p.abs() < 1e-250 {
        return None;
    }
    (a.mul_add(b, -p) == 0.0).then_some(p)
}

/// `a + b` when exact in f64 (TwoSum error term zero).
fn exact_add(a: f64, b: f64) -> Option<f64> {
    let s = a + b;
    if !s.is_finite() {
        return None;
    }
    let bb = s - a;
    let err = (a - (s - bb)) + (b - bb);
    (err == 0.0).then_some(s)
}

/// `1 / a` when exact in f64 (a power of two in the normal range).
fn exact_recip(a: f64) -> Option<f64> {
    if a == 0.0 || !a.is_finite() {
        return None;
    }
    let q = 1.0 / a;
    (q.is_normal() && q.mul_add(a, -1.0) == 0.0).then_some(q)
}

/// The permutation that swaps the last two axes of a rank-`r` tensor.
fn swap_last_two(r: usize) -> Option<Vec<usize>> {
    if r < 2 {
        return None;
    }
    let mut p: Vec<usize> = (0..r).collect();
    p.swap(r - 2, r - 1);
    Some(p)
}

fn binop_rules(out: &mut Vec<Result<Rule, String>>) {
    let (a, b, e) = (var("?a"), var("?b"), var("?e"));

    // ---- Normal forms (one way; by definition of the operators) ----
    // a - b = a + (-1)*b over the reals.
    out.push(rule("sub-to-add", "(sub ?a ?b)", "(add ?a (mul -1 ?b))"));
    // -a = (-1)*a.
    out.push(rule("neg-to-mul", "(neg ?a)", "(mul -1 ?a)"));
    // a / b = a * (1/b) wherever b ≠ 0 (both sides undefined where b = 0).
    out.push(rule("div-to-mul", "(div ?a ?b)", "(mul ?a (recip ?b))"));
    // rsqrt(a) = 1/sqrt(a) by definition.
    out.push(rule("rsqrt-def", "(rsqrt ?a)", "(recip (sqrt ?a))"));
    // square(a) = a*a.
    out.push(rule("square-def", "(square ?a)", "(mul ?a ?a)"));
    // sigmoid(a) = 1/(1 + exp(-a)) by definition.
    out.push(rule(
        "sigmoid-def",
        "(sigmoid ?a)",
        "(recip (add 1 (exp (mul -1 ?a))))",
    ));
    // silu(a) = a * sigmoid(a) by definition.
    out.push(rule("silu-def", "(silu ?a)", "(mul ?a (sigmoid ?a))"));

    // ---- Commutative semiring laws (elementwise, with broadcasting) ----
    // Broadcasting is symmetric and associative, and every operand of a
    // broadcast sum/product reaches each output element through the same
    // index map on both sides, so the scalar laws hold elementwise. (If the
    // three-way broadcast is well-typed, so is every pairwise one.)
    out.push(rule("add-comm", "(add ?a ?b)", "(add ?b ?a)"));
    out.push(rule(
        "add-assoc",
        "(add (add ?a ?b) ?c)",
        "(add ?a (add ?b ?c))",
    ));
    out.push(rule("mul-comm", "(mul ?a ?b)", "(mul ?b ?a)"));
    out.push(rule(
        "mul-assoc",
        "(mul (mul ?a ?b) ?c)",
        "(mul ?a (mul ?b ?c))",
    ));
    // a*(b + c) = a*b + a*c, and back (factoring a common factor).
    out.push(rule(
        "mul-distrib",
        "(mul ?a (add ?b ?c))",
        "(add (mul ?a ?b) (mul ?a ?c))",
    ));
    out.push(rule(
        "mul-factor",
        "(add (mul ?a ?b) (mul ?a ?c))",
        "(mul ?a (add ?b ?c))",
    ));
    // 1*a = a, 0 + a = a (the rank-0 constant broadcasts into a's shape).
    out.push(rule("mul-one", "(mul 1 ?a)", "?a"));
    out.push(rule("add-zero", "(add 0 ?a)", "?a"));

    // ---- Constant folding (only when the f64 result is exact) ----
    out.push(rule_fn("fold-mul", "(mul ?a ?b)", move |cx, bd| {
        let v = exact_mul(cx.lit(a)?, cx.lit(b)?)?;
        Some(bd.node(Node::lit(v)))
    }));
    out.push(rule_fn("fold-add", "(add ?a ?b)", move |cx, bd| {
        let v = exact_add(cx.lit(a)?, cx.lit(b)?)?;
        Some(bd.node(Node::lit(v)))
    }));
    out.push(rule_fn("fold-recip", "(recip ?a)", move |cx, bd| {
        let v = exact_recip(cx.lit(a)?)?;
        Some(bd.node(Node::lit(v)))
    }));
    // Dim values are integers: products and sums of dim polynomials and
    // integer literals are exact polynomial arithmetic.
    out.push(rule_fn("fold-dim-mul", "(mul ?a ?b)", move |cx, bd| {
        let p = cx.dim(a)?;
        let q = match cx.dim(b) {
            Some(q) => q.clone(),
            None => int_dim(cx.lit(b)?)?,
        };
        Some(bd.node(Node::dim(p.mul(&q))))
    }));
    out.push(rule_fn("fold-dim-add", "(add ?a ?b)", move |cx, bd| {
        let p = cx.dim(a)?;
        let q = match cx.dim(b) {
            Some(q) => q.clone(),
            None => int_dim(cx.lit(b)?)?,
        };
        Some(bd.node(Node::dim(p.add(&q))))
    }));

    // ---- Reciprocals ----
    // 1/(1/a) = a for a ≠ 0.
    out.push(rule("recip-recip", "(recip (recip ?a))", "?a"));
    // 1/(a*b) = (1/a)*(1/b) for a, b ≠ 0.
    out.push(rule(
        "recip-mul",
        "(recip (mul ?a ?b))",
        "(mul (recip ?a) (recip ?b))",
    ));
    // a * (e * 1/e) = a, only where e is provably never zero (exp, positive
    // constants, dims, ...): otherwise the left side is undefined at e = 0.
    out.push(rule_if(
        "cancel",
        "(mul ?a (mul ?e (recip ?e)))",
        "?a",
        move |cx| cx.t(e).is_some_and(|t| t.nonzero),
    ));
    out.push(rule_if(
        "cancel-scalar",
        "(mul ?e (recip ?e))",
        "1",
        move |cx| cx.t(e).is_some_and(|t| t.nonzero && t.rank() == 0),
    ));
    // sqrt(a)*sqrt(a) = a for a ≥ 0.
    out.push(rule_if(
        "sqrt-sqrt",
        "(mul (sqrt ?a) (sqrt ?a))",
        "?a",
        move |cx| cx.t(a).is_some_and(|t| t.nonneg),
    ));

    // ---- exp / log ----
    // exp(a + b) = exp(a) * exp(b) (with broadcasting: elementwise).
    // With a - m = a + (-1)*m this is the online-softmax identity
    // exp(a - m) = exp(a) * exp(-m).
    out.push(rule(
        "exp-add",
        "(exp (add ?a ?b))",
        "(mul (exp ?a) (exp ?b))",
    ));
    // exp(0) = 1.
    out.push(rule("exp-zero", "(exp 0)", "1"));
    // 1/exp(a) = exp(-a), both ways (so exp(-m) * exp(m) cancels).
    out.push(rule("recip-exp", "(recip (exp ?a))", "(exp (mul -1 ?a))"));
    out.push(rule("exp-neg", "(exp (mul -1 ?a))", "(recip (exp ?a))"));
    // log(exp(a)) = a for real a.
    out.push(rule("log-exp", "(log (exp ?a))", "?a"));
    // exp(log(a)) = a only for a > 0.
    out.push(rule_if("exp-log", "(exp (log ?a))", "?a", move |cx| {
        cx.t(a).is_some_and(TensorInfo::positive)
    }));
    // log(a*b) = log(a) + log(b) only for a, b > 0.
    out.push(rule_if(
        "log-mul",
        "(log (mul ?a ?b))",
        "(add (log ?a) (log ?b))",
        move |cx| {
            cx.t(a).is_some_and(TensorInfo::positive) && cx.t(b).is_some_and(TensorInfo::positive)
        },
    ));
}

/// An integer literal as a constant dim polynomial.
fn int_dim(v: f64) -> Option<DimExpr> {
    (v.fract() == 0.0 && v.abs() < 2_147_483_648.0).then(|| DimExpr::constant(v as i64))
}

fn matmul_rules(out: &mut Vec<Result<Rule, String>>) {
    let (r, cc) = (var("?r"), var("?c"));
    // matmul(a * r, b) = matmul(a, b) * r when r is constant along the
    // contraction axis (its last dim is 1, or it is rank 0): then
    //   Σ_k a[.., i, k] r[.., i, 0] b[.., k, j] = r[.., i, 0] Σ_k a[.., i, k] b[.., k, j],
    // and r's other dims line up with the same axes (rows, batch) of a*r
    // and of the product. A row scale; rms_norm's scale is one.
    out.push(rule_if(
        "matmul-row-scale",
        "(matmul (mul ?a ?r) ?b)",
        "(mul (matmul ?a ?b) ?r)",
        move |cx| {
            cx.shape(r)
                .is_some_and(|s| s.last().is_none_or(DimExpr::is_one))
        },
    ));
    // matmul(a, b * c) = matmul(a, b) * c when c is constant along b's
    // contraction axis (second to last dim 1, or rank < 2): a column scale,
    //   Σ_k a[i, k] b[k, j] c[0, j] = c[0, j] Σ_k a[i, k] b[k, j].
    out.push(rule_if(
        "matmul-col-scale",
        "(matmul ?a (mul ?b ?c))",
        "(mul (matmul ?a ?b) ?c)",
        move |cx| {
            cx.shape(cc)
                .is_some_and(|s| s.len() < 2 || s[s.len() - 2].is_one())
        },
    ));
    // Matmul is bilinear: it distributes over + on either side. If the add
    // broadcasts along the contraction axis the split matmul is ill-typed
    // and the shape check drops it; broadcasting along rows, columns or
    // batch dims commutes with the sum over k.
    out.push(rule(
        "matmul-distrib-r",
        "(matmul ?a (add ?b ?c))",
        "(add (matmul ?a ?b) (matmul ?a ?c))",
    ));
    out.push(rule(
        "matmul-distrib-l",
        "(matmul (add ?a ?b) ?c)",
        "(add (matmul ?a ?c) (matmul ?b ?c))",
    ));
    out.push(rule(
        "matmul-factor-r",
        "(add (matmul ?a ?b) (matmul ?a ?c))",
        "(matmul ?a (add ?b ?c))",
    ));
    out.push(rule(
        "matmul-factor-l",
        "(add (matmul ?a ?c) (matmul ?b ?c))",
        "(matmul (add ?a ?b) ?c)",
    ));
    // (ab)c = a(bc) (batch dims broadcast the same way on both sides).
    out.push(rule(
        "matmul-assoc",
        "(matmul (matmul ?a ?b) ?c)",
        "(matmul ?a (matmul ?b ?c))",
    ));
    out.push(rule(
        "matmul-assoc-rev",
        "(matmul ?a (matmul ?b ?c))",
        "(matmul (matmul ?a ?b) ?c)",
    ));
}

fn layout_rules(out: &mut Vec<Result<Rule, String>>) {
    let (p, q, x, s, a, b, ax) = (
        var("?p"),
        var("?q"),
        var("?x"),
        var("?s"),
        var("?a"),
        var("?b"),
        var("?ax"),
    );

    // permute(p, permute(q, x)) = permute(r, x) with r[i] = q[p[i]]:
    // output dim i of the outer is dim p[i] of the inner, which is dim
    // q[p[i]] of x.
    out.push(rule_fn(
        "permute-compose",
        "(permute ?p (permute ?q ?x))",
        move |cx, bd| {
            let (pp, qq) = (cx.perm(p)?, cx.perm(q)?);
            let r: Vec<usize> = pp
                .iter()
                .map(|&i| qq.get(i).copied())
                .collect::<Option<_>>()?;
            let perm = bd.node(Node::Perm(r));
            let xx = bd.class(cx.id(x)?);
            Some(bd.node(Node::Permute([perm, xx])))
        },
    ));
    // The identity permutation does nothing.
    out.push(rule_if(
        "permute-identity",
        "(permute ?p ?x)",
        "?x",
        move |cx| {
            cx.perm(p)
                .is_some_and(|pp| pp.iter().enumerate().all(|(i, &v)| i == v))
        },
    ));
    // Elementwise unary operators commute with any permutation.
    for u in Un::ALL {
        let n = u.name();
        out.push(rule(
            format!("permute-{n}"),
            &format!("(permute ?p ({n} ?x))"),
            &format!("({n} (permute ?p ?x))"),
        ));
    }
    // permute(p, a op b) = permute(p, a) op permute(p, b) when both operands
    // have the full rank (size-1 dims move with their axes, so broadcasting
    // is preserved); a rank-0 operand stays as it is.
    for op in BinaryOp::ALL {
        out.push(rule_fn(
            format!("permute-{}", op.name()),
            &format!("(permute ?p ({} ?a ?b))", op.name()),
            move |cx, bd| {
                let rank = cx.class()?.rank();
                let perm = bd.class(cx.id(p)?);
                let mut side = |v: Var| -> Option<Id> {
                    let id = bd.class(cx.id(v)?);
                    match cx.rank(v)? {
                        0 => Some(id),
                        r if r == rank => Some(bd.node(Node::Permute([perm, id]))),
                        _ => None,
                    }
                };
                let (l, rr) = (side(a)?, side(b)?);
                Some(bd.node(Node::Binary(op, [l, rr])))
            },
        ));
    }
    // permute(p, red(ax, x)) = red(i, permute(p, x)) with p[i] = ax: the
    // reduced axis moves to position i, where the permuted x has it.
    for r in [Red::Sum, Red::Max] {
        out.push(rule_fn(
            format!("permute-{}", r.name()),
            &format!("(permute ?p ({} ?ax ?x))", r.name()),
            move |cx, bd| {
                let pp = cx.perm(p)?;
                let k = cx.axis(ax)?;
                let i = pp.iter().position(|&v| v == k)?;
                let perm = bd.class(cx.id(p)?);
                let xx = bd.class(cx.id(x)?);
                let px = bd.node(Node::Permute([perm, xx]));
                let axis = bd.node(Node::Num(i as i64));
                Some(bd.node(Node::Reduce(r, [axis, px])))
            },
        ));
    }
    // transpose(matmul(a, b)) = matmul(transpose(b), transpose(a)) where
    // transpose swaps the last two axes: (AB)ᵀ = BᵀAᵀ for each batch entry.
    // And a permutation of batch axes only commutes with a matmul whose
    // operands both have the full rank.
    out.push(rule_fn(
        "permute-matmul",
        "(permute ?p (matmul ?a ?b))",
        move |cx, bd| {
            let pp = cx.perm(p)?.to_vec();
            let rank = pp.len();
            let (ra, rb) = (cx.rank(a)?, cx.rank(b)?);
            let (ia, ib) = (bd.class(cx.id(a)?), bd.class(cx.id(b)?));
            if Some(&pp) == swap_last_two(rank).as_ref() {
                let pa = bd.node(Node::Perm(swap_last_two(ra)?));
                let pb = bd.node(Node::Perm(swap_last_two(rb)?));
                let ta = bd.node(Node::Permute([pa, ia]));
                let tb = bd.node(Node::Permute([pb, ib]));
                return Some(bd.node(Node::Matmul([tb, ta])));
            }
            if rank >= 2
                && pp[rank - 2] == rank - 2
                && pp[rank - 1] == rank - 1
                && ra == rank
                && rb == rank
            {
                let perm = bd.class(cx.id(p)?);
                let ta = bd.node(Node::Permute([perm, ia]));
                let tb = bd.node(Node::Permute([perm, ib]));
                return Some(bd.node(Node::Matmul([ta, tb])));
            }
            None
        },
    ));

    // reshape(s, reshape(t, x)) = reshape(s, x): reshapes reinterpret the
    // same row-major element sequence.
    out.push(rule(
        "reshape-reshape",
        "(reshape ?s (reshape ?t ?x))",
        "(reshape ?s ?x)",
    ));
    // A reshape to the same shape does nothing.
    out.push(rule_if(
        "reshape-noop",
        "(reshape ?s ?x)",
        "?x",
        move |cx| cx.target_shape(s).is_some() && cx.target_shape(s) == cx.shape(x),
    ));
    // Elementwise unary operators commute with reshapes (they act on each
    // element of the sequence).
    for u in Un::ALL {
        let n = u.name();
        out.push(rule(
            format!("reshape-{n}"),
            &format!("({n} (reshape ?s ?x))"),
            &format!("(reshape ?s ({n} ?x))"),
        ));
    }
    // So do binary ones on operands of one shape (no broadcasting), and with
    // a rank-0 operand.
    for op in BinaryOp::ALL {
        let n = op.name();
        out.push(rule_if(
            format!("reshape-{n}"),
            &format!("({n} (reshape ?s ?a) (reshape ?s ?b))"),
            &format!("(reshape ?s ({n} ?a ?b))"),
            move |cx| cx.shape(a).is_some() && cx.shape(a) == cx.shape(b),
        ));
        out.push(rule_if(
            format!("reshape-{n}-scalar-r"),
            &format!("({n} (reshape ?s ?a) ?b)"),
            &format!("(reshape ?s ({n} ?a ?b))"),
            move |cx| cx.rank(b) == Some(0),
        ));
        out.push(rule_if(
            format!("reshape-{n}-scalar-l"),
            &format!("({n} ?b (reshape ?s ?a))"),
            &format!("(reshape ?s ({n} ?b ?a))"),
            move |cx| cx.rank(b) == Some(0),
        ));
        // Numpy broadcasting aligns operands at their last axis, so leading
        // size-1 axes on one operand change nothing while the other operand
        // has at least as many axes: op(a, reshape([1, .., 1] ++ shape(b), b))
        // = op(a, b), and the mirror.
        let lead_ones = move |cx: &Ctx<'_>, reshaped: Var, other: Var| {
            let (Some(t), Some(sb), Some(ra)) =
                (cx.target_shape(s), cx.shape(reshaped), cx.rank(other))
            else {
                return false;
            };
            t.len() >= sb.len()
                && ra >= t.len()
                && t[t.len() - sb.len()..] == sb[..]
                && t[..t.len() - sb.len()].iter().all(DimExpr::is_one)
        };
        out.push(rule_if(
            format!("{n}-lead-ones-r"),
            &format!("({n} ?a (reshape ?s ?b))"),
            &format!("({n} ?a ?b)"),
            move |cx| lead_ones(cx, b, a),
        ));
        out.push(rule_if(
            format!("{n}-lead-ones-l"),
            &format!("({n} (reshape ?s ?b) ?a)"),
            &format!("({n} ?b ?a)"),
            move |cx| lead_ones(cx, b, a),
        ));
    }
}

fn reduce_rules(out: &mut Vec<Result<Rule, String>>) {
    let (ax, x, r, a, b) = (var("?ax"), var("?x"), var("?r"), var("?a"), var("?b"));

    // sum(x * r, ax) = sum(x, ax) * r when r is constant along ax:
    // Σ_i x_i r = r Σ_i x_i. The axis is renumbered for x's own rank; if x
    // does not reach the axis the rule does not apply (that is the mirror
    // case, found through commutativity).
    for red in [Red::Sum, Red::Max] {
        let name = red.name();
        out.push(rule_fn(
            format!("{name}-scale"),
            &format!("({name} ?ax (mul ?x ?r))"),
            move |cx, bd| {
                let (sx, sr) = (cx.shape(x)?, cx.shape(r)?);
                let k = cx.axis(ax)?;
                let rank = broadcast(sx, sr)?.len();
                if !const_along(sr, rank, k) {
                    return None;
                }
                // max(x * r) = max(x) * r needs r ≥ 0.
                if red == Red::Max && !cx.t(r)?.nonneg {
                    return None;
                }
                let kx = local_axis(sx, rank, k)?;
                let axis = bd.node(Node::Num(kx as i64));
                let xx = bd.class(cx.id(x)?);
                let s = bd.node(Node::Reduce(red, [axis, xx]));
                let rr = bd.class(cx.id(r)?);
                Some(bd.node(Node::Binary(BinaryOp::Mul, [s, rr])))
            },
        ));
    }
    // max(x + r, ax) = max(x, ax) + r when r is constant along ax.
    out.push(rule_fn(
        "max-shift",
        "(max ?ax (add ?x ?r))",
        move |cx, bd| {
            let (sx, sr) = (cx.shape(x)?, cx.shape(r)?);
            let k = cx.axis(ax)?;
            let rank = broadcast(sx, sr)?.len();
            if !const_along(sr, rank, k) {
                return None;
            }
            let kx = local_axis(sx, rank, k)?;
            let axis = bd.node(Node::Num(kx as i64));
            let xx = bd.class(cx.id(x)?);
            let m = bd.node(Node::Reduce(Red::Max, [axis, xx]));
            let rr = bd.class(cx.id(r)?);
            Some(bd.node(Node::Binary(BinaryOp::Add, [m, rr])))
        },
    ));
    // sum(a + b, ax) = sum(a, ax) + sum(b, ax) where both span the axis;
    // an operand constant along the axis (broadcast over its n elements)
    // sums to n times itself.
    out.push(rule_fn(
        "sum-add",
        "(sum ?ax (add ?a ?b))",
        move |cx, bd| {
            let (sa, sb) = (cx.shape(a)?, cx.shape(b)?);
            let k = cx.axis(ax)?;
            let full = broadcast(sa, sb)?;
            let rank = full.len();
            let n = full.get(k)?.clone();
            let mut part = |v: Var, s: &[DimExpr]| -> Option<Id> {
                let id = bd.class(cx.id(v)?);
                match dim_at(s, rank, k) {
                    Some(d) if *d == n => {
                        let axis = bd.node(Node::Num(local_axis(s, rank, k)? as i64));
                        Some(bd.node(Node::Reduce(Red::Sum, [axis, id])))
                    }
                    _ if n.is_one() => Some(id),
                    _ => {
                        let count = bd.node(Node::dim(n.clone()));
                        Some(bd.node(Node::Binary(BinaryOp::Mul, [id, count])))
                    }
                }
            };
            let (l, rr) = (part(a, sa)?, part(b, sb)?);
            Some(bd.node(Node::Binary(BinaryOp::Add, [l, rr])))
        },
    ));
    // Reducing an axis of size 1 (keeping it) is the identity.
    for red in [Red::Sum, Red::Max] {
        out.push(rule_if(
            format!("{}-unit", red.name()),
            &format!("({} ?ax ?x)", red.name()),
            "?x",
            move |cx| {
                let (Some(k), Some(s)) = (cx.axis(ax), cx.shape(x)) else {
                    return false;
                };
                s.get(k).is_some_and(DimExpr::is_one)
            },
        ));
    }
    // Sums over two axes commute (finite sums).
    out.push(rule(
        "sum-sum",
        "(sum ?i (sum ?j ?x))",
        "(sum ?j (sum ?i ?x))",
    ));
    // Summing a matmul over its column axis sums b's columns first, over its
    // row axis sums a's rows first: Σ_j Σ_k a_ik b_kj = Σ_k a_ik (Σ_j b_kj).
    out.push(rule_fn(
        "sum-matmul",
        "(sum ?ax (matmul ?a ?b))",
        move |cx, bd| {
            let rank = cx.class()?.rank();
            let k = cx.axis(ax)?;
            let (ra, rb) = (cx.rank(a)?, cx.rank(b)?);
            let (ia, ib) = (bd.class(cx.id(a)?), bd.class(cx.id(b)?));
            if k + 1 == rank {
                let axis = bd.node(Node::Num(rb as i64 - 1));
                let sb = bd.node(Node::Reduce(Red::Sum, [axis, ib]));
                Some(bd.node(Node::Matmul([ia, sb])))
            } else if k + 2 == rank {
                let axis = bd.node(Node::Num(ra as i64 - 2));
                let sa = bd.node(Node::Reduce(Red::Sum, [axis, ia]));
                Some(bd.node(Node::Matmul([sa, ib])))
            } else {
                None
            }
        },
    ));
}

/// Every rule, built once.
pub fn rules() -> Result<&'static [Rule], String> {
    static RULES: OnceLock<Result<Vec<Rule>, String>> = OnceLock::new();
    RULES
        .get_or_init(|| {
            let mut out = Vec::new();
            binop_rules(&mut out);
            matmul_rules(&mut out);
            layout_rules(&mut out);
            reduce_rules(&mut out);
            out.into_iter().collect()
        })
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// Names of all rules, in application order.
pub fn rule_names() -> Vec<String> {
    rules()
        .map(|rs| rs.iter().map(|r| r.name.to_string()).collect())
        .unwrap_or_default()
}
