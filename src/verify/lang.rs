//! The verifier's tensor language: every e-node is a whole-tensor operation
//! (index-free, no binders), as in the IR, plus attribute leaves (axes,
//! permutations, target shapes) that operators take as children so that
//! rewrite patterns can bind them to variables (`(sum ?ax ?x)`).
//!
//! Differences from [`crate::ir::Op`], all for the sake of rewriting:
//! - reductions always keep the reduced axis (size 1); `keepdim = false` is a
//!   [`Node::Reshape`] after it, and `mean` is `sum * recip(size)`;
//! - constants are trees of rank-0 tensors: literals ([`Node::Lit`], compared
//!   by bits), dim values ([`Node::Dim`], a polynomial over symbolic dims) and
//!   the ordinary operators over them, so scalar and tensor algebra share rules;
//! - `recip` (1/x) is an operator, so division can be normalized to a product.
//!
//! [`from_graph`] converts a graph output into a [`RecExpr`] (iteratively, so
//! deep graphs do not overflow the stack); [`to_graph`] converts back, for
//! numeric checks of anything the e-graph produces.

use std::collections::HashMap;
use std::fmt;

use egg::{FromOp, Id, Language, RecExpr};

use crate::ir::{
    BinaryOp, DType, DimExpr, Graph, GraphBuilder, NodeId, Op, ReduceOp, ScalarExpr, ShapeError,
    UnaryOp,
};

/// Elementwise unary operators of the language: the IR's, plus `recip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Un {
    Neg,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Square,
    Silu,
    Gelu,
    Relu,
    Sigmoid,
    /// `1 / x`.
    Recip,
}

impl Un {
    pub const ALL: [Un; 11] = [
        Un::Neg,
        Un::Exp,
        Un::Log,
        Un::Sqrt,
        Un::Rsqrt,
        Un::Square,
        Un::Silu,
        Un::Gelu,
        Un::Relu,
        Un::Sigmoid,
        Un::Recip,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Un::Recip => "recip",
            u => u.ir().map_or("recip", UnaryOp::name),
        }
    }

    /// The IR operator, `None` for `recip`.
    pub fn ir(self) -> Option<UnaryOp> {
        Some(match self {
            Un::Neg => UnaryOp::Neg,
            Un::Exp => UnaryOp::Exp,
            Un::Log => UnaryOp::Log,
            Un::Sqrt => UnaryOp::Sqrt,
            Un::Rsqrt => UnaryOp::Rsqrt,
            Un::Square => UnaryOp::Square,
            Un::Silu => UnaryOp::Silu,
            Un::Gelu => UnaryOp::Gelu,
            Un::Relu => UnaryOp::Relu,
            Un::Sigmoid => UnaryOp::Sigmoid,
            Un::Recip => return None,
        })
    }

    pub fn from_ir(u: UnaryOp) -> Un {
        match u {
            UnaryOp::Neg => Un::Neg,
            UnaryOp::Exp => Un::Exp,
            UnaryOp::Log => Un::Log,
            UnaryOp::Sqrt => Un::Sqrt,
            UnaryOp::Rsqrt => Un::Rsqrt,
            UnaryOp::Square => Un::Square,
            UnaryOp::Silu => Un::Silu,
            UnaryOp::Gelu => Un::Gelu,
            UnaryOp::Relu => Un::Relu,
            UnaryOp::Sigmoid => Un::Sigmoid,
        }
    }

    /// The exact (f64) meaning.
    pub fn apply(self, x: f64) -> f64 {
        match self.ir() {
            Some(u) => u.apply(x),
            None => 1.0 / x,
        }
    }
}

/// Reductions of the language (mean is `sum * recip(count)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Red {
    Sum,
    Max,
}

impl Red {
    pub fn name(self) -> &'static str {
        match self {
            Red::Sum => "sum",
            Red::Max => "max",
        }
    }

    pub fn ir(self) -> ReduceOp {
        match self {
            Red::Sum => ReduceOp::Sum,
            Red::Max => ReduceOp::Max,
        }
    }
}

/// A graph input: its name and declared type. The type is part of the leaf,
/// so the shape analysis needs nothing but the e-graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InputLeaf {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<DimExpr>,
}

/// An f64 literal, compared, ordered and hashed by its bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lit(pub u64);

impl Lit {
    pub fn new(v: f64) -> Lit {
        Lit(v.to_bits())
    }

