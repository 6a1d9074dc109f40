//! The unpartitioned meaning of a μGraph as a tensor program, so the
//! algebraic verifier ([`crate::verify`]) can compare it with the workload's
//! program.
//!
//! Each block graph is read as if one block ran the whole tensors: inputs
//! are their (reshaping) views, a tile matmul contracting the for-loop axis
//! is the full matmul, a reduction over the loop axis followed by its
//! accumulator is the full reduction. Grid and loop maps are not modelled:
//! the proof covers the algebra of a candidate (e.g. the norm moved after
//! the matmul), the numeric cross-check covers its maps. A block graph whose
//! meaning needs more (accumulating a value that still spans the loop axis)
//! is reported as not expressible.
//!
//! **Online softmax.** In one iteration over everything, a running max is
//! the final max and a rescaled sum is a plain sum. That reading is exact
//! for any number of iterations when every value that depends on the
//! running max `r` is *shift-covariant*, `x(r) = x(r0) * exp(r0 - r)` with
//! a per-row factor, and reaches only rescaled sums over that max
//! ([`crate::ugraph::online::covariance`] checks it): then `sum_i x_i(r_i) * exp(r_i - r_final) =
//! sum_i x_i(r_final)`. Anything else is not expressible.
//!
//! **Split loops.** A kernel whose loop is split over a grid dim writes one
//! partial result per split; it is read with one split (the split axis of
//! the partial tensors, and of the views that read them, is 1), as grid
//! maps are; the cross-check runs the real split counts.

use crate::ir::DimExpr;
use crate::ir::{DType, Graph, GraphBuilder, NodeId, ReduceOp, Workload};
use crate::ugraph::{BlockOp, KernelBody, KernelGraph, Predefined, TensorRole, TileMap};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// `(position, tensor index)` of the tensors whose role `pick` numbers
/// (argument position of an input or an output), by position.
fn in_role_order(
    g: &KernelGraph,
    pick: impl Fn(TensorRole) -> Option<usize>,
) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = g
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(t, x)| pick(x.role).map(|p| (p, t)))
        .collect();
    out.sort();
    out
}

/// `shape` with its first axis equal to the split count `splits` set to 1.
fn one_split_shape(shape: &[DimExpr], splits: Option<&DimExpr>) -> Vec<DimExpr> {
    let mut out = shape.to_vec();
    if let Some(s) = splits
        && let Some(a) = out.iter().position(|d| d == s)
    {
        out[a] = DimExpr::constant(1);
    }
    out
}

/// A map's view, read with one split when its tensor is a split partial.
fn one_split(m: &TileMap, split_axis: &[Option<DimExpr>]) -> Vec<DimExpr> {
    one_split_shape(&m.view, split_axis[m.tensor.0].as_ref())
}

/// How a block value relates to the for-loop, for the accumulators'
/// reading: a sum accumulator over the iterations equals the one-iteration
/// reading only for a value that is a partial sum over the loop axis
/// (linear in the iteration's slice), a max accumulator only for a partial
/// max or a loop-invariant value.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lin {
    /// The same in every iteration.
    Invariant,
    /// Spans the loop axis (this iteration's slice).
    Spanning,
    /// A sum (or a linear map of sums) over this iteration's slice.
    PartialSum,
    /// A max over this iteration's slice.
    PartialMax,
    /// Anything else (e.g. a square of a partial sum).
    Other,
}

