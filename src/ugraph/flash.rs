//! Flash-decoding attention: `softmax(f(a @ b), -1) @ v` as two kernels.
//!
//! 1. **Partial** (one block per split × row tile × batch index): the
//!    for-loop walks the key/value axis in tiles and is *split* over grid
//!    dim x ([`ForLoop::split`]), so each block covers a contiguous range of
//!    keys. Per tile it computes the scores `s = f(a_tile @ b_tile)`, the
//!    online softmax (running row max `m`, `p = exp(s - m)`, a rescaled row
//!    sum `l`) and the rescaled sum of `p @ v_tile`. It writes the
//!    unnormalized output `o_j`, `m_j` and `l_j` of its split (f32).
//! 2. **Combine** (one block per tile of rows): a for-loop over the splits with the
//!    same accumulators: `M = max_j m_j`, `O = sum_j o_j exp(m_j - M)`,
//!    `L = sum_j l_j exp(m_j - M)`, output `O / L`.
//!
//! Exact algebra: with `M` the global row max, every split's terms are
//! rescaled to `exp(s - M)`, so `O / L = softmax(s) @ v`. An empty split
//! (more splits than key tiles) leaves `m_j = -inf`, `l_j = o_j = 0`, which
//! the combine weighs by `exp(-inf) = 0`; split 0 is never empty.
//!
//! `b` is either `[.., d, n]` or the transpose of a `[.., n, d]` tensor
//! (`transpose(k, -2, -1)`, read through a tile permute). Reshapes around
//! the operands and the result are free views.

use crate::ir::{BinaryOp, DType, DimExpr, Graph, NodeId, Op, ReduceOp, UnaryOp, Workload};

use super::types::*;

/// Keys per for-loop iteration.
pub const KEY_TILE: u32 = 64;
/// Blocks the split count aims for at the smallest declared point (two
/// waves of a 132-SM GPU).
pub const TARGET_BLOCKS: i64 = 264;
/// Most splits.
pub const MAX_SPLITS: i64 = 64;
/// Rows per block of the combine kernel.
pub const COMBINE_ROWS: u32 = 1;
/// Threads of the combine kernel over `splits` splits: up to 8 thread
/// groups per 128-wide row share the splits. The combine is latency-bound
/// (one dependent L2 round trip per split a group walks): at 64 splits, 8
/// groups walk 8 each instead of 16 (measured with ncu on an H200: the
/// 512-thread combine took as long as the partial kernel at attention
/// (2,8,1,1024)). Below 16 splits, 512 threads: with one row per block,
/// 1024-thread blocks made the prefill points (8 splits, 2048 rows) ~8 %
/// slower.
pub fn combine_threads(splits: i64) -> u32 {
    if splits >= 16 { 1024 } else { 512 }
}

/// Most query rows per block for which the combine is fused into the
/// partial: the decode configuration (one row tile of 16). A prefill row
/// tile (64 rows) would leave one block per tile reading 64 rows × dv ×
/// splits partial results through L2, where the separate combine spreads
/// them over a block per row.
pub const FUSED_COMBINE_MAX_ROWS: u32 = 16;

/// Most splits of a combine across a thread block cluster
/// ([`crate::ugraph::LaunchParams::cluster_combine`]): Hopper's largest
/// cluster. Above 8 blocks a cluster is non-portable: the loaders (the
/// tuner's and the generated runtime's) allow it for kernels whose
/// compiled cluster width needs it.
pub const CLUSTER_COMBINE_MAX_SPLITS: i64 = 16;

/// Whether a combine across a thread block cluster takes `splits` splits
/// (2 to [`CLUSTER_COMBINE_MAX_SPLITS`]).
pub fn cluster_combine_takes(splits: i64) -> bool {
    (2..=CLUSTER_COMBINE_MAX_SPLITS).contains(&splits)
}