    pub fn value(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// An e-node. Tensor operators take tensor children; reductions, permutes and
/// reshapes also take an attribute child (first), a leaf whose e-class never
/// merges with anything else.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// A graph input (tensor leaf).
    Input(Box<InputLeaf>),
    /// A rank-0 literal (tensor leaf).
    Lit(Lit),
    /// A rank-0 tensor whose value is a dim polynomial, e.g. an axis length
    /// (tensor leaf).
    Dim(DimExpr),
    /// Attribute: an axis.
    Num(i64),
    /// Attribute: a permutation (output dim `i` is input dim `p[i]`).
    Perm(Vec<usize>),
    /// Attribute: the target shape of a reshape.
    Shape(Vec<DimExpr>),
    /// Elementwise unary.
    Unary(Un, [Id; 1]),
    /// Elementwise binary with numpy broadcasting.
    Binary(BinaryOp, [Id; 2]),
    /// Batched matmul `[.., m, k] x [.., k, n]`, batch dims broadcast.
    Matmul([Id; 2]),
    /// `[axis, x]`: reduce `x` over `axis`, keeping it with size 1.
    Reduce(Red, [Id; 2]),
    /// `[perm, x]`.
    Permute([Id; 2]),
    /// `[shape, x]`: same elements in row-major order.
    Reshape([Id; 2]),
}

impl Node {
    pub fn lit(v: f64) -> Node {
        Node::Lit(Lit::new(v))
    }

    pub fn input(name: &str, dtype: DType, shape: Vec<DimExpr>) -> Node {
        Node::Input(Box::new(InputLeaf {
            name: name.to_string(),
            dtype,
            shape,
        }))
    }

    /// The rank-0 value of a dim polynomial: a literal when it is constant.
    pub fn dim(d: DimExpr) -> Node {
        match d.as_constant() {
            Some(c) if (c as f64) as i64 == c => Node::lit(c as f64),
            _ => Node::Dim(d),
        }
    }

    /// Whether this is an attribute leaf (not a tensor).
    pub fn is_attribute(&self) -> bool {
        matches!(self, Node::Num(_) | Node::Perm(_) | Node::Shape(_))
    }

    /// The operator's name as printed in s-expressions.
    pub fn op_name(&self) -> String {
        match self {
            Node::Input(i) => i.name.clone(),
            Node::Lit(l) => format!("{:?}", l.value()),
            Node::Dim(d) => format!("dim:{}", compact(&d.to_string())),
            Node::Num(n) => format!("#{n}"),
            Node::Perm(p) => {
                let v: Vec<String> = p.iter().map(|x| x.to_string()).collect();
                format!("perm:{}", v.join(","))
            }
            Node::Shape(s) => {
                let v: Vec<String> = s.iter().map(|x| compact(&x.to_string())).collect();
                format!("shape:{}", v.join(","))
            }
            Node::Unary(u, _) => u.name().to_string(),
            Node::Binary(b, _) => b.name().to_string(),
            Node::Matmul(_) => "matmul".into(),
            Node::Reduce(r, _) => r.name().to_string(),
            Node::Permute(_) => "permute".into(),
            Node::Reshape(_) => "reshape".into(),
        }
    }
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

impl Language for Node {
    type Discriminant = std::mem::Discriminant<Node>;

    fn discriminant(&self) -> Self::Discriminant {
        std::mem::discriminant(self)
    }

    fn matches(&self, other: &Self) -> bool {
        match (self, other) {
            (Node::Input(a), Node::Input(b)) => a == b,
            (Node::Lit(a), Node::Lit(b)) => a == b,
            (Node::Dim(a), Node::Dim(b)) => a == b,
            (Node::Num(a), Node::Num(b)) => a == b,
            (Node::Perm(a), Node::Perm(b)) => a == b,
            (Node::Shape(a), Node::Shape(b)) => a == b,
            (Node::Unary(a, _), Node::Unary(b, _)) => a == b,
            (Node::Binary(a, _), Node::Binary(b, _)) => a == b,
            (Node::Reduce(a, _), Node::Reduce(b, _)) => a == b,
            (Node::Matmul(_), Node::Matmul(_))
            | (Node::Permute(_), Node::Permute(_))
            | (Node::Reshape(_), Node::Reshape(_)) => true,
            _ => false,
        }
    }

