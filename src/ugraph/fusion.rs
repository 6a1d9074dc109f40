//! Fusion regions: connected sets of tensor-program nodes that become one
//! graph-defined kernel, and the block graph of each region.
//!
//! A region has one root (the only node read outside it) and is one of:
//! - **elementwise**: unary/binary nodes; one grid dim over the root's axes;
//! - **reduction**: an elementwise prologue feeding one `sum`/`mean`/`max`,
//!   and an elementwise epilogue on its result (shape preserved): one block
//!   per output element, a for-loop over the reduced axis;
//! - **matmul**: one matmul (or the fused rms_norm → matmul) and an
//!   elementwise epilogue of the matmul's shape, reading other tensors
//!   tile by tile after the loop.
//!
//! [`form_regions`] grows regions greedily along single-consumer edges as
//! long as the merged set is one of these kinds; the lowering turns each
//! region into a block graph with [`synthesize`].

use std::collections::{BTreeSet, HashMap};

use crate::ir::{DimExpr, Graph, NodeId, Op};

use super::fused::{self, RmsMatmul};
use super::lower::{self, MatmulTiles};
use super::types::*;

/// What a region computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Elementwise,
    Reduce(NodeId),
    /// One matmul, or two that share their left operand (and, when fused
    /// with rms_norm, its norm): `silu(x @ w1) * (x @ w3)` as one kernel.
    Matmul(NodeId, Option<NodeId>),
}

fn is_elementwise(op: &Op) -> bool {
    matches!(op, Op::Unary(..) | Op::Binary(..))
}

/// Whether `from` broadcasts into `to` (numpy rules, aligned at the end).
fn broadcasts_into(from: &[DimExpr], to: &[DimExpr]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(f, t)| f == t || f.is_one())
}

/// Members of `members` that `node` depends on, including itself.
fn ancestors_in(g: &Graph, node: NodeId, members: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
    let mut out = BTreeSet::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if members.contains(&n) && out.insert(n) {
            stack.extend(g.node(n).op.operands());
        }
    }
    out
}

/// The kind of a multi-node region with root `root`, or `None` when the
/// members do not form a kernel the code generator supports.
pub fn classify(
    g: &Graph,
    members: &BTreeSet<NodeId>,
    root: NodeId,
    rms: &HashMap<NodeId, RmsMatmul>,
) -> Option<RegionKind> {
    if members.len() == 1 {
        return None;
    }
    let mut heavy = Vec::new();
    for &n in members {
        match &g.node(n).op {
            Op::Matmul(..) | Op::Reduce { .. } => heavy.push(n),
            op if is_elementwise(op) => {}
            _ => return None,
        }
    }
    match heavy[..] {
        [] => Some(RegionKind::Elementwise),
        [m1, m2] => {
            let (Op::Matmul(a1, b1), Op::Matmul(a2, b2)) = (&g.node(m1).op, &g.node(m2).op) else {
                return None;
            };
            let left =
                |m: NodeId, a: NodeId| rms.get(&m).map(|r| (r.x, true)).unwrap_or((a, false));
            let shape = &g.node(m1).shape;
            let same = left(m1, *a1) == left(m2, *a2)
                && g.node(*b1).shape == g.node(*b2).shape
                && g.node(m2).shape == *shape
                && rms.get(&m1).map(|r| &r.eps) == rms.get(&m2).map(|r| &r.eps);
            if !same {
                return None;
            }
            // No prologue; every other member is an epilogue of the shared shape.
            let ok = members.iter().all(|n| {
                *n == m1
                    || *n == m2
                    || (&g.node(*n).shape == shape && !g.node(*n).op.operands().is_empty())
            });
            let before: BTreeSet<NodeId> = ancestors_in(g, m1, members)
                .union(&ancestors_in(g, m2, members))
                .copied()
                .collect();
            (ok && before.len() == 2).then_some(RegionKind::Matmul(m1, Some(m2)))
        }
        [h] => {
            let hshape = &g.node(h).shape;
            let before = ancestors_in(g, h, members);
            for &n in members {
                let shape = &g.node(n).shape;
                if before.contains(&n) {
                    if n == h {
                        continue;
                    }
                    // A prologue: only reductions take one.
                    let Op::Reduce { input, .. } = &g.node(h).op else {
                        return None;
                    };
                    if !broadcasts_into(shape, &g.node(*input).shape) {
                        return None;
                    }
                } else if shape != hshape {
                    // Epilogues keep the heavy node's shape: one result per
                    // element the kernel already owns.
                    return None;
                }
            }
            let _ = root;
            Some(match g.node(h).op {
                Op::Matmul(..) => RegionKind::Matmul(h, None),
                _ => RegionKind::Reduce(h),
            })
        }
        _ => None,
    }
}

