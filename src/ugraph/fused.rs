//! Hand-built fused μGraphs, until the search finds them.
//!
//! `matmul(rms_norm(x), w)` as one kernel (Mirage's RMSNorm + Linear, see
//! mirage-code.md §5): each block walks k in tiles, accumulating the tile
//! matmul `x·w` and, for its rows, the partial mean of `x²`; after the loop
//! it scales the rows: `acc * rsqrt(ss + eps)`. Scaling after the matmul is
//! exact algebra because the norm is a per-row factor:
//! `(diag(r)·x)·w = diag(r)·(x·w)`.

use crate::ir::{BinaryOp, DimExpr, Graph, NodeId, Op, ReduceOp, ScalarExpr, UnaryOp};

use super::lower::{MatmulTiles, matmul_maps, matmul_params};
use super::types::*;

/// A matched `matmul(x * rsqrt(mean(square(x), -1, keepdim) + eps), w)`.
#[derive(Clone, Debug, PartialEq)]
pub struct RmsMatmul {
    pub x: NodeId,
    pub eps: ScalarExpr,
}

/// Match `a` (the left matmul operand) against `rms_norm(x)` as the front
/// end expands it, with the norm over the contraction axis.
pub fn match_rms_norm(g: &Graph, a: NodeId, _b: NodeId) -> Option<RmsMatmul> {
    let Op::Binary(BinaryOp::Mul, p, q) = &g.node(a).op else {
        return None;
    };
    for (x, r) in [(*p, *q), (*q, *p)] {
        let Op::Unary(UnaryOp::Rsqrt, t) = &g.node(r).op else {
            continue;
        };
        let Op::Binary(BinaryOp::Add, u, v) = &g.node(*t).op else {
            continue;
        };
        for (mean, c) in [(*u, *v), (*v, *u)] {
            let Op::Const(eps) = &g.node(c).op else {
                continue;
            };
            let Op::Reduce {
                op: ReduceOp::Mean,
                input,
                axis,
                keepdim: true,
            } = &g.node(mean).op
            else {
                continue;
            };
            let rank = g.node(x).shape.len();
            let squares_x = g.node(*input).op == Op::Unary(UnaryOp::Square, x);
            if squares_x && rank >= 2 && *axis == rank - 1 {
                return Some(RmsMatmul {
                    x,
                    eps: eps.clone(),
                });
            }
        }
    }
    None
}

/// The fused kernel for a match: inputs `x` (the un-normalized operand) and
/// `w`.
#[allow(clippy::too_many_arguments)]
pub fn rms_matmul_kernel(
    m: &RmsMatmul,
    x: TensorId,
    x_shape: &[DimExpr],
    w: TensorId,
    w_shape: &[DimExpr],
    out: TensorId,
    shape: &[DimExpr],
    tiles: MatmulTiles,
) -> BlockGraph {
    let maps = matmul_maps((x, x_shape), (w, w_shape), (out, shape), tiles);
    let r = shape.len();
    let k = x_shape[x_shape.len() - 1].clone();
    let v = ValueId;
    let ops = vec![
        BlockOp::Input(0),                     // 0: x tile [.., bm, bk]
        BlockOp::Input(1),                     // 1: w tile [.., bk, bn]
        BlockOp::Matmul(v(0), v(1)),           // 2
        BlockOp::Unary(UnaryOp::Square, v(0)), // 3
        BlockOp::Reduce {
            op: ReduceOp::Mean,
            input: v(3),
            axis: r - 1,
            count: Some(k),
        }, // 4: partial mean of x² over this k tile, [.., bm, 1]
        BlockOp::Accum {
            kind: AccumKind::Sum,
            input: v(2),
        }, // 5: x·w
        BlockOp::Accum {
            kind: AccumKind::Sum,
            input: v(4),
        }, // 6: mean(x²)
        BlockOp::Const(m.eps.clone()),         // 7
        BlockOp::Binary(BinaryOp::Add, v(6), v(7)), // 8
        BlockOp::Unary(UnaryOp::Rsqrt, v(8)),  // 9
        BlockOp::Binary(BinaryOp::Mul, v(5), v(9)), // 10
    ];
    BlockGraph {
        grid: maps.grid,
        forloop: Some(maps.forloop),
        inputs: vec![maps.a, maps.b],
        ops,
        outputs: vec![BlockOutput {
            value: v(10),
            map: maps.out,
        }],
        params: matmul_params(tiles),
    }
}
