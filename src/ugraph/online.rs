//! Online-softmax accumulators: when a block's running values may be read
//! as if the loop ran in one iteration (or in independent groups of
//! iterations, merged afterwards).
//!
//! A value that depends on the running max `r` of a `Max` accumulator is
//! *shift-covariant* when `x(r) = x(r0) * exp(r0 - r)` with a per-row
//! factor. If every such value reaches only rescaled sums over that max,
//! then `sum_i x_i(r_i) * exp(r_i - r_final) = sum_i x_i(r_final)`: the
//! result does not depend on how the running max evolved. The proof reads
//! the loop as one iteration on that basis, and code generation may split
//! the iterations among thread groups and merge their accumulators
//! (max, sum, and rescaled sums by `exp(m_g - M)`).

use crate::ir::{BinaryOp, UnaryOp};
use crate::ugraph::validate::TileExtent;
use crate::ugraph::{AccumKind, BlockGraph, BlockOp, ValueId};

/// How a block value depends on the running value of one max accumulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dep {
    /// Not at all.
    Indep,
    /// It is the running max `r`.
    Shift,
    /// `h - r`, `h` independent.
    Diff,
    /// Shift-covariant: `x(r) = x(r0) * exp(r0 - r)`, per row.
    Cov,
}

/// Check that the running values of `bg` are only used in shift-covariant
/// values feeding rescaled sums over the same max (see the module docs).
/// `shapes` are the block's tile shapes ([`crate::ugraph::validate::BlockInfo`]):
/// a per-row factor commutes with a reduction or a matmul contraction along
/// an axis where the running max's tile has one element.
pub fn covariance(bg: &BlockGraph, shapes: &[Vec<TileExtent>]) -> Result<(), String> {
    let single_along = |v: ValueId, axis: usize| {
        shapes
            .get(v.0)
            .and_then(|s| s.get(axis))
            .is_some_and(TileExtent::is_single)
    };
    let runs: Vec<ValueId> = bg
        .ops
        .iter()
        .filter_map(|op| match op {
            BlockOp::Running(a) => Some(*a),
            _ => None,
        })
        .collect();
    let bad = |why: &str| Err(format!("online softmax: {why}"));
    for max in runs {
        let mut dep: Vec<Dep> = Vec::with_capacity(bg.ops.len());
        let mut run_value = None;
        for (k, op) in bg.ops.iter().enumerate() {
            let d = |v: &ValueId| dep[v.0];
            let all_indep = op.operands().iter().all(|o| d(o) == Dep::Indep);
            let this = match op {
                BlockOp::Running(a) if *a == max => {
                    run_value = Some(ValueId(k));
                    Dep::Shift
                }
                _ if all_indep => Dep::Indep,
                BlockOp::Binary(BinaryOp::Sub, x, y)
                    if d(x) == Dep::Indep && d(y) == Dep::Shift =>
                {
                    Dep::Diff
                }
                BlockOp::Unary(UnaryOp::Exp, x) if d(x) == Dep::Diff => Dep::Cov,
                BlockOp::Binary(BinaryOp::Mul, x, y)
                    if matches!(
                        (d(x), d(y)),
                        (Dep::Cov, Dep::Indep) | (Dep::Indep, Dep::Cov)
                    ) =>
                {
                    Dep::Cov
                }
                BlockOp::Binary(BinaryOp::Div, x, y) if d(x) == Dep::Cov && d(y) == Dep::Indep => {
                    Dep::Cov
                }
                BlockOp::Binary(BinaryOp::Add | BinaryOp::Sub, x, y)
                    if d(x) == Dep::Cov && d(y) == Dep::Cov =>
                {
                    Dep::Cov
                }
                BlockOp::Matmul(x, y) if d(x) == Dep::Cov && d(y) == Dep::Indep => {
                    // The factor is per row of x: constant along its last axis.
                    let r = run_value.ok_or("online softmax: no running value")?;
                    let rank = shapes.get(r.0).map_or(0, Vec::len);
                    if !single_along(r, rank.saturating_sub(1)) {
                        return bad("a matmul of a value scaled along its contraction axis");
                    }
                    Dep::Cov
                }
                BlockOp::Reduce {
                    op: crate::ir::ReduceOp::Sum,
                    input,
                    axis,
                    ..
                } if d(input) == Dep::Cov => {
                    let r = run_value.ok_or("online softmax: no running value")?;
                    if !single_along(r, *axis) {
                        return bad("a sum along an axis the running max varies on");
                    }
                    Dep::Cov
                }
                BlockOp::Accum {
                    kind: AccumKind::RescaledSum { max: m },
                    input,
                } if *m == max && d(input) == Dep::Cov => Dep::Indep,
                BlockOp::Accum { .. } => {
                    return bad(
                        "an accumulator of a value that depends on a running max, other than a rescaled sum over that max of a shift-covariant value",
                    );
                }
                _ => return bad("a running max used other than as exp(x - max) factors"),
            };
            dep.push(this);
        }
        for (k, op) in bg.ops.iter().enumerate() {
            if let BlockOp::Accum {
                kind: AccumKind::RescaledSum { max: m },
                input,
            } = op
                && *m == max
                && dep[input.0] != Dep::Cov
            {
                return bad(&format!(
                    "op {k}: a rescaled sum of a value that is not shift-covariant"
                ));
            }
        }
        if bg.outputs.iter().any(|o| dep[o.value.0] != Dep::Indep) {
            return bad("an output depends on a running max");
        }
    }
    // Rescaled sums over a max without running uses: sum x_i exp(m_i - m).
    for op in &bg.ops {
        if let BlockOp::Accum {
            kind: AccumKind::RescaledSum { max },
            ..
        } = op
            && !bg.ops.contains(&BlockOp::Running(*max))
        {
            return bad("a rescaled sum of values that do not use the running max");
        }
    }
    Ok(())
}