/// Greedy regions: region id per node (`None` for inputs, dead nodes and
/// inlined constants). `consumers[n]` lists the live nodes that read `n`
/// from global memory; `pinned` nodes (graph outputs) are never merged into
/// their consumers; `barriers` (kernels built elsewhere, e.g. flash
/// attention) are merged with nothing.
pub fn form_regions(
    g: &Graph,
    live: &[bool],
    consumers: &[Vec<NodeId>],
    pinned: &BTreeSet<NodeId>,
    barriers: &BTreeSet<NodeId>,
    rms: &HashMap<NodeId, RmsMatmul>,
) -> Vec<Option<usize>> {
    let n = g.nodes.len();
    let mut region: Vec<Option<usize>> = (0..n)
        .map(|i| {
            let computed = !matches!(g.nodes[i].op, Op::Input(_));
            (live[i] && computed).then_some(i)
        })
        .collect();
    let members_of = |region: &[Option<usize>], r: usize| -> BTreeSet<NodeId> {
        (0..n)
            .filter(|i| region[*i] == Some(r))
            .map(NodeId)
            .collect()
    };
    let mut changed = true;
    while changed {
        changed = false;
        for p in 0..n {
            let (Some(rp), [c]) = (region[p], &consumers[p][..]) else {
                continue;
            };
            if pinned.contains(&NodeId(p))
                || barriers.contains(&NodeId(p))
                || barriers.contains(c)
                || matches!(g.nodes[p].op, Op::Const(_))
            {
                continue;
            }
            let Some(rc) = region[c.0] else { continue };
            if rp == rc {
                continue;
            }
            // p's region has p as its root (p is its only node read
            // elsewhere), and p's one consumer is in rc: merging keeps one root.
            let mut merged = members_of(&region, rp);
            merged.extend(members_of(&region, rc));
            let root = *merged.iter().next_back().unwrap_or(c);
            if classify(g, &merged, root, rms).is_some() {
                for m in &merged {
                    region[m.0] = Some(rc);
                }
                changed = true;
            }
        }
    }
    region
}

/// Where a region's tensors come from, for [`synthesize`].
pub struct SynthContext<'a> {
    pub graph: &'a Graph,
    pub tensor_of: &'a HashMap<NodeId, TensorId>,
    pub rms: &'a HashMap<NodeId, RmsMatmul>,
    pub tiles: &'a dyn Fn(NodeId) -> MatmulTiles,
}

/// How an operand read from global memory is tiled, by its place in the region.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Side {
    /// Elementwise region over rank `r`.
    Elementwise(usize),
    /// Reduction prologue over the input of rank `r`, reduced axis `a`.
    Prologue(usize, usize),
    /// After the loop of a reduction (keepdim space of rank `r`, axis `a`;
    /// `keep`: the reduction keeps the axis).
    ReduceEpilogue(usize, usize, bool),
    /// After the loop of a matmul with output rank `r`.
    MatmulEpilogue(usize),
}

struct Builder<'a, 'c> {
    cx: &'a SynthContext<'c>,
    members: &'a BTreeSet<NodeId>,
    inputs: Vec<TileMap>,
    ops: Vec<BlockOp>,
    value_of: HashMap<NodeId, ValueId>,
    external: HashMap<(NodeId, Side), ValueId>,
}

impl Builder<'_, '_> {
    fn push(&mut self, op: BlockOp) -> ValueId {
        self.ops.push(op);
        ValueId(self.ops.len() - 1)
    }

    fn tile_map(&self, n: NodeId, side: Side) -> TileMap {
        let shape = &self.cx.graph.node(n).shape;
        let tensor = self.cx.tensor_of[&n];
        match side {
            Side::Elementwise(r) => TileMap {
                tensor,
                view: lower::padded(shape, r),
                imap: lower::grid_all(r),
                fmap: None,
            },
            Side::Prologue(r, a) => {
                let view = lower::padded(shape, r);
                let fmap = (!view[a].is_one()).then_some(a);
                TileMap {
                    tensor,
                    imap: lower::reduce_grid(&view, a).1,
                    view,
                    fmap,
                }
            }
            Side::ReduceEpilogue(r, a, keep) => {
                let view = if keep {
                    lower::padded(shape, r)
                } else {
                    let mut v = lower::padded(shape, r - 1);
                    v.insert(a, DimExpr::constant(1));
                    v
                };
                TileMap {
                    tensor,
                    imap: lower::reduce_grid(&view, a).1,
                    view,
                    fmap: None,
                }
            }
            Side::MatmulEpilogue(r) => TileMap {
                tensor,
                view: lower::padded(shape, r),
                imap: lower::matmul_out_imap(r),
                fmap: None,
            },
        }
    }

    fn operand(&mut self, n: NodeId, side: Side) -> ValueId {
        if let Some(v) = self.value_of.get(&n) {
            return *v;
        }
        if let Op::Const(c) = &self.cx.graph.node(n).op {
            return self.push(BlockOp::Const(c.clone()));
        }
        if let Some(v) = self.external.get(&(n, side)) {
            return *v;
        }
        let map = self.tile_map(n, side);
        self.inputs.push(map);
        let v = self.push(BlockOp::Input(self.inputs.len() - 1));
        self.external.insert((n, side), v);
        v
    }