/// One elementwise step from the scores to the softmax input.
#[derive(Clone, Debug, PartialEq)]
pub enum ScoreStep {
    Unary(UnaryOp),
    /// `s op c` (`left = false`) or `c op s` (`left = true`).
    Binary {
        op: BinaryOp,
        constant: NodeId,
        left: bool,
    },
}

/// A matched attention subgraph.
#[derive(Clone, Debug, PartialEq)]
pub struct Attention {
    /// The node whose tensor the combine writes (the `p @ v` matmul or a
    /// reshape of it).
    pub root: NodeId,
    /// Every node the two kernels compute, `root` included.
    pub covered: Vec<NodeId>,
    /// Source nodes of the operands (reshapes peeled) and their views.
    pub a: (NodeId, Vec<DimExpr>),
    pub b: (NodeId, Vec<DimExpr>),
    /// Whether `b` is read as `[.., n, d]` and transposed in the block.
    pub b_transposed: bool,
    pub v: (NodeId, Vec<DimExpr>),
    /// The shape of `p @ v`: `[..batch, m, dv]`.
    pub out_shape: Vec<DimExpr>,
    pub scores: Vec<ScoreStep>,
    pub dtype: DType,
}

/// Follow reshapes down to the node that holds the data.
fn peel(g: &Graph, mut n: NodeId) -> NodeId {
    while let Op::Reshape(a) = &g.node(n).op {
        n = *a;
    }
    n
}

