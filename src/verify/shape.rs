//! The e-class analysis: every tensor e-class carries its symbolic shape and
//! dtype, plus sign facts that guarded rules use (`nonzero` for cancelling
//! `e * recip(e)`). Attribute e-classes carry their value.
//!
//! Shapes are a function of the children, so two terms of one e-class always
//! have the same shape if every union is: the rule appliers
//! (`super::rules`) check the shape of what they build against the class
//! they merge it into, and a merge of different shapes that slips through is
//! recorded in [`ShapeAnalysis::conflicts`] (and asserts in debug builds), so
//! a proof is never accepted from an inconsistent e-graph.
//!
//! To extend the language (e.g. with partition/replicate/combine for
//! parallel structure), add an arm to [`infer`] and, where needed, a variant
//! to [`Data`] for a new kind of attribute.

use egg::{Analysis, DidMerge, EGraph, Id};

use super::lang::{Node, Red, Un};
use crate::ir::{BinaryOp, DType, DimExpr};

/// What the analysis knows about a tensor e-class.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub shape: Vec<DimExpr>,
    /// `None` for constants (literals and dims), which take any dtype.
    pub dtype: Option<DType>,
    /// Every element is ≥ 0 (wherever the term is defined over the reals).
    pub nonneg: bool,
    /// Every element is ≠ 0.
    pub nonzero: bool,
    /// The value, when the class holds a literal.
    pub lit: Option<f64>,
}

impl TensorInfo {
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn positive(&self) -> bool {
        self.nonneg && self.nonzero
    }
}

/// Per-e-class data.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Tensor(TensorInfo),
    /// An axis attribute.
    Int(i64),
    /// A permutation attribute.
    Perm(Vec<usize>),
    /// A reshape target attribute.
    Shape(Vec<DimExpr>),
    /// An ill-typed node reached the e-graph (a bug; see the module docs).
    Invalid(String),
}

impl Data {
    pub fn tensor(&self) -> Option<&TensorInfo> {
        match self {
            Data::Tensor(t) => Some(t),
            _ => None,
        }
    }

    pub fn shape(&self) -> Option<&[DimExpr]> {
        self.tensor().map(|t| t.shape.as_slice())
    }
}

/// Numpy broadcasting of two shapes (aligned at the last dim); `None` when a
/// pair of dims differs and neither is the constant 1.
pub fn broadcast(a: &[DimExpr], b: &[DimExpr]) -> Option<Vec<DimExpr>> {
    let rank = a.len().max(b.len());
    let one = DimExpr::constant(1);
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            &a[i + a.len() - rank]
        } else {
            &one
        };
        let db = if i + b.len() >= rank {
            &b[i + b.len() - rank]
        } else {
            &one
        };
        out.push(if da == db || db.is_one() {
            da.clone()
        } else if da.is_one() {
            db.clone()
        } else {
            return None;
        });
    }
    Some(out)
}

/// Number of elements of a shape, symbolically.
pub fn numel(s: &[DimExpr]) -> DimExpr {
    s.iter().fold(DimExpr::constant(1), |acc, d| acc.mul(d))
}

fn join_dtype(a: Option<DType>, b: Option<DType>) -> Result<Option<DType>, String> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(format!("dtype mismatch: {x} and {y}")),
        (Some(x), _) | (_, Some(x)) => Ok(Some(x)),
        (None, None) => Ok(None),
    }
}

/// Whether a dim polynomial is positive for every valid dim value (≥ 1):
/// all coefficients positive.
fn positive_dim(d: &DimExpr) -> bool {
    let mut any = false;
    for (_, c) in d.terms() {
        if c <= 0 {
            return false;
        }
        any = true;
    }
    any
}

