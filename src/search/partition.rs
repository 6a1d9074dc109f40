//! The partition rules of the proof: every block computes exactly the
//! tiles of its outputs that its grid indices select.
//!
//! The algebraic proof reads a μGraph unpartitioned
//! ([`super::abstract_graph`]): it checks *what* is computed, not *which
//! part* each block computes. This check closes that gap symbolically. Each
//! axis of each tile carries a tag: the grid dim (and extent component) that
//! cuts it, the for-loop, or nothing (whole, broadcast or reduced). Tags
//! flow through the block operators like shapes:
//!
//! - **partition**: an input's tile axis is cut by the grid dim its imap
//!   names; elementwise operands agree axis by axis (a single-element axis
//!   no grid dim cuts broadcasts, taking the other's tag), so `x[i] + y[j]`
//!   with `i` and `j` from different grid dims is refused even when the
//!   tile shapes match;
//! - **replicate**: an axis no grid dim cuts is whole in every block;
//! - **reduce**: a reduction or a matmul contraction over an axis the grid
//!   cuts would leave each block with a partial result nobody combines, so
//!   it is refused (the for-loop's axis is allowed: accumulators combine
//!   it);
//! - **combine**: each output axis the output map cuts by a grid dim must
//!   carry that grid dim's tag, except the split dim of a split loop
//!   (one partial result per split, combined by a later kernel, which the
//!   proof reads as one split); and the partial results of a split are
//!   combined by their own kind (sums summed, maxima maximized, rescaled
//!   sums rescaled), which is what makes reading one split enough.
//!
//! A μGraph that passes this and whose unpartitioned meaning is proven
//! equal to the program computes the program, block by block.

use crate::ir::{BinaryOp, ReduceOp};
use crate::ugraph::validate::{AxisRole, BlockInfo, TileExtent, check_block};
use crate::ugraph::{AccumKind, BlockGraph, BlockOp, KernelBody, KernelGraph, Predefined, ValueId};

/// What cuts one axis of a tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Grid { dim: usize, component: usize },
    Loop,
}

fn role_tag(r: &AxisRole) -> Option<Tag> {
    match r {
        AxisRole::Grid { dim, component } => Some(Tag::Grid {
            dim: *dim,
            component: *component,
        }),
        AxisRole::Loop => Some(Tag::Loop),
        AxisRole::Whole | AxisRole::Broadcast => None,
    }
}

fn name(t: Option<Tag>) -> String {
    match t {
        Some(Tag::Grid { dim, component }) => {
            let d = ["x", "y", "z"].get(dim).copied().unwrap_or("?");
            format!("grid {d}.{component}")
        }
        Some(Tag::Loop) => "the for-loop".into(),
        None => "nothing".into(),
    }
}

/// Check every block kernel of `g` (see the module docs), and that every
/// split's partial results are combined by their own kind.
pub fn check(g: &KernelGraph) -> Result<(), String> {
    for k in &g.kernels {
        if let KernelBody::Block(b) = &k.body {
            let info = check_block(b, &g.tensors).map_err(|e| e.to_string())?;
            check_block_tags(b, &info).map_err(|e| format!("kernel `{}`: {e}", k.name))?;
        }
    }
    check_combines(g)
}