/// Match `o` (a matmul) as `softmax(f(a @ b), -1) @ v`. `single_use(n)` says
/// whether `n` has exactly one consumer and is not a program output: every
/// interior node must be, since the kernels do not materialize it.
pub fn match_attention(
    g: &Graph,
    o: NodeId,
    single_use: &dyn Fn(NodeId) -> bool,
) -> Option<Attention> {
    let Op::Matmul(p, v) = &g.node(o).op else {
        return None;
    };
    let (p, v) = (*p, *v);
    let mut covered = vec![o];
    // p = e / sum(e, -1, keepdim), e = exp(x - max(x, -1, keepdim)).
    let Op::Binary(BinaryOp::Div, e, z) = &g.node(p).op else {
        return None;
    };
    let (e, z) = (*e, *z);
    let last = |n: NodeId| g.node(n).shape.len().checked_sub(1);
    let Op::Reduce {
        op: ReduceOp::Sum,
        input,
        axis,
        keepdim: true,
    } = &g.node(z).op
    else {
        return None;
    };
    if *input != e || Some(*axis) != last(e) {
        return None;
    }
    let Op::Unary(UnaryOp::Exp, shifted) = &g.node(e).op else {
        return None;
    };
    let Op::Binary(BinaryOp::Sub, x, mx) = &g.node(*shifted).op else {
        return None;
    };
    let (x, mx) = (*x, *mx);
    let Op::Reduce {
        op: ReduceOp::Max,
        input,
        axis,
        keepdim: true,
    } = &g.node(mx).op
    else {
        return None;
    };
    if *input != x || Some(*axis) != last(x) {
        return None;
    }
    // e is read by the sum and the division; the others once.
    let uses = |n: NodeId| {
        g.nodes
            .iter()
            .flat_map(|m| m.op.operands())
            .filter(|u| *u == n)
            .count()
    };
    if uses(e) != 2 || !single_use(p) || !single_use(z) || !single_use(*shifted) || uses(x) != 2 {
        return None;
    }
    if !single_use(mx) {
        return None;
    }
    covered.extend([p, z, e, *shifted, mx, x]);
    // x = f(s), f a chain of elementwise steps with constants.
    let mut steps = Vec::new();
    let mut cur = x;
    let s = loop {
        match &g.node(cur).op {
            Op::Matmul(..) => break cur,
            Op::Unary(u, a) => {
                steps.push(ScoreStep::Unary(*u));
                cur = *a;
            }
            Op::Binary(op, l, r) => {
                let is_const = |n: NodeId| matches!(g.node(n).op, Op::Const(_));
                if is_const(*r) && !is_const(*l) {
                    steps.push(ScoreStep::Binary {
                        op: *op,
                        constant: *r,
                        left: false,
                    });
                    cur = *l;
                } else if is_const(*l) && !is_const(*r) {
                    steps.push(ScoreStep::Binary {
                        op: *op,
                        constant: *l,
                        left: true,
                    });
                    cur = *r;
                } else {
                    return None;
                }
            }
            _ => return None,
        }
        if !single_use(cur) {
            return None;
        }
        covered.push(cur);
    };
    steps.reverse();
    let Op::Matmul(a, b) = &g.node(s).op else {
        return None;
    };
    let a_src = peel(g, *a);
    let (b_src, b_view, b_transposed) = match &g.node(*b).op {
        Op::Permute(k, perm) => {
            let r = perm.len();
            let swap: Vec<usize> = (0..r.saturating_sub(2)).chain([r - 1, r - 2]).collect();
            if r < 2 || *perm != swap {
                return None;
            }
            (peel(g, *k), g.node(*k).shape.clone(), true)
        }
        _ => (peel(g, *b), g.node(*b).shape.clone(), false),
    };
    let v_src = peel(g, v);
    // Equal batch dims everywhere; a: [.., m, d], b: [.., d, n] (or
    // [.., n, d]), v: [.., n, dv].
    let (sa, sv) = (&g.node(*a).shape, &g.node(v).shape);
    let r = sa.len();
    if r < 2 || b_view.len() != r || sv.len() != r || sa[..r - 2] != b_view[..r - 2] {
        return None;
    }
    if sa[..r - 2] != sv[..r - 2] {
        return None;
    }
    let (d, n) = if b_transposed {
        (&b_view[r - 1], &b_view[r - 2])
    } else {
        (&b_view[r - 2], &b_view[r - 1])
    };
    if *d != sa[r - 1] || *n != sv[r - 2] {
        return None;
    }
    let dtype = g.node(*a).dtype;
    if g.node(*b).dtype != dtype || g.node(v).dtype != dtype || dtype == DType::F32 {
        return None;
    }
    // The result may be reshaped once more before it is used.
    let mut root = o;
    let users: Vec<usize> = (0..g.nodes.len())
        .filter(|m| g.nodes[*m].op.operands().contains(&o))
        .collect();
    if let [u] = users[..]
        && matches!(g.nodes[u].op, Op::Reshape(_))
        && single_use(o)
    {
        root = NodeId(u);
        covered.push(root);
    }
    covered.sort();
    covered.dedup();
    Some(Attention {
        root,
        covered,
        a: (a_src, sa.clone()),
        b: (b_src, b_view),
        b_transposed,
        v: (v_src, sv.clone()),
        out_shape: g.node(o).shape.clone(),
        scores: steps,
        dtype,
    })
}

/// Whether the head dims (`d` of `a`, `dv` of `v`) are compile-time sizes
/// the kernel supports: fixed by the declaration, multiples of 16, at most
/// 256.
pub fn head_dims_fixed(m: &Attention, w: &Workload) -> bool {
    let ok = |e: Option<&DimExpr>| {
        e.and_then(|e| w.fixed_value(e))
            .is_some_and(|c| c > 0 && c % 16 == 0 && c <= 256)
    };
    ok(m.a.1.last()) && ok(m.v.1.last())
}

/// Tile sizes and the split count of the kernels for a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashTiles {
    /// Query rows per block.
    pub rows: u32,
    pub keys: u32,
    pub splits: u32,
}

