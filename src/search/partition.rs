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
//!   proof reads as one split).
//!
//! A μGraph that passes this and whose unpartitioned meaning is proven
//! equal to the program computes the program, block by block.

use crate::ugraph::validate::{AxisRole, BlockInfo, TileExtent, check_block};
use crate::ugraph::{BlockGraph, BlockOp, KernelBody, KernelGraph};

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

/// Check every block kernel of `g` (see the module docs).
pub fn check(g: &KernelGraph) -> Result<(), String> {
    for k in &g.kernels {
        if let KernelBody::Block(b) = &k.body {
            let info = check_block(b, &g.tensors).map_err(|e| e.to_string())?;
            check_block_tags(b, &info).map_err(|e| format!("kernel `{}`: {e}", k.name))?;
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