    /// Translate elementwise members in `nodes` (topological order).
    fn elementwise(&mut self, nodes: &[NodeId], side: Side) {
        for &n in nodes {
            let op = match &self.cx.graph.node(n).op {
                Op::Unary(u, a) => {
                    let a = self.operand(*a, side);
                    BlockOp::Unary(*u, a)
                }
                Op::Binary(b, x, y) => {
                    let x = self.operand(*x, side);
                    let y = self.operand(*y, side);
                    BlockOp::Binary(*b, x, y)
                }
                _ => continue,
            };
            let v = self.push(op);
            self.value_of.insert(n, v);
        }
    }
}

/// The block graph of a region whose root is written to `out`.
pub fn synthesize(
    cx: &SynthContext<'_>,
    members: &BTreeSet<NodeId>,
    root: NodeId,
    kind: RegionKind,
    out: TensorId,
) -> BlockGraph {
    let g = cx.graph;
    let mut b = Builder {
        cx,
        members,
        inputs: Vec::new(),
        ops: Vec::new(),
        value_of: HashMap::new(),
        external: HashMap::new(),
    };
    let all: Vec<NodeId> = members.iter().copied().collect();
    let root_shape = g.node(root).shape.clone();
    match kind {
        RegionKind::Elementwise => {
            let r = root_shape.len();
            b.elementwise(&all, Side::Elementwise(r));
            let value = b.value_of[&root];
            let mut block = lower::elementwise_block(&root_shape, b.inputs, b.ops, out);
            block.outputs[0].value = value;
            block
        }
        RegionKind::Reduce(h) => {
            let Op::Reduce {
                op,
                input,
                axis,
                keepdim,
            } = g.node(h).op.clone()
            else {
                unreachable!("classify returns Reduce only for a reduction")
            };
            let in_shape = g.node(input).shape.clone();
            let r = in_shape.len();
            let before = ancestors_in(g, h, b.members);
            let prologue: Vec<NodeId> = all
                .iter()
                .copied()
                .filter(|n| before.contains(n) && *n != h)
                .collect();
            let epilogue: Vec<NodeId> = all
                .iter()
                .copied()
                .filter(|n| !before.contains(n))
                .collect();
            b.elementwise(&prologue, Side::Prologue(r, axis));
            let x = b.operand(input, Side::Prologue(r, axis));
            let (reduce, accum) = lower::reduce_step(op, x, axis, &in_shape);
            let red = b.push(reduce);
            let acc = b.push(BlockOp::Accum {
                kind: accum,
                input: red,
            });
            b.value_of.insert(h, acc);
            b.elementwise(&epilogue, Side::ReduceEpilogue(r, axis, keepdim));
            let value = b.value_of[&root];
            lower::reduce_block(&in_shape, axis, b.inputs, b.ops, value, out)
        }
        RegionKind::Matmul(h, second) => {
            let Op::Matmul(a, w) = g.node(h).op.clone() else {
                unreachable!("classify returns Matmul only for a matmul")
            };
            let tiles = (cx.tiles)(h);
            let (x, rms) = match cx.rms.get(&h) {
                Some(m) => (m.x, Some(m)),
                None => (a, None),
            };
            let base = match rms {
                Some(m) => fused::rms_matmul_kernel(
                    m,
                    cx.tensor_of[&x],
                    &g.node(x).shape,
                    cx.tensor_of[&w],
                    &g.node(w).shape,
                    out,
                    &root_shape,
                    tiles,
                ),
                None => lower::matmul_kernel(
                    cx.tensor_of[&x],
                    &g.node(x).shape,
                    cx.tensor_of[&w],
                    &g.node(w).shape,
                    out,
                    &root_shape,
                    tiles,
                ),
            };
            let r = root_shape.len();
            b.inputs = base.inputs.clone();
            b.ops = base.ops.clone();
            b.value_of.insert(h, base.outputs[0].value);
            if let Some(h2) = second {
                // The second matmul reads the same left tile (op 0) with its
                // own right operand, mapped like the first's.
                let Op::Matmul(_, w2) = g.node(h2).op else {
                    unreachable!("classify pairs matmuls only")
                };
                let mut map = base.inputs[1].clone();
                map.tensor = cx.tensor_of[&w2];
                b.inputs.push(map);
                let rhs = b.push(BlockOp::Input(b.inputs.len() - 1));
                let mm = b.push(BlockOp::Matmul(ValueId(0), rhs));
                let mut acc = b.push(BlockOp::Accum {
                    kind: AccumKind::Sum,
                    input: mm,
                });
                if rms.is_some() {
                    // Scaled by the same row norm (op 9 of the rms kernel).
                    acc = b.push(BlockOp::Binary(crate::ir::BinaryOp::Mul, acc, ValueId(9)));
                }
                b.value_of.insert(h2, acc);
            }
            let epilogue: Vec<NodeId> = all
                .iter()
                .copied()
                .filter(|n| *n != h && Some(*n) != second)
                .collect();
            b.elementwise(&epilogue, Side::MatmulEpilogue(r));
            let mut block = base;
            block.outputs[0].value = b.value_of[&root];
            block.inputs = b.inputs;
            block.ops = b.ops;
            block
        }
    }
}