/// Rows per block: 16 when the rows never exceed 16 (decode), else 64.
/// Splits: enough blocks at the smallest declared point, at most one per
/// key tile at the largest.
pub fn flash_tiles(m: &Attention, w: &Workload) -> FlashTiles {
    let r = m.out_shape.len();
    let rows_dim = &m.out_shape[r - 2];
    let n_dim = &m.v.1[r - 2];
    let batch = &m.out_shape[..r - 2];
    let max_rows = super::lower::max_value(rows_dim, w);
    let rows: u32 = if max_rows <= 16 { 16 } else { 64 };
    let mut min_blocks = i64::MAX;
    let mut max_iters = 1;
    for p in &w.points_or_max() {
        let rows_at = rows_dim.eval(p).unwrap_or(1).max(1);
        let b: i64 = batch
            .iter()
            .map(|d| d.eval(p).unwrap_or(1).max(1))
            .product();
        min_blocks = min_blocks.min((rows_at + i64::from(rows) - 1) / i64::from(rows) * b);
        let n = n_dim.eval(p).unwrap_or(1).max(1);
        max_iters = max_iters.max((n + i64::from(KEY_TILE) - 1) / i64::from(KEY_TILE));
    }
    FlashTiles {
        rows,
        keys: KEY_TILE,
        splits: split_count(min_blocks, max_iters),
    }
}

/// Splits of a loop for a kernel of `min_blocks` blocks at its smallest
/// declared point and `max_iters` loop iterations at its largest: enough
/// for [`TARGET_BLOCKS`] blocks, a power of two, at most [`MAX_SPLITS`] and
/// at most one per iteration (rounded up to a power of two).
pub fn split_count(min_blocks: i64, max_iters: i64) -> u32 {
    let want = (TARGET_BLOCKS + min_blocks - 1) / min_blocks.max(1);
    let splits = (want.max(1) as u64)
        .next_power_of_two()
        .min(MAX_SPLITS as u64)
        .min((max_iters.max(1) as u64).next_power_of_two()) as u32;
    splits.max(1)
}

/// The tensors the kernels read and write.
pub struct FlashTensors {
    pub a: TensorId,
    pub b: TensorId,
    pub v: TensorId,
    /// Partial results: `[splits, ..batch, m, dv]`, `[splits, ..batch, m, 1]` twice.
    pub o_part: TensorId,
    pub m_part: TensorId,
    pub l_part: TensorId,
    pub out: TensorId,
}

/// Shapes of the partial tensors (f32).
pub fn partial_shapes(m: &Attention, t: FlashTiles) -> [Vec<DimExpr>; 2] {
    let r = m.out_shape.len();
    let s = DimExpr::constant(i64::from(t.splits));
    let o: Vec<DimExpr> = std::iter::once(s)
        .chain(m.out_shape.iter().cloned())
        .collect();
    let mut stat = o.clone();
    stat[r] = DimExpr::constant(1);
    [o, stat]
}

fn lead(view: &[DimExpr]) -> Vec<DimExpr> {
    std::iter::once(DimExpr::constant(1))
        .chain(view.iter().cloned())
        .collect()
}

/// The partial kernel and the combine kernel.
pub fn flash_kernels(
    g: &Graph,
    m: &Attention,
    t: FlashTiles,
    x: &FlashTensors,
) -> (BlockGraph, BlockGraph) {
    (partial_kernel(g, m, t, x), combine_kernel(m, t, x))
}

