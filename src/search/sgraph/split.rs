//! The split form of a loop kernel: split-K, and split-KV for attention
//! (flash decoding).
//!
//! A kernel whose for-loop accumulates becomes two kernels:
//!
//! 1. **Partial**: the same block graph with its loop shared out among
//!    `S` blocks of a new grid dim x ([`crate::ugraph::ForLoop::split`]);
//!    it writes every accumulator of its split to an f32 workspace
//!    `[S, ..accumulator shape]` and runs none of the post-loop operators.
//! 2. **Combine**: one block per row of the first output (every axis but
//!    the last); a for-loop of tile 1 over the splits with the same
//!    accumulators: sums add, maxima take the maximum, and a rescaled sum
//!    weighs split `j` by `exp(m_j - M)` (its maximum against the running
//!    one), which is exactly what the partial's rescaling did within a
//!    split. Then the post-loop operators, on the combined accumulators.
//!
//! Every tile gets a leading size-1 axis for the split (views of inputs
//! and outputs; reduction axes and permutations shift by one), so a
//! partial result's tile `[1, ..]` is one split's slice of the workspace.
//! The proof reads the pair back as the unsplit kernel
//! ([`crate::search::abstract_graph`]), the cross-check runs it with
//! several split counts.

use std::collections::BTreeMap;

use crate::ir::{BinaryOp, DType, DimExpr, ReduceOp, UnaryOp};
use crate::ugraph::flash::{COMBINE_ROWS, combine_threads, split_count};
use crate::ugraph::validate::{Phase, validate};
use crate::ugraph::{
    AccumKind, BlockGraph, BlockOp, BlockOutput, ForLoop, GlobalTensor, GridDim, Kernel,
    KernelBody, KernelGraph, LaunchParams, TensorId, TensorRole, TileMap, ValueId,
};

use super::instantiate::{Builder, Built, Prune};