    fn children(&self) -> &[Id] {
        match self {
            Node::Input(_)
            | Node::Lit(_)
            | Node::Dim(_)
            | Node::Num(_)
            | Node::Perm(_)
            | Node::Shape(_) => &[],
            Node::Unary(_, c) => c,
            Node::Binary(_, c)
            | Node::Matmul(c)
            | Node::Reduce(_, c)
            | Node::Permute(c)
            | Node::Reshape(c) => c,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            Node::Input(_)
            | Node::Lit(_)
            | Node::Dim(_)
            | Node::Num(_)
            | Node::Perm(_)
            | Node::Shape(_) => &mut [],
            Node::Unary(_, c) => c,
            Node::Binary(_, c)
            | Node::Matmul(c)
            | Node::Reduce(_, c)
            | Node::Permute(c)
            | Node::Reshape(c) => c,
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.op_name())
    }
}

/// Why an operator name could not be parsed (patterns, tests).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{op}` with {arity} children is not an operator of the verifier's language")]
pub struct ParseNodeError {
    pub op: String,
    pub arity: usize,
}

impl FromOp for Node {
    type Error = ParseNodeError;

    /// Operators by name; leaves: f64 literals (`-1`, `1e-6`), `#k` (an
    /// axis), `perm:1,0` and `dim:NAME` (one symbolic dim). Inputs and
    /// shapes have types that are not spelled out, so they do not parse.
    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        let err = || ParseNodeError {
            op: op.to_string(),
            arity: children.len(),
        };
        match children.len() {
            0 => {
                if let Some(n) = op.strip_prefix('#') {
                    return n.parse().map(Node::Num).map_err(|_| err());
                }
                if let Some(p) = op.strip_prefix("perm:") {
                    let perm: Result<Vec<usize>, _> = p.split(',').map(str::parse).collect();
                    return perm.map(Node::Perm).map_err(|_| err());
                }
                if let Some(d) = op.strip_prefix("dim:") {
                    let ok = d.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && d.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    return if ok {
                        Ok(Node::Dim(DimExpr::symbol(d)))
                    } else {
                        Err(err())
                    };
                }
                op.parse::<f64>().map(Node::lit).map_err(|_| err())
            }
            1 => Un::ALL
                .into_iter()
                .find(|u| u.name() == op)
                .map(|u| Node::Unary(u, [children[0]]))
                .ok_or_else(err),
            2 => {
                let c = [children[0], children[1]];
                if let Some(b) = BinaryOp::from_name(op) {
                    return Ok(Node::Binary(b, c));
                }
                match op {
                    "matmul" => Ok(Node::Matmul(c)),
                    "sum" => Ok(Node::Reduce(Red::Sum, c)),
                    "max" => Ok(Node::Reduce(Red::Max, c)),
                    "permute" => Ok(Node::Permute(c)),
                    "reshape" => Ok(Node::Reshape(c)),
                    _ => Err(err()),
                }
            }
            _ => Err(err()),
        }
    }
}

/// Why a graph could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("node {0} is not in the graph")]
    NoSuchNode(NodeId),
    #[error("malformed graph: {0}")]
    Malformed(String),
}

/// Nodes of a term under construction (children before parents). Pushing
/// onto a `Vec` rather than [`RecExpr::add`], which is linear-time per call
/// in debug builds.
#[derive(Default)]
pub struct TermBuilder {
    nodes: Vec<Node>,
}

impl TermBuilder {
    pub fn add(&mut self, n: Node) -> Id {
        self.nodes.push(n);
        Id::from(self.nodes.len() - 1)
    }

    pub fn finish(self) -> RecExpr<Node> {
        RecExpr::from(self.nodes)
    }
}