fn partial_kernel(g: &Graph, m: &Attention, t: FlashTiles, x: &FlashTensors) -> BlockGraph {
    let r = m.out_shape.len();
    let nb = r - 2;
    let batch: Vec<DimExpr> = m.out_shape[..nb].to_vec();
    let rows = m.out_shape[r - 2].clone();
    let n = m.v.1[r - 2].clone();
    // Views have a leading size-1 axis for the splits; grid x = splits,
    // y = row tiles, z = batch.
    let mut grid = vec![
        GridDim {
            extents: vec![DimExpr::constant(i64::from(t.splits))],
            tile: 1,
        },
        GridDim {
            extents: vec![rows],
            tile: t.rows,
        },
    ];
    let batch_axes: Vec<usize> = (1..=nb).collect();
    if nb > 0 {
        grid.push(GridDim {
            extents: batch,
            tile: 1,
        });
    }
    let imap = |rows_axis: Option<usize>| {
        let mut v = vec![Some(vec![0]), rows_axis.map(|a| vec![a])];
        if nb > 0 {
            v.push(Some(batch_axes.clone()));
        }
        v
    };
    let a_in = TileMap {
        tensor: x.a,
        view: lead(&m.a.1),
        imap: imap(Some(nb + 1)),
        fmap: None,
    };
    let b_in = TileMap {
        tensor: x.b,
        view: lead(&m.b.1),
        imap: imap(None),
        fmap: Some(if m.b_transposed { nb + 1 } else { nb + 2 }),
    };
    let v_in = TileMap {
        tensor: x.v,
        view: lead(&m.v.1),
        imap: imap(None),
        fmap: Some(nb + 1),
    };
    let mut ops = vec![BlockOp::Input(0), BlockOp::Input(1)];
    let v = ValueId;
    let mut kt = v(1);
    if m.b_transposed {
        let perm: Vec<usize> = (0..nb + 1).chain([nb + 2, nb + 1]).collect();
        ops.push(BlockOp::Permute(v(1), perm));
        kt = v(ops.len() - 1);
    }
    ops.push(BlockOp::Matmul(v(0), kt));
    let mut s = v(ops.len() - 1);
    for step in &m.scores {
        match step {
            ScoreStep::Unary(u) => ops.push(BlockOp::Unary(*u, s)),
            ScoreStep::Binary { op, constant, left } => {
                let Op::Const(c) = &g.node(*constant).op else {
                    continue;
                };
                ops.push(BlockOp::Const(c.clone()));
                let c = v(ops.len() - 1);
                ops.push(if *left {
                    BlockOp::Binary(*op, c, s)
                } else {
                    BlockOp::Binary(*op, s, c)
                });
            }
        }
        s = v(ops.len() - 1);
    }
    let last = r; // the key axis of the [1, ..batch, rows, keys] score tile
    let mut push = |op: BlockOp| {
        ops.push(op);
        v(ops.len() - 1)
    };
    let rowmax = push(BlockOp::Reduce {
        op: ReduceOp::Max,
        input: s,
        axis: last,
        count: None,
    });
    let mx = push(BlockOp::Accum {
        kind: AccumKind::Max,
        input: rowmax,
    });
    let run = push(BlockOp::Running(mx));
    let sh = push(BlockOp::Binary(BinaryOp::Sub, s, run));
    let p = push(BlockOp::Unary(UnaryOp::Exp, sh));
    let rowsum = push(BlockOp::Reduce {
        op: ReduceOp::Sum,
        input: p,
        axis: last,
        count: None,
    });
    let l = push(BlockOp::Accum {
        kind: AccumKind::RescaledSum { max: mx },
        input: rowsum,
    });
    let vt = push(BlockOp::Input(2));
    let pv = push(BlockOp::Matmul(p, vt));
    let o = push(BlockOp::Accum {
        kind: AccumKind::RescaledSum { max: mx },
        input: pv,
    });
    let [o_shape, stat_shape] = partial_shapes(m, t);
    let out = |tensor: TensorId, view: Vec<DimExpr>| TileMap {
        tensor,
        view,
        imap: imap(Some(nb + 1)),
        fmap: None,
    };
    let (warps_m, warps_n) = partial_warps(t.rows);
    BlockGraph {
        grid,
        forloop: Some(ForLoop {
            extent: n,
            tile: t.keys,
            split: Some(0),
        }),
        inputs: vec![a_in, b_in, v_in],
        ops,
        outputs: vec![
            BlockOutput {
                value: o,
                map: out(x.o_part, o_shape),
            },
            BlockOutput {
                value: mx,
                map: out(x.m_part, stat_shape.clone()),
            },
            BlockOutput {
                value: l,
                map: out(x.l_part, stat_shape),
            },
        ],
        params: LaunchParams {
            threads: 128,
            stages: 2,
            warps_m,
            warps_n,
            warps_k: 1,
            split_k: 1,
            fused_combine: false,
            wgmma: false,
            cluster_combine: false,
            tma: false,
        },
    }
}