/// The data of `node` from its children's, or why it is ill-typed.
pub fn infer<'a>(node: &Node, child: impl Fn(Id) -> &'a Data) -> Result<Data, String> {
    let tensor = |id: Id| -> Result<&'a TensorInfo, String> {
        match child(id) {
            Data::Tensor(t) => Ok(t),
            other => Err(format!("expected a tensor operand, found {other:?}")),
        }
    };
    let t = |shape: Vec<DimExpr>, dtype, nonneg, nonzero| {
        Ok(Data::Tensor(TensorInfo {
            shape,
            dtype,
            nonneg,
            nonzero,
            lit: None,
        }))
    };
    match node {
        Node::Input(i) => t(i.shape.clone(), Some(i.dtype), false, false),
        Node::Lit(l) => {
            let v = l.value();
            Ok(Data::Tensor(TensorInfo {
                shape: vec![],
                dtype: None,
                nonneg: v >= 0.0,
                nonzero: v != 0.0 && !v.is_nan(),
                lit: Some(v),
            }))
        }
        Node::Dim(d) => {
            let p = positive_dim(d);
            t(vec![], None, p, p)
        }
        Node::Num(n) => Ok(Data::Int(*n)),
        Node::Perm(p) => Ok(Data::Perm(p.clone())),
        Node::Shape(s) => Ok(Data::Shape(s.clone())),
        Node::Unary(u, [a]) => {
            let a = tensor(*a)?;
            let (nn, nz) = match u {
                Un::Exp | Un::Sigmoid => (true, true),
                Un::Square => (true, a.nonzero),
                Un::Relu => (true, false),
                // sqrt is ≥ 0 where defined, and > 0 for positive arguments.
                Un::Sqrt => (true, a.positive()),
                Un::Rsqrt => (a.positive(), a.positive()),
                Un::Recip => (a.nonneg, a.nonzero),
                Un::Neg => (false, a.nonzero),
                Un::Log | Un::Silu | Un::Gelu => (false, false),
            };
            t(a.shape.clone(), a.dtype, nn, nz)
        }
        Node::Binary(op, [x, y]) => {
            let (a, b) = (tensor(*x)?, tensor(*y)?);
            let shape = broadcast(&a.shape, &b.shape).ok_or_else(|| {
                format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)
            })?;
            let dtype = join_dtype(a.dtype, b.dtype)?;
            let (nn, nz) = match op {
                BinaryOp::Add => (
                    a.nonneg && b.nonneg,
                    (a.positive() && b.nonneg) || (a.nonneg && b.positive()),
                ),
                BinaryOp::Mul | BinaryOp::Div => (a.nonneg && b.nonneg, a.nonzero && b.nonzero),
                BinaryOp::Sub => (false, false),
            };
            t(shape, dtype, nn, nz)
        }
        Node::Matmul([x, y]) => {
            let (a, b) = (tensor(*x)?, tensor(*y)?);
            let (ra, rb) = (a.rank(), b.rank());
            if ra < 2 || rb < 2 {
                return Err("matmul of rank < 2".into());
            }
            if a.shape[ra - 1] != b.shape[rb - 2] {
                return Err(format!(
                    "matmul contraction dims differ: {} vs {}",
                    a.shape[ra - 1],
                    b.shape[rb - 2]
                ));
            }
            let mut shape = broadcast(&a.shape[..ra - 2], &b.shape[..rb - 2])
                .ok_or("matmul batch dims do not broadcast")?;
            shape.push(a.shape[ra - 2].clone());
            shape.push(b.shape[rb - 1].clone());
            let dtype = join_dtype(a.dtype, b.dtype)?;
            t(
                shape,
                dtype,
                a.nonneg && b.nonneg,
                a.positive() && b.positive(),
            )
        }
        Node::Reduce(r, [ax, x]) => {
            let Data::Int(axis) = child(*ax) else {
                return Err("reduce axis is not an integer".into());
            };
            let a = tensor(*x)?;
            let axis = usize::try_from(*axis)
                .ok()
                .filter(|&k| k < a.rank())
                .ok_or_else(|| format!("axis {axis} out of range for rank {}", a.rank()))?;
            let mut shape = a.shape.clone();
            shape[axis] = DimExpr::constant(1);
            let nz = match r {
                Red::Sum | Red::Max => a.positive(),
            };
            t(shape, a.dtype, a.nonneg, nz)
        }
        Node::Permute([p, x]) => {
            let Data::Perm(perm) = child(*p) else {
                return Err("permute without a permutation".into());
            };
            let a = tensor(*x)?;
            let mut seen = vec![false; a.rank()];
            if perm.len() != a.rank()
                || perm
                    .iter()
                    .any(|&q| q >= seen.len() || std::mem::replace(&mut seen[q], true))
            {
                return Err(format!(
                    "{perm:?} is not a permutation of rank {}",
                    a.rank()
                ));
            }
            let shape = perm.iter().map(|&q| a.shape[q].clone()).collect();
            t(shape, a.dtype, a.nonneg, a.nonzero)
        }
        Node::Reshape([s, x]) => {
            let Data::Shape(shape) = child(*s) else {
                return Err("reshape without a shape".into());
            };
            let a = tensor(*x)?;
            if numel(shape) != numel(&a.shape) {
                return Err(format!("cannot reshape {:?} to {shape:?}", a.shape));
            }
            t(shape.clone(), a.dtype, a.nonneg, a.nonzero)
        }
    }
}