/// Append a scalar expression (literals, dims and operators over them) to
/// `expr` as rank-0 tensor operators; iterative.
pub fn scalar_to_expr(s: &ScalarExpr, expr: &mut TermBuilder) -> Id {
    enum Frame<'a> {
        Visit(&'a ScalarExpr),
        Build(&'a ScalarExpr),
    }
    let mut stack = vec![Frame::Visit(s)];
    let mut done: Vec<Id> = Vec::new();
    while let Some(f) = stack.pop() {
        match f {
            Frame::Visit(e) => match e {
                ScalarExpr::Lit(l) => done.push(expr.add(Node::lit(l.0))),
                ScalarExpr::Dim(d) => done.push(expr.add(Node::Dim(DimExpr::symbol(d)))),
                ScalarExpr::Unary(_, a) => {
                    stack.push(Frame::Build(e));
                    stack.push(Frame::Visit(a));
                }
                ScalarExpr::Binary(_, a, b) => {
                    stack.push(Frame::Build(e));
                    stack.push(Frame::Visit(b));
                    stack.push(Frame::Visit(a));
                }
            },
            Frame::Build(e) => match e {
                ScalarExpr::Unary(u, _) => {
                    let a = done.pop().unwrap_or_else(|| expr.add(Node::lit(f64::NAN)));
                    done.push(expr.add(Node::Unary(Un::from_ir(*u), [a])));
                }
                ScalarExpr::Binary(b, _, _) => {
                    let y = done.pop().unwrap_or_else(|| expr.add(Node::lit(f64::NAN)));
                    let x = done.pop().unwrap_or_else(|| expr.add(Node::lit(f64::NAN)));
                    done.push(expr.add(Node::Binary(*b, [x, y])));
                }
                _ => {}
            },
        }
    }
    done.pop().unwrap_or_else(|| expr.add(Node::lit(f64::NAN)))
}

/// The term computed by `output` of `graph`, as a [`RecExpr`] whose last
/// node is the root. Only nodes `output` depends on are converted; the walk
/// is iterative (graphs are topologically ordered).
pub fn from_graph(graph: &Graph, output: NodeId) -> Result<RecExpr<Node>, ConvertError> {
    let n = output.0;
    if n >= graph.nodes.len() {
        return Err(ConvertError::NoSuchNode(output));
    }
    let mut needed = vec![false; n + 1];
    needed[n] = true;
    for i in (0..=n).rev() {
        if needed[i] {
            for o in graph.nodes[i].op.operands() {
                if o.0 >= i {
                    return Err(ConvertError::Malformed(format!(
                        "node %{i} uses %{} defined after it",
                        o.0
                    )));
                }
                needed[o.0] = true;
            }
        }
    }
    let mut expr = TermBuilder::default();
    let mut ids: Vec<Option<Id>> = vec![None; n + 1];
    for i in 0..=n {
        if !needed[i] {
            continue;
        }
        let node = &graph.nodes[i];
        let get = |id: NodeId| {
            ids[id.0].ok_or_else(|| ConvertError::Malformed(format!("operand {id} missing")))
        };
        let id = match &node.op {
            Op::Input(k) => {
                let input = graph
                    .inputs
                    .get(*k)
                    .ok_or_else(|| ConvertError::Malformed(format!("no input {k}")))?;
                expr.add(Node::input(&input.name, input.dtype, node.shape.clone()))
            }
            Op::Const(s) => scalar_to_expr(s, &mut expr),
            Op::Unary(u, a) => {
                let a = get(*a)?;
                expr.add(Node::Unary(Un::from_ir(*u), [a]))
            }
            Op::Binary(b, x, y) => {
                let (x, y) = (get(*x)?, get(*y)?);
                expr.add(Node::Binary(*b, [x, y]))
            }
            Op::Matmul(a, b) => {
                let (a, b) = (get(*a)?, get(*b)?);
                expr.add(Node::Matmul([a, b]))
            }
            Op::Reduce {
                op,
                input,
                axis,
                keepdim,
            } => {
                let x = get(*input)?;
                let ax = expr.add(Node::Num(*axis as i64));
                let red = match op {
                    ReduceOp::Sum | ReduceOp::Mean => Red::Sum,
                    ReduceOp::Max => Red::Max,
                };
                let mut r = expr.add(Node::Reduce(red, [ax, x]));
                if !keepdim {
                    let s = expr.add(Node::Shape(node.shape.clone()));
                    r = expr.add(Node::Reshape([s, r]));
                }
                if *op == ReduceOp::Mean {
                    let size = graph.nodes[input.0]
                        .shape
                        .get(*axis)
                        .ok_or_else(|| ConvertError::Malformed(format!("axis {axis}")))?;
                    let d = expr.add(Node::dim(size.clone()));
                    let inv = expr.add(Node::Unary(Un::Recip, [d]));
                    r = expr.add(Node::Binary(BinaryOp::Mul, [r, inv]));
                }
                r
            }
            Op::Permute(a, perm) => {
                let a = get(*a)?;
                let p = expr.add(Node::Perm(perm.clone()));
                expr.add(Node::Permute([p, a]))
            }
            Op::Reshape(a) => {
                let a = get(*a)?;
                let s = expr.add(Node::Shape(node.shape.clone()));
                expr.add(Node::Reshape([s, a]))
            }
        };
        ids[i] = Some(id);
    }
    Ok(expr.finish())
}

/// A dim polynomial as a scalar expression (`2*n*d + 1`).
pub fn dim_scalar(d: &DimExpr) -> ScalarExpr {
    let mut total: Option<ScalarExpr> = None;
    for (m, c) in d.terms() {
        let mut term: Option<ScalarExpr> = if c == 1 && !m.is_empty() {
            None
        } else {
            Some(ScalarExpr::lit(c as f64))
        };
        for s in m {
            let sym = ScalarExpr::Dim(s.clone());
            term = Some(match term {
                None => sym,
                Some(t) => ScalarExpr::Binary(BinaryOp::Mul, Box::new(t), Box::new(sym)),
            });
        }
        let term = term.unwrap_or_else(|| ScalarExpr::lit(1.0));
        total = Some(match total {
            None => term,
            Some(t) => ScalarExpr::Binary(BinaryOp::Add, Box::new(t), Box::new(term)),
        });
    }
    total.unwrap_or_else(|| ScalarExpr::lit(0.0))
}

/// Why a term could not be turned back into a graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToGraphError {
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("malformed term: {0}")]
    Malformed(String),
}