/// The partial's four warps for `rows` query rows per block: a warp row of
/// 16 rows each (at most 4), the rest sharing each key tile.
pub fn partial_warps(rows: u32) -> (u32, u32) {
    let warps_m = (rows / 16).clamp(1, 4);
    (warps_m, 4 / warps_m)
}

fn combine_kernel(m: &Attention, t: FlashTiles, x: &FlashTensors) -> BlockGraph {
    let r = m.out_shape.len();
    // One block per batch index and tile of rows: grid x over [..batch, rows].
    let grid = vec![GridDim {
        extents: m.out_shape[..r - 1].to_vec(),
        tile: COMBINE_ROWS,
    }];
    let rows_axes: Vec<usize> = (1..r).collect();
    let [o_shape, stat_shape] = partial_shapes(m, t);
    let part = |tensor: TensorId, view: Vec<DimExpr>| TileMap {
        tensor,
        view,
        imap: vec![Some(rows_axes.clone())],
        fmap: Some(0),
    };
    let v = ValueId;
    let ops = combine_ops();
    BlockGraph {
        grid,
        forloop: Some(ForLoop::new(DimExpr::constant(i64::from(t.splits)), 1)),
        inputs: vec![
            part(x.m_part, stat_shape.clone()),
            part(x.o_part, o_shape),
            part(x.l_part, stat_shape),
        ],
        ops,
        outputs: vec![BlockOutput {
            value: v(14),
            map: TileMap {
                tensor: x.out,
                view: lead(&m.out_shape),
                imap: vec![Some(rows_axes)],
                fmap: None,
            },
        }],
        params: LaunchParams {
            threads: combine_threads(i64::from(t.splits)),
            ..LaunchParams::default()
        },
    }
}

/// The combine kernel's block operators: over the splits `j` (the loop),
/// `M = max m_j`, `O = sum o_j exp(m_j - M)`, `L = sum l_j exp(m_j - M)`
/// (rescaled as `M` grows), output `O / L`; inputs 0, 1, 2 are `m_j`,
/// `o_j`, `l_j`.
fn combine_ops() -> Vec<BlockOp> {
    let v = ValueId;
    vec![
        BlockOp::Input(0), // 0: m_j
        BlockOp::Reduce {
            op: ReduceOp::Max,
            input: v(0),
            axis: 0,
            count: None,
        }, // 1
        BlockOp::Accum {
            kind: AccumKind::Max,
            input: v(1),
        }, // 2: M
        BlockOp::Running(v(2)), // 3
        BlockOp::Binary(BinaryOp::Sub, v(1), v(3)), // 4
        BlockOp::Unary(UnaryOp::Exp, v(4)), // 5: exp(m_j - M_running)
        BlockOp::Input(1), // 6: o_j
        BlockOp::Reduce {
            op: ReduceOp::Sum,
            input: v(6),
            axis: 0,
            count: None,
        }, // 7
        BlockOp::Binary(BinaryOp::Mul, v(7), v(5)), // 8
        BlockOp::Accum {
            kind: AccumKind::RescaledSum { max: v(2) },
            input: v(8),
        }, // 9: O
        BlockOp::Input(2), // 10: l_j
        BlockOp::Reduce {
            op: ReduceOp::Sum,
            input: v(10),
            axis: 0,
            count: None,
        }, // 11
        BlockOp::Binary(BinaryOp::Mul, v(11), v(5)), // 12
        BlockOp::Accum {
            kind: AccumKind::RescaledSum { max: v(2) },
            input: v(12),
        }, // 13: L
        BlockOp::Binary(BinaryOp::Div, v(9), v(13)), // 14
    ]
}

/// Which input slots of a combine block hold `m_j`, `o_j` and `l_j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CombineSlots {
    pub m: usize,
    pub o: usize,
    pub l: usize,
}

