//! Library functions of the expression language, expanded into primitives.

use crate::ir::{BinaryOp, DType, GraphBuilder, NodeId, ReduceOp, ScalarExpr, ShapeError, UnaryOp};

/// `rms_norm(x, g, eps)` = `x * rsqrt(mean(square(x), -1, keepdim) + eps) [* g]`,
/// normalizing over the last axis.
pub fn rms_norm(
    b: &mut GraphBuilder,
    x: NodeId,
    g: Option<NodeId>,
    eps: ScalarExpr,
) -> Result<NodeId, ShapeError> {
    let sq = b.unary(UnaryOp::Square, x);
    let ms = b.reduce(ReduceOp::Mean, sq, -1, true)?;
    let dtype: DType = b.dtype(x);
    let eps = b.constant(eps, dtype);
    let shifted = b.binary(BinaryOp::Add, ms, eps)?;
    let inv = b.unary(UnaryOp::Rsqrt, shifted);
    let y = b.binary(BinaryOp::Mul, x, inv)?;
    match g {
        Some(g) => b.binary(BinaryOp::Mul, y, g),
        None => Ok(y),
    }
}

/// `softmax(x, axis)` = `exp(x - max(x)) / sum(exp(x - max(x)))` along `axis`.
pub fn softmax(b: &mut GraphBuilder, x: NodeId, axis: i64) -> Result<NodeId, ShapeError> {
    let mx = b.reduce(ReduceOp::Max, x, axis, true)?;
    let shifted = b.binary(BinaryOp::Sub, x, mx)?;
    let e = b.unary(UnaryOp::Exp, shifted);
    let z = b.reduce(ReduceOp::Sum, e, axis, true)?;
    b.binary(BinaryOp::Div, e, z)
}