/// The term rooted at `root` of `expr` as an IR graph with one output `out`.
/// Inputs are added in first-use order; constants take the dtype of the
/// first input (f32 without one). `recip(x)` becomes `1 / x`, reductions
/// keep their axis.
pub fn to_graph(expr: &RecExpr<Node>, root: Id) -> Result<Graph, ToGraphError> {
    let nodes = expr.as_ref();
    let dtype = nodes
        .iter()
        .find_map(|n| match n {
            Node::Input(i) => Some(i.dtype),
            _ => None,
        })
        .unwrap_or(DType::F32);
    let mut b = GraphBuilder::new();
    let mut inputs: HashMap<String, NodeId> = HashMap::new();
    let mut vals: Vec<Option<NodeId>> = vec![None; nodes.len()];
    let bad = |m: &str| ToGraphError::Malformed(m.to_string());
    let last = usize::from(root);
    if last >= nodes.len() {
        return Err(bad("root out of range"));
    }
    for (i, n) in nodes.iter().enumerate().take(last + 1) {
        let get = |id: Id| {
            vals.get(usize::from(id))
                .copied()
                .flatten()
                .ok_or(bad("not a tensor"))
        };
        let attr = |id: Id| nodes.get(usize::from(id)).ok_or(bad("child out of range"));
        let v = match n {
            Node::Num(_) | Node::Perm(_) | Node::Shape(_) => None,
            Node::Input(leaf) => Some(match inputs.get(&leaf.name) {
                Some(id) => *id,
                None => {
                    let id = b.input(&leaf.name, leaf.dtype, leaf.shape.clone());
                    inputs.insert(leaf.name.clone(), id);
                    id
                }
            }),
            Node::Lit(l) => Some(b.constant(ScalarExpr::lit(l.value()), dtype)),
            Node::Dim(d) => Some(b.constant(dim_scalar(d), dtype)),
            Node::Unary(Un::Recip, [a]) => {
                let one = b.constant(ScalarExpr::lit(1.0), dtype);
                Some(b.binary(BinaryOp::Div, one, get(*a)?)?)
            }
            Node::Unary(u, [a]) => {
                let op = u.ir().ok_or(bad("unary"))?;
                Some(b.unary(op, get(*a)?))
            }
            Node::Binary(op, [x, y]) => Some(b.binary(*op, get(*x)?, get(*y)?)?),
            Node::Matmul([x, y]) => Some(b.matmul(get(*x)?, get(*y)?)?),
            Node::Reduce(r, [ax, x]) => {
                let Node::Num(axis) = attr(*ax)? else {
                    return Err(bad("reduce without an axis"));
                };
                Some(b.reduce(r.ir(), get(*x)?, *axis, true)?)
            }
            Node::Permute([p, x]) => {
                let Node::Perm(perm) = attr(*p)? else {
                    return Err(bad("permute without a permutation"));
                };
                let perm: Vec<i64> = perm.iter().map(|&v| v as i64).collect();
                Some(b.permute(get(*x)?, &perm)?)
            }
            Node::Reshape([s, x]) => {
                let Node::Shape(shape) = attr(*s)? else {
                    return Err(bad("reshape without a shape"));
                };
                Some(b.reshape(get(*x)?, shape.clone())?)
            }
        };
        vals[i] = v;
    }
    let out = vals[last].ok_or(bad("root is not a tensor"))?;
    b.output("out", out);
    Ok(b.finish())
}