/// Check every accumulator reads a partial reduction of its own kind over
/// the loop axis (`loop_axes`: the loop axis each value still spans).
fn check_accumulators(
    bg: &crate::ugraph::BlockGraph,
    loop_axes: &[Option<usize>],
) -> Result<(), String> {
    use crate::ir::{BinaryOp, UnaryOp};
    use crate::ugraph::AccumKind;
    let mut lin: Vec<Lin> = Vec::with_capacity(bg.ops.len());
    for (k, op) in bg.ops.iter().enumerate() {
        let l = |v: &crate::ugraph::ValueId| lin[v.0];
        let spans = loop_axes[k].is_some();
        let this = match op {
            BlockOp::Input(_) => {
                if spans {
                    Lin::Spanning
                } else {
                    Lin::Invariant
                }
            }
            BlockOp::Const(_) | BlockOp::Running(_) => Lin::Invariant,
            BlockOp::Accum { kind, input } => {
                let ok = match kind {
                    AccumKind::Sum | AccumKind::RescaledSum { .. } => l(input) == Lin::PartialSum,
                    AccumKind::Max => matches!(l(input), Lin::PartialMax | Lin::Invariant),
                };
                if !ok {
                    return Err(format!(
                        "not expressible: accumulator {k} ({kind:?}) reads a value that is not a partial reduction of its kind over the loop axis ({:?})",
                        l(input)
                    ));
                }
                Lin::Invariant
            }
            BlockOp::Permute(a, _) => l(a),
            BlockOp::Unary(u, a) => match (u, l(a)) {
                (_, Lin::Invariant) => Lin::Invariant,
                (_, Lin::Spanning) => Lin::Spanning,
                (UnaryOp::Neg, Lin::PartialSum) => Lin::PartialSum,
                _ => Lin::Other,
            },
            BlockOp::Binary(op, x, y) => match (op, l(x), l(y)) {
                (_, Lin::Invariant, Lin::Invariant) => Lin::Invariant,
                (_, Lin::Spanning, Lin::Spanning | Lin::Invariant)
                | (_, Lin::Invariant, Lin::Spanning) => Lin::Spanning,
                (BinaryOp::Mul, Lin::PartialSum, Lin::Invariant)
                | (BinaryOp::Mul, Lin::Invariant, Lin::PartialSum)
                | (BinaryOp::Div, Lin::PartialSum, Lin::Invariant)
                | (BinaryOp::Add | BinaryOp::Sub, Lin::PartialSum, Lin::PartialSum) => {
                    Lin::PartialSum
                }
                _ => Lin::Other,
            },
            BlockOp::Matmul(x, y) => match (l(x), l(y)) {
                (Lin::Spanning, Lin::Spanning) if !spans => Lin::PartialSum,
                (Lin::Spanning, Lin::Spanning | Lin::Invariant)
                | (Lin::Invariant, Lin::Spanning) => Lin::Spanning,
                (Lin::Invariant, Lin::Invariant) => Lin::Invariant,
                (Lin::PartialSum, Lin::Invariant) | (Lin::Invariant, Lin::PartialSum) => {
                    Lin::PartialSum
                }
                _ => Lin::Other,
            },
            BlockOp::Reduce { op, input, .. } => {
                let over_loop = loop_axes[input.0].is_some() && !spans;
                match (l(input), op) {
                    (Lin::Spanning, ReduceOp::Sum | ReduceOp::Mean) if over_loop => Lin::PartialSum,
                    (Lin::Spanning, ReduceOp::Max) if over_loop => Lin::PartialMax,
                    (Lin::Spanning, _) if !over_loop => Lin::Spanning,
                    (Lin::Invariant, _) => Lin::Invariant,
                    (Lin::PartialSum, ReduceOp::Sum | ReduceOp::Mean) => Lin::PartialSum,
                    (Lin::PartialMax, ReduceOp::Max) => Lin::PartialMax,
                    _ => Lin::Other,
                }
            }
        };
        lin.push(this);
    }
    Ok(())
}