/// `op` over tiles with one more leading axis.
fn lift(op: &BlockOp) -> BlockOp {
    match op {
        BlockOp::Reduce {
            op,
            input,
            axis,
            count,
        } => BlockOp::Reduce {
            op: *op,
            input: *input,
            axis: axis + 1,
            count: count.clone(),
        },
        BlockOp::Permute(a, perm) => BlockOp::Permute(
            *a,
            std::iter::once(0)
                .chain(perm.iter().map(|p| p + 1))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `op` with its operands renamed.
fn rename(op: BlockOp, to: &BTreeMap<usize, ValueId>) -> Result<BlockOp, Prune> {
    let r = |v: ValueId| {
        to.get(&v.0)
            .copied()
            .ok_or("split: an operand is not carried")
    };
    Ok(match op {
        BlockOp::Input(_) | BlockOp::Const(_) => op,
        BlockOp::Unary(u, a) => BlockOp::Unary(u, r(a)?),
        BlockOp::Binary(b, x, y) => BlockOp::Binary(b, r(x)?, r(y)?),
        BlockOp::Permute(a, p) => BlockOp::Permute(r(a)?, p),
        BlockOp::Matmul(x, y) => BlockOp::Matmul(r(x)?, r(y)?),
        BlockOp::Reduce {
            op,
            input,
            axis,
            count,
        } => BlockOp::Reduce {
            op,
            input: r(input)?,
            axis,
            count,
        },
        BlockOp::Accum { kind, input } => BlockOp::Accum {
            kind: match kind {
                AccumKind::RescaledSum { max } => AccumKind::RescaledSum { max: r(max)? },
                k => k,
            },
            input: r(input)?,
        },
        BlockOp::Running(a) => BlockOp::Running(r(a)?),
    })
}

fn lead(view: &[DimExpr], first: DimExpr) -> Vec<DimExpr> {
    std::iter::once(first).chain(view.iter().cloned()).collect()
}

fn shift(imap: &[Option<Vec<usize>>]) -> Vec<Option<Vec<usize>>> {
    imap.iter()
        .map(|m| m.as_ref().map(|axes| axes.iter().map(|a| a + 1).collect()))
        .collect()
}

fn push(ops: &mut Vec<BlockOp>, op: BlockOp) -> ValueId {
    ops.push(op);
    ValueId(ops.len() - 1)
}

impl Builder<'_> {
    /// The split form of a built loop kernel.
    pub(super) fn split(&mut self, built: &Built) -> Result<KernelGraph, Prune> {
        let b = &built.block;
        let phases = &built.info.phases;
        let fl = b.forloop.as_ref().ok_or("split: no loop")?;
        if fl.split.is_some() || b.grid.len() > 2 {
            return Err("split: no grid dim left for the splits".into());
        }
        let accums: Vec<usize> = (0..b.ops.len())
            .filter(|&k| matches!(b.ops[k], BlockOp::Accum { .. }))
            .collect();
        if accums.is_empty() {
            return Err("split: nothing accumulates".into());
        }
        // Post-loop operators may read accumulators, constants and each
        // other: the combine recomputes nothing else.
        for (k, op) in b.ops.iter().enumerate() {
            if phases[k] == Phase::Post && !matches!(op, BlockOp::Accum { .. }) {
                for o in op.operands() {
                    let carried = phases[o.0] == Phase::Post
                        || matches!(b.ops[o.0], BlockOp::Const(_) | BlockOp::Accum { .. });
                    if !carried {
                        return Err("split: a post-loop operator reads a loop value".into());
                    }
                }
            }
        }
        let splits = self.splits(b, fl)?;
        let s = DimExpr::constant(i64::from(splits));
        let one = DimExpr::constant(1);
        let mut tensors = self.tensors.clone();
        // One f32 workspace per accumulator.
        let mut parts: Vec<(TensorId, usize)> = Vec::new();
        for (j, &k) in accums.iter().enumerate() {
            let node = built
                .accum_nodes
                .get(&k)
                .copied()
                .ok_or("split: accumulator")?;
            let shape = self.node_shape(node);
            tensors.push(GlobalTensor {
                name: format!("{}_part{j}", self.w.name),
                shape: lead(&shape, s.clone()),
                dtype: DType::F32,
                role: TensorRole::Intermediate,
            });
            parts.push((TensorId(tensors.len() - 1), node));
        }
        // The partial kernel.
        let split_dim = GridDim {
            extents: vec![s.clone()],
            tile: 1,
        };
        let inputs: Vec<TileMap> = b
            .inputs
            .iter()
            .map(|m| TileMap {
                tensor: m.tensor,
                view: lead(&m.view, one.clone()),
                imap: lead_imap(&m.imap),
                fmap: m.fmap.map(|a| a + 1),
            })
            .collect();
        let mut ops = Vec::new();
        let mut to: BTreeMap<usize, ValueId> = BTreeMap::new();
        for (k, op) in b.ops.iter().enumerate() {
            if phases[k] == Phase::Loop || matches!(op, BlockOp::Accum { .. }) {
                let v = push(&mut ops, rename(lift(op), &to)?);
                to.insert(k, v);
            }
        }
        let mut outputs = Vec::new();
        let grid = self.grid_classes(b)?;
        for (&k, &(tensor, node)) in accums.iter().zip(&parts) {
            let imap = self.imap(node, &grid)?;
            outputs.push(BlockOutput {
                value: to[&k],
                map: TileMap {
                    tensor,
                    view: tensors[tensor.0].shape.clone(),
                    imap: lead_imap(&imap),
                    fmap: None,
                },
            });
        }
        let partial = BlockGraph {
            grid: std::iter::once(split_dim)
                .chain(b.grid.iter().cloned())
                .collect(),
            forloop: Some(ForLoop {
                extent: fl.extent.clone(),
                tile: fl.tile,
                split: Some(0),
            }),
            inputs,
            ops,
            outputs,
            params: b.params.clone(),
        };
        let combine = self.combine(b, built, &accums, &parts, &tensors, splits)?;
        let graph = KernelGraph {
            tensors,
            kernels: vec![
                Kernel {
                    name: format!("{}_k0_sgraph", self.w.name),
                    body: KernelBody::Block(partial),
                },
                Kernel {
                    name: format!("{}_k1_sgraph", self.w.name),
                    body: KernelBody::Block(combine),
                },
            ],
        };
        validate(&graph).map_err(|_| "split: invalid μGraph".to_string())?;
        Ok(graph)
    }

    /// The split count: enough blocks at the smallest declared point.
    fn splits(&self, b: &BlockGraph, fl: &ForLoop) -> Result<u32, Prune> {
        let w = self.w;
        let (mut min_blocks, mut max_iters) = (i64::MAX, 1i64);
        for p in &w.points_or_max() {
            let blocks = i64::try_from(b.blocks(p)).unwrap_or(i64::MAX);
            min_blocks = min_blocks.min(blocks);
            let iters = fl
                .iterations(p)
                .map_err(|_| "split: a dim without a value")?;
            max_iters = max_iters.max(i64::try_from(iters).unwrap_or(i64::MAX));
        }
        Ok(split_count(min_blocks, max_iters))
    }

    /// The axis identities of the built kernel's grid dims (from the first
    /// output's map).
    fn grid_classes(&mut self, b: &BlockGraph) -> Result<Vec<Vec<usize>>, Prune> {
        let (node, _) = self.outputs.first().cloned().ok_or("no outputs")?;
        let imap = &b.outputs.first().ok_or("no outputs")?.map.imap;
        imap.iter()
            .map(|m| {
                let axes = m.as_ref().ok_or("split: a replicated output")?;
                Ok(axes.iter().map(|&a| self.class(node, a)).collect())
            })
            .collect()
    }

    fn node_shape(&self, node: usize) -> Vec<DimExpr> {
        self.data[node]
            .tensor()
            .map_or_else(Vec::new, |t| t.shape.clone())
    }

    /// The combine kernel (see the module docs).
    fn combine(
        &mut self,
        b: &BlockGraph,
        built: &Built,
        accums: &[usize],
        parts: &[(TensorId, usize)],
        tensors: &[GlobalTensor],
        splits: u32,
    ) -> Result<BlockGraph, Prune> {
        let phases = &built.info.phases;
        let (first, view) = self.outputs.first().cloned().ok_or("no outputs")?;
        let r = view.len();
        let rows: Vec<usize> = if r >= 2 {
            (0..r - 1).collect()
        } else {
            vec![0]
        };
        let classes: Vec<usize> = rows.iter().map(|&a| self.class(first, a)).collect();
        let grid = vec![GridDim {
            extents: rows.iter().map(|&a| view[a].clone()).collect(),
            tile: COMBINE_ROWS,
        }];
        let one_dim = std::slice::from_ref(&classes);
        let mut inputs = Vec::new();
        let mut ops = Vec::new();
        let mut to: BTreeMap<usize, ValueId> = BTreeMap::new();
        // Per combined `Max`: this split's maximum, and once a rescaled sum
        // needs it, its weight `exp(m_j - M)` against the running maximum.
        let mut maxima: BTreeMap<usize, (ValueId, Option<ValueId>)> = BTreeMap::new();
        for (j, (&k, &(tensor, node))) in accums.iter().zip(parts).enumerate() {
            let imap = self.imap(node, one_dim)?;
            if imap.iter().any(Option::is_none) {
                return Err("split: an accumulator lacks the output's rows".into());
            }
            inputs.push(TileMap {
                tensor,
                view: tensors[tensor.0].shape.clone(),
                imap: shift(&imap),
                fmap: Some(0),
            });
            let x = push(&mut ops, BlockOp::Input(j));
            let BlockOp::Accum { kind, .. } = &b.ops[k] else {
                return Err("split: accumulator".into());
            };
            let red = |op: ReduceOp| BlockOp::Reduce {
                op,
                input: x,
                axis: 0,
                count: None,
            };
            let acc = match kind {
                AccumKind::Max => {
                    let m = push(&mut ops, red(ReduceOp::Max));
                    let acc = push(
                        &mut ops,
                        BlockOp::Accum {
                            kind: AccumKind::Max,
                            input: m,
                        },
                    );
                    maxima.insert(k, (m, None));
                    acc
                }
                AccumKind::Sum => {
                    let sum = push(&mut ops, red(ReduceOp::Sum));
                    push(
                        &mut ops,
                        BlockOp::Accum {
                            kind: AccumKind::Sum,
                            input: sum,
                        },
                    )
                }
                AccumKind::RescaledSum { max } => {
                    let sum = push(&mut ops, red(ReduceOp::Sum));
                    let combined = to.get(&max.0).copied().ok_or("split: rescaled sum")?;
                    let (m, weight) = maxima.get(&max.0).copied().ok_or("split: rescaled sum")?;
                    // exp(m_j - M): split j's terms were rescaled to m_j.
                    let e = match weight {
                        Some(e) => e,
                        None => {
                            let run = push(&mut ops, BlockOp::Running(combined));
                            let d = push(&mut ops, BlockOp::Binary(BinaryOp::Sub, m, run));
                            let e = push(&mut ops, BlockOp::Unary(UnaryOp::Exp, d));
                            maxima.insert(max.0, (m, Some(e)));
                            e
                        }
                    };
                    let weighed = push(&mut ops, BlockOp::Binary(BinaryOp::Mul, sum, e));
                    push(
                        &mut ops,
                        BlockOp::Accum {
                            kind: AccumKind::RescaledSum { max: combined },
                            input: weighed,
                        },
                    )
                }
            };
            to.insert(k, acc);
        }
        // The post-loop operators, on the combined accumulators.
        for (k, op) in b.ops.iter().enumerate() {
            let copy = match op {
                BlockOp::Const(_) => b.ops.iter().enumerate().any(|(u, user)| {
                    phases[u] == Phase::Post
                        && !matches!(user, BlockOp::Accum { .. })
                        && user.operands().contains(&ValueId(k))
                }),
                BlockOp::Accum { .. } => false,
                _ => phases[k] == Phase::Post,
            };
            if copy {
                let v = push(&mut ops, rename(lift(op), &to)?);
                to.insert(k, v);
            }
        }
        let mut outputs = Vec::new();
        for (o, (node, oview)) in b.outputs.iter().zip(self.outputs.clone()) {
            let imap = self.imap(node, one_dim)?;
            outputs.push(BlockOutput {
                value: to.get(&o.value.0).copied().ok_or("split: an output")?,
                map: TileMap {
                    tensor: o.map.tensor,
                    view: lead(&oview, DimExpr::constant(1)),
                    imap: shift(&imap),
                    fmap: None,
                },
            });
        }
        Ok(BlockGraph {
            grid,
            forloop: Some(ForLoop::new(DimExpr::constant(i64::from(splits)), 1)),
            inputs,
            ops,
            outputs,
            params: LaunchParams {
                threads: combine_threads(i64::from(splits)),
                ..LaunchParams::default()
            },
        })
    }
}

/// An imap of the partial kernel: the split grid dim reads the leading
/// size-1 axis (every split sees the whole tile), the others shift.
fn lead_imap(imap: &[Option<Vec<usize>>]) -> Vec<Option<Vec<usize>>> {
    std::iter::once(Some(vec![0])).chain(shift(imap)).collect()
}