/// The e-class analysis (see the module docs).
#[derive(Debug, Default, Clone)]
pub struct ShapeAnalysis {
    /// Merges of e-classes whose data disagree, and ill-typed nodes: each is
    /// a bug in a rule or in the conversion. A proof from an e-graph with any
    /// is rejected.
    pub conflicts: Vec<String>,
}

impl Analysis<Node> for ShapeAnalysis {
    type Data = Data;

    fn make(egraph: &mut EGraph<Node, Self>, enode: &Node, _id: Id) -> Data {
        let data = infer(enode, |id| &egraph[id].data);
        match data {
            Ok(d) => d,
            Err(msg) => {
                debug_assert!(false, "ill-typed e-node {enode:?}: {msg}");
                egraph
                    .analysis
                    .conflicts
                    .push(format!("ill-typed e-node {enode}: {msg}"));
                Data::Invalid(msg)
            }
        }
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        match (&mut *a, b) {
            (Data::Tensor(x), Data::Tensor(y)) => {
                if x.shape != y.shape {
                    let msg = format!("merged shapes {:?} and {:?}", x.shape, y.shape);
                    debug_assert!(false, "{msg}");
                    self.conflicts.push(msg);
                    return DidMerge(false, true);
                }
                let dtype = match join_dtype(x.dtype, y.dtype) {
                    Ok(d) => d,
                    Err(msg) => {
                        debug_assert!(false, "{msg}");
                        self.conflicts.push(msg);
                        return DidMerge(false, true);
                    }
                };
                if let (Some(p), Some(q)) = (x.lit, y.lit)
                    && p != q
                    && !(p.is_nan() && q.is_nan())
                {
                    // Two different literals are equal only if a rule
                    // is unsound (or folded inexactly); 0 and -0 are equal.
                    let msg = format!("merged literals {p:?} and {q:?}");
                    debug_assert!(false, "{msg}");
                    self.conflicts.push(msg);
                }
                let merged = TensorInfo {
                    shape: std::mem::take(&mut x.shape),
                    dtype,
                    nonneg: x.nonneg || y.nonneg,
                    nonzero: x.nonzero || y.nonzero,
                    lit: x.lit.or(y.lit),
                };
                let a_changed = merged.dtype != x.dtype
                    || merged.nonneg != x.nonneg
                    || merged.nonzero != x.nonzero
                    || merged.lit.map(f64::to_bits) != x.lit.map(f64::to_bits);
                let b_changed = merged.dtype != y.dtype
                    || merged.nonneg != y.nonneg
                    || merged.nonzero != y.nonzero
                    || merged.lit.map(f64::to_bits) != y.lit.map(f64::to_bits);
                *x = merged;
                DidMerge(a_changed, b_changed)
            }
            (Data::Int(x), Data::Int(y)) if *x == y => DidMerge(false, false),
            (Data::Perm(x), Data::Perm(y)) if *x == y => DidMerge(false, false),
            (Data::Shape(x), Data::Shape(y)) if *x == y => DidMerge(false, false),
            (x, y) => {
                let msg = format!("merged {x:?} with {y:?}");
                debug_assert!(false, "{msg}");
                self.conflicts.push(msg);
                DidMerge(false, true)
            }
        }
    }
}

/// The e-graph type of the verifier.
pub type TensorEGraph = EGraph<Node, ShapeAnalysis>;