/// The combine rules. The proof reads a split loop as one split, where any
/// combine of one partial result is the identity; with several splits only
/// the matching combine is right: partial sums are summed, maxima maximized,
/// and rescaled sums summed with a rescaled-sum accumulator (weighed by
/// their maxima). So each workspace a split kernel writes must hold an
/// accumulator, and each reader must reduce it over the split axis with the
/// same kind.
fn check_combines(g: &KernelGraph) -> Result<(), String> {
    let mut partial: Vec<Option<AccumKind>> = vec![None; g.tensors.len()];
    for k in &g.kernels {
        let at = |e: String| format!("kernel `{}`: {e}", k.name);
        match &k.body {
            KernelBody::Block(b) => {
                for (i, m) in b.inputs.iter().enumerate() {
                    let Some(kind) = partial.get(m.tensor.0).copied().flatten() else {
                        continue;
                    };
                    combined_as(b, i, kind).map_err(at)?;
                }
                if b.forloop.as_ref().is_some_and(|f| f.split.is_some()) {
                    for (j, o) in b.outputs.iter().enumerate() {
                        let BlockOp::Accum { kind, .. } = b.ops[o.value.0] else {
                            return Err(at(format!(
                                "output {j} of a split loop is not an accumulator"
                            )));
                        };
                        if let Some(slot) = partial.get_mut(o.map.tensor.0) {
                            *slot = Some(kind);
                        }
                    }
                }
            }
            KernelBody::Predefined(Predefined::SplitCombine { partials, .. }) => {
                match partial.get(partials.0).copied().flatten() {
                    Some(AccumKind::Sum) | None => {}
                    Some(other) => {
                        return Err(at(format!("partial {other:?} results combined by a sum")));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether block input `i` (a workspace of `kind` partials) is reduced
/// over the split axis by `kind` and accumulated the same way.
fn combined_as(b: &BlockGraph, i: usize, kind: AccumKind) -> Result<(), String> {
    if b.inputs[i].fmap != Some(0) {
        return Err(format!(
            "input {i} reads partial results without looping over the splits"
        ));
    }
    let want = match kind {
        AccumKind::Max => ReduceOp::Max,
        _ => ReduceOp::Sum,
    };
    let users = |v: usize| {
        b.ops
            .iter()
            .enumerate()
            .filter(move |(_, op)| op.operands().contains(&ValueId(v)))
            .map(|(k, _)| k)
    };
    for read in (0..b.ops.len()).filter(|&k| b.ops[k] == BlockOp::Input(i)) {
        for r in users(read) {
            let BlockOp::Reduce { op, axis: 0, .. } = b.ops[r] else {
                return Err(format!(
                    "input {i}'s partial results are not reduced over the splits"
                ));
            };
            // Over a tile of one split the reduction is the identity; over
            // several it must be the partials' own.
            let one_split = b.forloop.as_ref().is_some_and(|f| f.tile == 1);
            if op != want && !one_split {
                return Err(format!("{kind:?} partials combined by a {op:?} reduction"));
            }
            // Accumulated by the same kind, directly or (rescaled sums)
            // through their weight.
            let accumulated = users(r).chain(
                users(r)
                    .filter(|&u| matches!(b.ops[u], BlockOp::Binary(BinaryOp::Mul, ..)))
                    .flat_map(users)
                    .collect::<Vec<_>>(),
            );
            let same = |k: usize| match (&b.ops[k], kind) {
                (
                    BlockOp::Accum {
                        kind: AccumKind::RescaledSum { .. },
                        ..
                    },
                    AccumKind::RescaledSum { .. },
                ) => true,
                (BlockOp::Accum { kind: a, .. }, k) => *a == k,
                _ => false,
            };
            if !accumulated.into_iter().any(same) {
                return Err(format!("{kind:?} partials are not accumulated as {kind:?}"));
            }
        }
    }
    Ok(())
}

/// Broadcast two operands' tags (numpy alignment from the last axis).
fn broadcast(
    (ta, sa): (&[Option<Tag>], &[TileExtent]),
    (tb, sb): (&[Option<Tag>], &[TileExtent]),
) -> Result<Vec<Option<Tag>>, String> {
    let r = ta.len().max(tb.len());
    let mut out = vec![None; r];
    for (i, slot) in out.iter_mut().enumerate() {
        let pick = |t: &[Option<Tag>], s: &[TileExtent]| {
            let off = r - t.len();
            (i >= off).then(|| (t[i - off], s.get(i - off).is_none_or(TileExtent::is_single)))
        };
        *slot = match (pick(ta, sa), pick(tb, sb)) {
            // A single-element axis no grid dim cuts broadcasts; a single
            // index the grid selects is an index, and must match.
            (Some((a, single_a)), Some((b, single_b))) => {
                if a.is_none() && single_a {
                    b
                } else if (b.is_none() && single_b) || a == b {
                    a
                } else {
                    return Err(format!(
                        "operands cut one axis differently ({} and {})",
                        name(a),
                        name(b)
                    ));
                }
            }
            (Some((a, _)), None) | (None, Some((a, _))) => a,
            (None, None) => None,
        };
    }
    Ok(out)
}

fn check_block_tags(b: &BlockGraph, info: &BlockInfo) -> Result<(), String> {
    let split = b.forloop.as_ref().and_then(|f| f.split);
    let mut tags: Vec<Vec<Option<Tag>>> = Vec::with_capacity(b.ops.len());
    let shape = |v: usize| info.shapes[v].as_slice();
    for (k, op) in b.ops.iter().enumerate() {
        let at = |e: String| format!("op {k}: {e}");
        let t = match op {
            BlockOp::Input(i) => info.input_axes[*i].iter().map(role_tag).collect(),
            BlockOp::Const(_) => vec![],
            BlockOp::Unary(_, a) | BlockOp::Running(a) => tags[a.0].clone(),
            BlockOp::Accum { input, .. } => tags[input.0].clone(),
            BlockOp::Binary(_, x, y) => {
                broadcast((&tags[x.0], shape(x.0)), (&tags[y.0], shape(y.0))).map_err(at)?
            }
            BlockOp::Permute(a, perm) => perm
                .iter()
                .map(|&p| tags[a.0].get(p).copied().flatten())
                .collect(),
            BlockOp::Matmul(x, y) => {
                let (ta, tb) = (&tags[x.0], &tags[y.0]);
                let (ra, rb) = (ta.len(), tb.len());
                if ra < 2 || rb < 2 {
                    return Err(at("a matmul of fewer than two axes".into()));
                }
                for t in [ta[ra - 1], tb[rb - 2]] {
                    if matches!(t, Some(Tag::Grid { .. })) {
                        return Err(at(format!(
                            "a matmul contracts an axis cut by {}: each block would sum only its part",
                            name(t)
                        )));
                    }
                }
                let lead = |v: usize, r: usize| shape(v).get(..r - 2).unwrap_or(&[]);
                let mut out = broadcast(
                    (&ta[..ra - 2], lead(x.0, ra)),
                    (&tb[..rb - 2], lead(y.0, rb)),
                )
                .map_err(at)?;
                out.push(ta[ra - 2]);
                out.push(tb[rb - 1]);
                out
            }
            BlockOp::Reduce { input, axis, .. } => {
                let mut t = tags[input.0].clone();
                let slot = t
                    .get_mut(*axis)
                    .ok_or_else(|| at("a reduction axis out of range".into()))?;
                if matches!(slot, Some(Tag::Grid { .. })) {
                    return Err(at(format!(
                        "a reduction over an axis cut by {}: each block would reduce only its part",
                        name(*slot)
                    )));
                }
                *slot = None;
                t
            }
        };
        tags.push(t);
    }
    for (j, o) in b.outputs.iter().enumerate() {
        let value = &tags[o.value.0];
        let roles = &info.output_axes[j];
        let off = roles.len().saturating_sub(value.len());
        for (a, role) in roles.iter().enumerate() {
            let want = role_tag(role);
            let have = a.checked_sub(off).and_then(|i| value[i]);
            let split_partial = matches!(
                (want, have),
                (Some(Tag::Grid { dim, .. }), None) if Some(dim) == split
            );
            if want != have && !split_partial {
                return Err(format!(
                    "output {j} axis {a}: the map cuts it by {} but the block's value is cut by {}",
                    name(want),
                    name(have)
                ));
            }
        }
    }
    Ok(())
}
