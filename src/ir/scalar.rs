//! Scalar expressions: literals and arithmetic over symbolic dims
//! (`1e-6`, `1 / sqrt(dh)`, `1 / d`). They become rank-0 constant tensors in a
//! graph and are evaluated once the dims are known.

use std::fmt;

use serde::{Serialize, Serializer};

use super::dim::{DimBindings, DimEvalError};
use super::op::{BinaryOp, UnaryOp};

/// An f64 literal compared and hashed by its bit pattern, so graphs can be
/// hash-consed.
#[derive(Clone, Copy, Debug)]
pub struct Literal(pub f64);

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for Literal {}
impl std::hash::Hash for Literal {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.to_bits().hash(h)
    }
}

/// A scalar: a literal, a dim's value, or arithmetic over them.
///
/// ```
/// use prism::ir::{BinaryOp, DimBindings, ScalarExpr, UnaryOp};
///
/// // 1 / sqrt(dh)
/// let e = ScalarExpr::Binary(
///     BinaryOp::Div,
///     Box::new(ScalarExpr::lit(1.0)),
///     Box::new(ScalarExpr::Unary(UnaryOp::Sqrt, Box::new(ScalarExpr::Dim("dh".into())))),
/// );
/// assert_eq!(e.to_string(), "(1.0 / sqrt(dh))");
/// let dims: DimBindings = [("dh".to_string(), 64)].into();
/// assert_eq!(e.eval(&dims), Ok(0.125));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScalarExpr {
    /// A literal.
    Lit(Literal),
    /// The value of the named dim.
    Dim(String),
    /// An elementwise operator applied to a scalar.
    Unary(UnaryOp, Box<ScalarExpr>),
    /// A binary operator applied to two scalars.
    Binary(BinaryOp, Box<ScalarExpr>, Box<ScalarExpr>),
}

impl ScalarExpr {
    /// The literal `v`.
    pub fn lit(v: f64) -> Self {
        ScalarExpr::Lit(Literal(v))
    }

    /// Fold literals: `1 / sqrt(128)` becomes one literal; expressions with
    /// dims keep their structure.
    pub fn fold(self) -> Self {
        match self {
            ScalarExpr::Unary(op, a) => match a.fold() {
                ScalarExpr::Lit(Literal(x)) => ScalarExpr::lit(op.apply(x)),
                a => ScalarExpr::Unary(op, Box::new(a)),
            },
            ScalarExpr::Binary(op, a, b) => match (a.fold(), b.fold()) {
                (ScalarExpr::Lit(Literal(x)), ScalarExpr::Lit(Literal(y))) => {
                    ScalarExpr::lit(op.apply(x, y))
                }
                (a, b) => ScalarExpr::Binary(op, Box::new(a), Box::new(b)),
            },
            e => e,
        }
    }

    /// The value at concrete dims (in f64).
    pub fn eval(&self, dims: &DimBindings) -> Result<f64, DimEvalError> {
        Ok(match self {
            ScalarExpr::Lit(Literal(v)) => *v,
            ScalarExpr::Dim(d) => *dims
                .get(d)
                .ok_or_else(|| DimEvalError::Unbound(d.clone()))?
                as f64,
            ScalarExpr::Unary(op, a) => op.apply(a.eval(dims)?),
            ScalarExpr::Binary(op, a, b) => op.apply(a.eval(dims)?, b.eval(dims)?),
        })
    }

    /// Push the dims the expression refers to onto `out` (in order, with
    /// repetitions).
    pub fn dims(&self, out: &mut Vec<String>) {
        match self {
            ScalarExpr::Lit(_) => {}
            ScalarExpr::Dim(d) => out.push(d.clone()),
            ScalarExpr::Unary(_, a) => a.dims(out),
            ScalarExpr::Binary(_, a, b) => {
                a.dims(out);
                b.dims(out);
            }
        }
    }
}

impl fmt::Display for ScalarExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScalarExpr::Lit(Literal(v)) => write!(f, "{v:?}"),
            ScalarExpr::Dim(d) => f.write_str(d),
            ScalarExpr::Unary(op, a) => write!(f, "{op}({a})"),
            ScalarExpr::Binary(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
        }
    }
}

impl Serialize for ScalarExpr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