/// Whether `b` computes the flash-decoding combine over its loop (the
/// splits, the loop axis 0 of its three inputs): one output
/// `O / L` (or `(1 / L) · O`) with `M = max m_j`, `O` and `L` the sums of
/// `o_j` and `l_j` weighed by `exp(m_j - M)` as rescaled sums over `M`,
/// whatever order the operators come in (the lowering's combine and the
/// search's equivalent ones). Returns the slots of `m_j`, `o_j`, `l_j`.
pub fn recognize_combine(b: &BlockGraph) -> Option<CombineSlots> {
    let ops = &b.ops;
    let op = |v: ValueId| ops.get(v.0);
    let [out] = &b.outputs[..] else {
        return None;
    };
    if b.inputs.len() != 3 || b.inputs.iter().any(|i| i.fmap != Some(0)) {
        return None;
    }
    let f = b.forloop.as_ref()?;
    if f.tile != 1 || f.split.is_some() {
        return None;
    }
    // The input slot an element of a split reads (a reduction over the
    // loop axis of a one-split tile is the element itself).
    let slot = |v: ValueId| match op(v)? {
        BlockOp::Input(i) => Some(*i),
        BlockOp::Reduce { input, axis: 0, .. } => match op(*input)? {
            BlockOp::Input(i) => Some(*i),
            _ => None,
        },
        _ => None,
    };
    let accums: Vec<(ValueId, AccumKind, ValueId)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            BlockOp::Accum { kind, input } => Some((ValueId(i), *kind, *input)),
            _ => None,
        })
        .collect();
    let [max] = accums
        .iter()
        .filter(|(_, k, _)| *k == AccumKind::Max)
        .collect::<Vec<_>>()[..]
    else {
        return None;
    };
    let (mx, _, mx_in) = *max;
    let m = slot(mx_in)?;
    // exp(m_j - running M)
    let is_weight = |v: ValueId| match op(v) {
        Some(BlockOp::Unary(UnaryOp::Exp, d)) => matches!(op(*d),
            Some(BlockOp::Binary(BinaryOp::Sub, x, r))
                if slot(*x) == Some(m) && matches!(op(*r), Some(BlockOp::Running(a)) if *a == mx)),
        _ => false,
    };
    // A rescaled sum over M of (x_j · weight): the slot of x.
    let weighted = |v: ValueId| match op(v)? {
        BlockOp::Binary(BinaryOp::Mul, a, c) if is_weight(*c) => slot(*a),
        BlockOp::Binary(BinaryOp::Mul, a, c) if is_weight(*a) => slot(*c),
        _ => None,
    };
    let sums: Vec<(ValueId, usize)> = accums
        .iter()
        .filter(|(_, k, _)| *k == AccumKind::RescaledSum { max: mx })
        .map(|(v, _, x)| Some((*v, weighted(*x)?)))
        .collect::<Option<_>>()?;
    if sums.len() != 2 || accums.len() != 3 {
        return None;
    }
    let is_one = |v: ValueId| matches!(op(v), Some(BlockOp::Const(crate::ir::ScalarExpr::Lit(l))) if l.0 == 1.0);
    // out = O / L, (1 / L) · O or O · (1 / L).
    let (num, den) = match op(out.value)? {
        BlockOp::Binary(BinaryOp::Div, n, d) => (*n, *d),
        BlockOp::Binary(BinaryOp::Mul, a, c) => match (op(*a)?, op(*c)?) {
            (BlockOp::Binary(BinaryOp::Div, one, d), _) if is_one(*one) => (*c, *d),
            (_, BlockOp::Binary(BinaryOp::Div, one, d)) if is_one(*one) => (*a, *d),
            _ => return None,
        },
        _ => return None,
    };
    let of = |v: ValueId| sums.iter().find(|(s, _)| *s == v).map(|(_, i)| *i);
    let (o, l) = (of(num)?, of(den)?);
    let mut all = [m, o, l];
    all.sort_unstable();
    (all == [0, 1, 2]).then_some(CombineSlots { m, o, l })
}