/// The tensor program a μGraph computes, with `w`'s input names.
pub fn unpartitioned(w: &Workload, g: &KernelGraph) -> Result<Graph, String> {
    let mut b = GraphBuilder::new();
    let mut node_of: Vec<Option<NodeId>> = vec![None; g.tensors.len()];
    // Per partial tensor of a split loop: its split count.
    let mut split_axis: Vec<Option<DimExpr>> = vec![None; g.tensors.len()];
    // Inputs in argument order, so names and order match the program.
    let inputs = in_role_order(g, |r| match r {
        TensorRole::Input(i) => Some(i),
        _ => None,
    });
    for (_, t) in inputs {
        let x = &g.tensors[t];
        node_of[t] = Some(b.input(&x.name, x.dtype, x.shape.clone()));
    }
    for k in &g.kernels {
        match &k.body {
            KernelBody::Predefined(Predefined::SplitCombine { partials, output }) => {
                let p =
                    node_of[partials.0].ok_or("a kernel reads a tensor before it is written")?;
                let s = b.reduce(ReduceOp::Sum, p, 0, false).map_err(err)?;
                node_of[output.0] = Some(s);
            }
            KernelBody::Block(bg) => {
                let info = crate::ugraph::validate::check_block(bg, &g.tensors).map_err(err)?;
                crate::ugraph::online::covariance(bg, &info.shapes)?;
                // Split loops: the split axis of partial tensors reads as 1.
                if let Some(split) = bg.forloop.as_ref().and_then(|f| f.split) {
                    for o in &bg.outputs {
                        if let Some(Some(axes)) = o.map.imap.get(split)
                            && let Some(&a) = axes.first()
                        {
                            split_axis[o.map.tensor.0] = Some(o.map.view[a].clone());
                        }
                    }
                }
                // Per block op: its node and the loop axis it still spans
                // (counted from the last axis).
                let mut vals: Vec<(NodeId, Option<usize>)> = Vec::with_capacity(bg.ops.len());
                // Constants take the type of what the block reads (as its
                // meaning so far: a workspace written by a split's partial
                // kernel holds values of the partial's type).
                let dtype: DType = match bg.inputs.first() {
                    Some(m) => {
                        node_of[m.tensor.0].map_or(g.tensors[m.tensor.0].dtype, |n| b.dtype(n))
                    }
                    None => bg
                        .outputs
                        .first()
                        .map_or(DType::F32, |o| g.tensors[o.map.tensor.0].dtype),
                };
                // In kernels of a split (the split loop and its combine), a
                // leading size-1 axis on every view (the split axis) is
                // dropped: the tiles are the same data.
                let maps = || bg.inputs.iter().chain(bg.outputs.iter().map(|o| &o.map));
                let in_split = bg.forloop.as_ref().is_some_and(|f| f.split.is_some())
                    || bg.inputs.iter().any(|m| split_axis[m.tensor.0].is_some());
                let drop = in_split
                    && maps().all(|m| {
                        let v = one_split(m, &split_axis);
                        v.len() >= 2 && v[0].is_one()
                    });
                let view = |m: &TileMap| {
                    let v = one_split(m, &split_axis);
                    if drop { v[1..].to_vec() } else { v }
                };
                for op in &bg.ops {
                    let v = match op {
                        BlockOp::Input(i) => {
                            let m = &bg.inputs[*i];
                            let t = node_of[m.tensor.0]
                                .ok_or("a kernel reads a tensor before it is written")?;
                            let n = b.reshape(t, view(m)).map_err(err)?;
                            let l = m.fmap.filter(|a| !(drop && *a == 0));
                            (n, l.map(|a| m.view.len() - 1 - a))
                        }
                        BlockOp::Const(c) => (b.constant(c.clone(), dtype), None),
                        BlockOp::Unary(u, a) => (b.unary(*u, vals[a.0].0), vals[a.0].1),
                        BlockOp::Binary(op, x, y) => {
                            let (lx, ly) = (vals[x.0].1, vals[y.0].1);
                            if lx.is_some() && ly.is_some() && lx != ly {
                                return Err("operands span the loop along different axes".into());
                            }
                            let n = b.binary(*op, vals[x.0].0, vals[y.0].0).map_err(err)?;
                            (n, lx.or(ly))
                        }
                        BlockOp::Permute(a, perm) => {
                            // The loop axis moves with the permute.
                            let rank = perm.len();
                            let l = match vals[a.0].1 {
                                Some(l) => {
                                    let old = rank - 1 - l;
                                    let new = perm
                                        .iter()
                                        .position(|&p| p == old)
                                        .ok_or("a permute that drops the loop axis")?;
                                    Some(rank - 1 - new)
                                }
                                None => None,
                            };
                            let p: Vec<i64> = if drop {
                                if perm.first() != Some(&0) {
                                    return Err("a permute that moves the split axis".into());
                                }
                                perm[1..].iter().map(|x| *x as i64 - 1).collect()
                            } else {
                                perm.iter().map(|x| *x as i64).collect()
                            };
                            (b.permute(vals[a.0].0, &p).map_err(err)?, l)
                        }
                        BlockOp::Matmul(x, y) => {
                            let (lx, ly) = (vals[x.0].1, vals[y.0].1);
                            // Both operands walk k with the loop (the accumulated
                            // matmul is the full one), or one operand walks its
                            // rows or columns (so does the product), or neither.
                            let l = match (lx, ly) {
                                (Some(0), Some(1)) | (None, None) => None,
                                (None, Some(0)) => Some(0),
                                (Some(1), None) => Some(1),
                                _ => {
                                    return Err(
                                        "a tile matmul that mixes the loop axis with others".into(),
                                    );
                                }
                            };
                            (b.matmul(vals[x.0].0, vals[y.0].0).map_err(err)?, l)
                        }
                        BlockOp::Reduce {
                            op,
                            input,
                            axis,
                            count,
                        } => {
                            let (x, l) = vals[input.0];
                            let tile_rank = info.shapes[input.0].len();
                            let from_end = tile_rank
                                .checked_sub(1 + axis)
                                .ok_or("a reduction axis out of range")?;
                            let rank = b.shape(x).len();
                            if drop && from_end + 1 == tile_rank {
                                // Over the dropped size-1 axis: the value itself.
                                vals.push((x, l.filter(|a| *a != from_end)));
                                continue;
                            }
                            let Some(axis) = rank.checked_sub(1 + from_end) else {
                                return Err("a reduction axis out of range".into());
                            };
                            let axis = &axis;
                            let full = b.shape(x)[*axis].clone();
                            let n = match op {
                                ReduceOp::Mean => {
                                    if count.as_ref().is_some_and(|c| *c != full) {
                                        return Err("a mean over part of an axis".into());
                                    }
                                    b.reduce(ReduceOp::Mean, x, *axis as i64, true)
                                        .map_err(err)?
                                }
                                op => b.reduce(*op, x, *axis as i64, true).map_err(err)?,
                            };
                            (n, l.filter(|a| *a != from_end))
                        }
                        BlockOp::Accum { kind, input } => {
                            let (x, l) = vals[input.0];
                            if l.is_some() {
                                return Err(
                                    "an accumulator of a value spanning the loop axis".into()
                                );
                            }
                            // A rescaled sum of shift-covariant values is the
                            // plain sum (checked by `covariance` above).
                            let _ = kind;
                            (x, None)
                        }
                        // One iteration over everything: the final value.
                        BlockOp::Running(a) => (vals[a.0].0, None),
                    };
                    vals.push(v);
                }
                // A loop over the split axis (a combine) reads as one
                // iteration: every accumulator is its input.
                let one_iteration = drop
                    && bg.inputs.iter().any(|m| m.fmap == Some(0))
                    && bg.inputs.iter().all(|m| matches!(m.fmap, None | Some(0)));
                if !one_iteration {
                    let loop_axes: Vec<Option<usize>> = vals.iter().map(|v| v.1).collect();
                    check_accumulators(bg, &loop_axes)?;
                }
                for o in &bg.outputs {
                    let t = &g.tensors[o.map.tensor.0];
                    let shape = one_split_shape(&t.shape, split_axis[o.map.tensor.0].as_ref());
                    let n = b.reshape(vals[o.value.0].0, shape).map_err(err)?;
                    node_of[o.map.tensor.0] = Some(n);
                }
            }
        }
    }
    let outputs = in_role_order(g, |r| match r {
        TensorRole::Output(j) => Some(j),
        _ => None,
    });
    for (j, t) in outputs {
        let n = node_of[t].ok_or("an output is never written")?;
        let name = w
            .graph
            .outputs
            .get(j)
            .map(|o| o.name.as_str())
            .unwrap_or("out");
        b.output(name, n);
    }
    Ok(b.finish())
}
