//! The direct lowering: one graph-defined kernel per operator of a tensor
//! program. It is correct for every operator of the language and is the
//! fallback (and the baseline) for the search.
//!
//! - elementwise (`unary`, `binary`), `permute` and `reshape`: one grid dim
//!   over every output axis (row-major), the last axis cut into tiles;
//!   broadcast operands are views with size-1 axes; constants are inlined.
//! - `reduce`: one block per output element, a for-loop over the reduced axis
//!   with a partial reduction and an accumulator per iteration.
//! - `matmul`: grid over (n tiles, m tiles, batch), a for-loop over k, a tile
//!   matmul and a sum accumulator; broadcast batch axes are size-1 axes.
//!
//! With [`LowerOptions::fuse_rms_matmul`], `matmul(rms_norm(x), w)` becomes
//! one kernel ([`super::fused`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ir::{DType, DimExpr, Graph, NodeId, Op, ReduceOp, Workload};

use super::types::*;
use super::{flash, fused, fusion};

/// Elements per block along the last axis of elementwise kernels.
pub const ELEMENTWISE_TILE: u32 = 256;
/// Elements of the reduced axis per for-loop iteration.
pub const REDUCE_TILE: u32 = 1024;

#[derive(Clone, Debug)]
pub struct LowerOptions {
    /// Lower `matmul(rms_norm(x), w)` to the fused kernel.
    pub fuse_rms_matmul: bool,
    /// Grow fusion regions (elementwise chains, reduction prologues and
    /// epilogues, matmul epilogues; see [`super::fusion`]).
    pub fuse_regions: bool,
    /// Lower `softmax(f(a @ b)) @ v` to flash-decoding kernels (a split
    /// online-softmax kernel and a combine; see [`super::flash`]).
    pub flash_attention: bool,
}

impl Default for LowerOptions {
    /// Every fusion on.
    fn default() -> Self {
        LowerOptions {
            fuse_rms_matmul: true,
            fuse_regions: true,
            flash_attention: true,
        }
    }
}

impl LowerOptions {
    /// The direct lowering: one kernel per operator, no fusion.
    pub fn direct() -> Self {
        LowerOptions {
            fuse_rms_matmul: false,
            fuse_regions: false,
            flash_attention: false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LowerError {
    #[error("workload `{workload}` has no outputs")]
    NoOutputs { workload: String },
}

/// Tile sizes and warps of a tensor-core matmul kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulTiles {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub warps_m: u32,
    pub warps_n: u32,
    pub stages: u32,
    /// Warp groups splitting each K tile ([`LaunchParams::warps_k`]).
    pub warps_k: u32,
}

/// A heuristic choice until the tuner exists: small-m (decode) tiles when `m`
/// is at most 16 everywhere in the declared ranges. f32 tiles keep the
/// pipeline within 48 KiB of static shared memory.
pub fn matmul_tiles(max_m: i64, dtype: DType) -> MatmulTiles {
    if dtype == DType::F32 {
        let bm = if max_m <= 16 { 16 } else { 64 };
        return MatmulTiles {
            bm,
            bn: 64,
            bk: 32,
            warps_m: if bm == 16 { 1 } else { 2 },
            warps_n: if bm == 16 { 4 } else { 2 },
            stages: 2,
            warps_k: 1,
        };
    }
    if max_m <= 16 {
        MatmulTiles {
            bm: 16,
            bn: 64,
            bk: 64,
            warps_m: 1,
            warps_n: 4,
            stages: 3,
            warps_k: 1,
        }
    } else {
        MatmulTiles {
            bm: 64,
            bn: 64,
            bk: 32,
            warps_m: 2,
            warps_n: 2,
            stages: 3,
            warps_k: 1,
        }
    }
}

/// The largest value `expr` takes over the workload's declared dims (dims
/// are positive and the polynomials the front end builds are monotone).
pub fn max_value(expr: &DimExpr, workload: &Workload) -> i64 {
    expr.eval(&workload.max_point()).unwrap_or(i64::MAX)
}

pub fn lower(workload: &Workload, options: &LowerOptions) -> Result<KernelGraph, LowerError> {
    Lowering::new(workload, options).run()
}

struct Lowering<'a> {
    workload: &'a Workload,
    graph: &'a Graph,
    options: &'a LowerOptions,
    tensors: Vec<GlobalTensor>,
    kernels: Vec<Kernel>,
    /// The global tensor holding each materialized node.
    tensor_of: HashMap<NodeId, TensorId>,
    /// Fused rms_norm → matmul matches, by matmul node.
    fused: HashMap<NodeId, fused::RmsMatmul>,
    /// Flash attention matches, by root node.
    flash: BTreeMap<NodeId, flash::Attention>,
}

impl<'a> Lowering<'a> {
    fn new(workload: &'a Workload, options: &'a LowerOptions) -> Self {
        Lowering {
            workload,
            graph: &workload.graph,
            options,
            tensors: Vec::new(),
            kernels: Vec::new(),
            tensor_of: HashMap::new(),
            fused: HashMap::new(),
            flash: BTreeMap::new(),
        }
    }

    /// Nodes a node's kernel reads from global memory. Constants feeding
    /// elementwise operators are inlined and not read.
    fn kernel_inputs(&self, id: NodeId) -> Vec<NodeId> {
        let g = self.graph;
        let not_const = |n: &NodeId| !matches!(g.node(*n).op, Op::Const(_));
        match &g.node(id).op {
            Op::Input(_) | Op::Const(_) => vec![],
            Op::Unary(_, a) => vec![*a].into_iter().filter(not_const).collect(),
            Op::Binary(_, a, b) => vec![*a, *b].into_iter().filter(not_const).collect(),
            _ if self.flash.contains_key(&id) => {
                let m = &self.flash[&id];
                vec![m.a.0, m.b.0, m.v.0]
            }
            Op::Matmul(a, b) => match self.fused.get(&id) {
                Some(f) => vec![f.x, *b],
                None => vec![*a, *b],
            },
            Op::Reduce { input, .. } => vec![*input],
            Op::Permute(a, _) | Op::Reshape(a) => vec![*a],
        }
    }

    fn run(mut self) -> Result<KernelGraph, LowerError> {
        let g = self.graph;
        if g.outputs.is_empty() {
            return Err(LowerError::NoOutputs {
                workload: self.workload.name.clone(),
            });
        }
        let mut covered: BTreeSet<NodeId> = BTreeSet::new();
        if self.options.flash_attention {
            let mut uses = vec![0usize; g.nodes.len()];
            for n in &g.nodes {
                for o in n.op.operands() {
                    uses[o.0] += 1;
                }
            }
            let outputs: BTreeSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
            let single_use = |n: NodeId| uses[n.0] == 1 && !outputs.contains(&n);
            for i in 0..g.nodes.len() {
                if let Some(m) = flash::match_attention(g, NodeId(i), &single_use)
                    && flash::head_dims_fixed(&m, self.workload)
                    && m.covered.iter().all(|c| !covered.contains(c))
                {
                    covered.extend(m.covered.iter().copied());
                    self.flash.insert(m.root, m);
                }
            }
        }
        if self.options.fuse_rms_matmul {
            for (i, n) in g.nodes.iter().enumerate() {
                if covered.contains(&NodeId(i)) {
                    continue;
                }
                if let Op::Matmul(a, b) = &n.op
                    && let Some(m) = fused::match_rms_norm(g, *a, *b)
                {
                    self.fused.insert(NodeId(i), m);
                }
            }
        }
        // Liveness, backwards from the outputs (nodes are topologically ordered).
        let mut live = vec![false; g.nodes.len()];
        for o in &g.outputs {
            live[o.node.0] = true;
        }
        for i in (0..g.nodes.len()).rev() {
            if live[i] {
                for n in self.kernel_inputs(NodeId(i)) {
                    live[n.0] = true;
                }
            }
        }
        for (i, input) in g.inputs.iter().enumerate() {
            let t = self.add_tensor(
                &input.name,
                input.shape.clone(),
                input.dtype,
                TensorRole::Input(i),
            );
            if let Some(pos) = g.nodes.iter().position(|n| n.op == Op::Input(i)) {
                self.tensor_of.insert(NodeId(pos), t);
            }
        }
        // The first output naming a computed node takes its tensor; inputs and
        // repeated nodes get a copy kernel.
        let mut output_of: HashMap<NodeId, usize> = HashMap::new();
        for (j, o) in g.outputs.iter().enumerate() {
            let is_input = matches!(g.node(o.node).op, Op::Input(_));
            if !is_input && !output_of.contains_key(&o.node) {
                output_of.insert(o.node, j);
            }
        }
        // Fusion regions; a region's root (its last node) is the only one
        // materialized.
        let mut consumers: Vec<Vec<NodeId>> = vec![Vec::new(); g.nodes.len()];
        for (i, &is_live) in live.iter().enumerate() {
            if is_live {
                for n in self.kernel_inputs(NodeId(i)) {
                    consumers[n.0].push(NodeId(i));
                }
            }
        }
        let pinned: BTreeSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
        let region = if self.options.fuse_regions {
            let barriers: BTreeSet<NodeId> = self.flash.keys().copied().collect();
            fusion::form_regions(g, &live, &consumers, &pinned, &barriers, &self.fused)
        } else {
            (0..g.nodes.len()).map(Some).collect()
        };
        let mut members: BTreeMap<usize, BTreeSet<NodeId>> = BTreeMap::new();
        for (i, r) in region.iter().enumerate() {
            if let Some(r) = r
                && live[i]
            {
                members.entry(*r).or_default().insert(NodeId(i));
            }
        }
        for (i, &is_live) in live.iter().enumerate() {
            let id = NodeId(i);
            if !is_live || matches!(g.node(id).op, Op::Input(_)) {
                continue;
            }
            let group = region[i]
                .and_then(|r| members.get(&r))
                .cloned()
                .unwrap_or_default();
            if group.iter().next_back() != Some(&id) {
                continue; // an interior node of a fused region
            }
            let node = g.node(id);
            let (name, role) = match output_of.get(&id) {
                Some(j) => (g.outputs[*j].name.clone(), TensorRole::Output(*j)),
                None => (format!("t{i}"), TensorRole::Intermediate),
            };
            let t = self.add_tensor(&name, node.shape.clone(), node.dtype, role);
            self.tensor_of.insert(id, t);
            if let Some(m) = self.flash.get(&id).cloned() {
                self.flash_kernels(&m, &name, t);
                continue;
            }
            let kind = fusion::classify(g, &group, id, &self.fused);
            let body = match kind {
                Some(kind) => {
                    let workload = self.workload;
                    let tiles = move |m: NodeId| {
                        let n = workload.graph.node(m);
                        matmul_tiles(max_value(&n.shape[n.shape.len() - 2], workload), n.dtype)
                    };
                    let cx = fusion::SynthContext {
                        graph: g,
                        tensor_of: &self.tensor_of,
                        rms: &self.fused,
                        tiles: &tiles,
                    };
                    fusion::synthesize(&cx, &group, id, kind, t)
                }
                None => self.node_kernel(id, t),
            };
            let fused_tag = if kind.is_some() { "_fused" } else { "" };
            let kname = format!(
                "{}_k{}_{}{fused_tag}",
                self.workload.name,
                self.kernels.len(),
                op_name(&node.op)
            );
            self.kernels.push(Kernel {
                name: kname,
                body: KernelBody::Block(body),
            });
        }
        for (j, o) in g.outputs.iter().enumerate() {
            if output_of.get(&o.node) == Some(&j) {
                continue;
            }
            let node = g.node(o.node);
            let t = self.add_tensor(
                &o.name,
                node.shape.clone(),
                node.dtype,
                TensorRole::Output(j),
            );
            let src = self.tensor_of[&o.node];
            let body = copy_kernel(src, t, &node.shape);
            let kname = format!("{}_k{}_copy", self.workload.name, self.kernels.len());
            self.kernels.push(Kernel {
                name: kname,
                body: KernelBody::Block(body),
            });
        }
        Ok(KernelGraph {
            tensors: self.tensors,
            kernels: self.kernels,
        })
    }

    fn add_tensor(
        &mut self,
        name: &str,
        shape: Vec<DimExpr>,
        dtype: DType,
        role: TensorRole,
    ) -> TensorId {
        self.tensors.push(GlobalTensor {
            name: name.to_string(),
            shape,
            dtype,
            role,
        });
        TensorId(self.tensors.len() - 1)
    }

    /// The partial and combine kernels of a flash attention match writing `out`.
    fn flash_kernels(&mut self, m: &flash::Attention, name: &str, out: TensorId) {
        let tiles = flash::flash_tiles(m, self.workload);
        let [o_shape, stat_shape] = flash::partial_shapes(m, tiles);
        let f32 = DType::F32;
        let o_part = self.add_tensor(
            &format!("{name}_o_part"),
            o_shape,
            f32,
            TensorRole::Intermediate,
        );
        let m_part = self.add_tensor(
            &format!("{name}_m_part"),
            stat_shape.clone(),
            f32,
            TensorRole::Intermediate,
        );
        let l_part = self.add_tensor(
            &format!("{name}_l_part"),
            stat_shape,
            f32,
            TensorRole::Intermediate,
        );
        let x = flash::FlashTensors {
            a: self.tensor_of[&m.a.0],
            b: self.tensor_of[&m.b.0],
            v: self.tensor_of[&m.v.0],
            o_part,
            m_part,
            l_part,
            out,
        };
        let (partial, combine) = flash::flash_kernels(self.graph, m, tiles, &x);
        for (body, what) in [(partial, "flash"), (combine, "combine")] {
            let kname = format!("{}_k{}_{what}", self.workload.name, self.kernels.len());
            self.kernels.push(Kernel {
                name: kname,
                body: KernelBody::Block(body),
            });
        }
    }

    fn node_kernel(&self, id: NodeId, out: TensorId) -> BlockGraph {
        let g = self.graph;
        let node = g.node(id);
        match &node.op {
            Op::Input(_) | Op::Const(_) | Op::Unary(..) | Op::Binary(..) => {
                self.elementwise_kernel(id, out)
            }
            Op::Permute(a, perm) => {
                let input = TileMap {
                    tensor: self.tensor_of[a],
                    view: g.node(*a).shape.clone(),
                    imap: vec![Some(perm.clone())],
                    fmap: None,
                };
                let ops = vec![
                    BlockOp::Input(0),
                    BlockOp::Permute(ValueId(0), perm.clone()),
                ];
                elementwise_block(&node.shape, vec![input], ops, out)
            }
            Op::Reshape(a) => copy_kernel(self.tensor_of[a], out, &node.shape),
            Op::Reduce {
                op, input, axis, ..
            } => reduce_kernel(
                self.tensor_of[input],
                &g.node(*input).shape,
                *op,
                *axis,
                out,
            ),
            Op::Matmul(a, b) => {
                let tiles = matmul_tiles(
                    max_value(&node.shape[node.shape.len() - 2], self.workload),
                    node.dtype,
                );
                match self.fused.get(&id) {
                    Some(f) => fused::rms_matmul_kernel(
                        f,
                        self.tensor_of[&f.x],
                        &g.node(f.x).shape,
                        self.tensor_of[b],
                        &g.node(*b).shape,
                        out,
                        &node.shape,
                        tiles,
                    ),
                    None => matmul_kernel(
                        self.tensor_of[a],
                        &g.node(*a).shape,
                        self.tensor_of[b],
                        &g.node(*b).shape,
                        out,
                        &node.shape,
                        tiles,
                    ),
                }
            }
        }
    }

    /// A unary or binary operator (or a materialized constant, or a copy of an
    /// input) with constant operands inlined.
    fn elementwise_kernel(&self, id: NodeId, out: TensorId) -> BlockGraph {
        let g = self.graph;
        let node = g.node(id);
        let rank = node.shape.len();
        let mut inputs = Vec::new();
        let mut ops = Vec::new();
        let operand = |n: NodeId, inputs: &mut Vec<TileMap>, ops: &mut Vec<BlockOp>| -> ValueId {
            match &g.node(n).op {
                Op::Const(c) => ops.push(BlockOp::Const(c.clone())),
                _ => {
                    inputs.push(TileMap {
                        tensor: self.tensor_of[&n],
                        view: padded(&g.node(n).shape, rank),
                        imap: grid_all(rank),
                        fmap: None,
                    });
                    ops.push(BlockOp::Input(inputs.len() - 1));
                }
            }
            ValueId(ops.len() - 1)
        };
        match &node.op {
            Op::Input(_) => {
                operand(id, &mut inputs, &mut ops);
            }
            Op::Const(c) => ops.push(BlockOp::Const(c.clone())),
            Op::Unary(u, a) => {
                let a = operand(*a, &mut inputs, &mut ops);
                ops.push(BlockOp::Unary(*u, a));
            }
            Op::Binary(b, x, y) => {
                let x = operand(*x, &mut inputs, &mut ops);
                let y = operand(*y, &mut inputs, &mut ops);
                ops.push(BlockOp::Binary(*b, x, y));
            }
            _ => {}
        }
        elementwise_block(&node.shape, inputs, ops, out)
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Input(_) => "input",
        Op::Const(_) => "const",
        Op::Unary(u, _) => u.name(),
        Op::Binary(b, ..) => b.name(),
        Op::Matmul(..) => "matmul",
        Op::Reduce { op, .. } => op.name(),
        Op::Permute(..) => "permute",
        Op::Reshape(_) => "reshape",
    }
}

/// `shape` with leading 1s up to `rank` (a free view: same elements).
pub fn padded(shape: &[DimExpr], rank: usize) -> Vec<DimExpr> {
    let mut v = vec![DimExpr::constant(1); rank.saturating_sub(shape.len())];
    v.extend(shape.iter().cloned());
    v
}

/// One grid dim over every axis of a rank-`rank` view.
pub fn grid_all(rank: usize) -> Vec<Option<Vec<usize>>> {
    if rank == 0 {
        vec![]
    } else {
        vec![Some((0..rank).collect())]
    }
}

/// An elementwise block graph over output `shape`; the last op is the result.
pub fn elementwise_block(
    shape: &[DimExpr],
    inputs: Vec<TileMap>,
    ops: Vec<BlockOp>,
    out: TensorId,
) -> BlockGraph {
    let rank = shape.len();
    let grid = if rank == 0 {
        vec![]
    } else {
        vec![GridDim {
            extents: shape.to_vec(),
            tile: ELEMENTWISE_TILE,
        }]
    };
    let value = ValueId(ops.len() - 1);
    BlockGraph {
        grid,
        forloop: None,
        inputs,
        ops,
        outputs: vec![BlockOutput {
            value,
            map: TileMap {
                tensor: out,
                view: shape.to_vec(),
                imap: grid_all(rank),
                fmap: None,
            },
        }],
        params: LaunchParams {
            threads: ELEMENTWISE_TILE,
            ..LaunchParams::default()
        },
    }
}

/// `out = src` element for element, `src` viewed with `out`'s shape.
fn copy_kernel(src: TensorId, out: TensorId, shape: &[DimExpr]) -> BlockGraph {
    let input = TileMap {
        tensor: src,
        view: shape.to_vec(),
        imap: grid_all(shape.len()),
        fmap: None,
    };
    elementwise_block(shape, vec![input], vec![BlockOp::Input(0)], out)
}

/// The grid of a loop reduction over `axis` of `shape`, one block per
/// element of the other axes, and the imap of a tensor viewed with that
/// rank (no grid at all for a rank-1 reduction).
pub fn reduce_grid(shape: &[DimExpr], axis: usize) -> (Vec<GridDim>, Vec<Option<Vec<usize>>>) {
    let others: Vec<usize> = (0..shape.len()).filter(|a| *a != axis).collect();
    if others.is_empty() {
        return (vec![], vec![]);
    }
    let extents: Vec<DimExpr> = others.iter().map(|a| shape[*a].clone()).collect();
    (vec![GridDim { extents, tile: 1 }], vec![Some(others)])
}

/// The per-iteration reduction of `op` over `axis` of a tile of `shape`,
/// and the accumulator that completes it over the loop (a mean divides each
/// partial sum by the whole axis).
pub fn reduce_step(
    op: ReduceOp,
    input: ValueId,
    axis: usize,
    shape: &[DimExpr],
) -> (BlockOp, AccumKind) {
    let (partial, accum) = match op {
        ReduceOp::Sum => (ReduceOp::Sum, AccumKind::Sum),
        ReduceOp::Mean => (ReduceOp::Mean, AccumKind::Sum),
        ReduceOp::Max => (ReduceOp::Max, AccumKind::Max),
    };
    let count = (op == ReduceOp::Mean).then(|| shape[axis].clone());
    let reduce = BlockOp::Reduce {
        op: partial,
        input,
        axis,
        count,
    };
    (reduce, accum)
}

/// A loop reduction over `axis` of `shape`: one block per output element,
/// the for-loop over `axis`, `value` written to `out` viewed with the axis
/// kept as 1.
pub fn reduce_block(
    shape: &[DimExpr],
    axis: usize,
    inputs: Vec<TileMap>,
    ops: Vec<BlockOp>,
    value: ValueId,
    out: TensorId,
) -> BlockGraph {
    let (grid, imap) = reduce_grid(shape, axis);
    let mut out_view = shape.to_vec();
    out_view[axis] = DimExpr::constant(1);
    BlockGraph {
        grid,
        forloop: Some(ForLoop::new(shape[axis].clone(), REDUCE_TILE)),
        inputs,
        ops,
        outputs: vec![BlockOutput {
            value,
            map: TileMap {
                tensor: out,
                view: out_view,
                imap,
                fmap: None,
            },
        }],
        params: LaunchParams {
            threads: 256,
            ..LaunchParams::default()
        },
    }
}

fn reduce_kernel(
    src: TensorId,
    shape: &[DimExpr],
    op: ReduceOp,
    axis: usize,
    out: TensorId,
) -> BlockGraph {
    let input = TileMap {
        tensor: src,
        view: shape.to_vec(),
        imap: reduce_grid(shape, axis).1,
        fmap: Some(axis),
    };
    let (reduce, accum) = reduce_step(op, ValueId(0), axis, shape);
    let ops = vec![
        BlockOp::Input(0),
        reduce,
        BlockOp::Accum {
            kind: accum,
            input: ValueId(1),
        },
    ];
    reduce_block(shape, axis, vec![input], ops, ValueId(2), out)
}

/// The imap of a matmul's output (or of a tensor read tile by tile in its
/// epilogue), rank `r`: x → columns, y → rows, z → the batch axes.
pub fn matmul_out_imap(r: usize) -> Vec<Option<Vec<usize>>> {
    let mut imap = vec![Some(vec![r - 1]), Some(vec![r - 2])];
    if r > 2 {
        imap.push(Some((0..r - 2).collect()));
    }
    imap
}

/// The grid and maps of a batched matmul `out[.., m, n] = a[.., m, k] b[.., k, n]`
/// (x: n tiles, y: m tiles, z: batch axes), shared with the fused kernel.
pub struct MatmulMaps {
    pub grid: Vec<GridDim>,
    pub forloop: ForLoop,
    pub a: TileMap,
    pub b: TileMap,
    pub out: TileMap,
}

pub fn matmul_maps(
    a: (TensorId, &[DimExpr]),
    b: (TensorId, &[DimExpr]),
    out: (TensorId, &[DimExpr]),
    tiles: MatmulTiles,
) -> MatmulMaps {
    let shape = out.1;
    let r = shape.len();
    let (m, n) = (shape[r - 2].clone(), shape[r - 1].clone());
    let k = a.1[a.1.len() - 1].clone();
    let mut grid = vec![
        GridDim {
            extents: vec![n],
            tile: tiles.bn,
        },
        GridDim {
            extents: vec![m],
            tile: tiles.bm,
        },
    ];
    let batch: Vec<usize> = (0..r - 2).collect();
    if !batch.is_empty() {
        grid.push(GridDim {
            extents: shape[..r - 2].to_vec(),
            tile: 1,
        });
    }
    let with_batch = |mut v: Vec<Option<Vec<usize>>>| {
        if !batch.is_empty() {
            v.push(Some(batch.clone()));
        }
        v
    };
    MatmulMaps {
        grid,
        forloop: ForLoop::new(k, tiles.bk),
        a: TileMap {
            tensor: a.0,
            view: padded(a.1, r),
            imap: with_batch(vec![None, Some(vec![r - 2])]),
            fmap: Some(r - 1),
        },
        b: TileMap {
            tensor: b.0,
            view: padded(b.1, r),
            imap: with_batch(vec![Some(vec![r - 1]), None]),
            fmap: Some(r - 2),
        },
        out: TileMap {
            tensor: out.0,
            view: shape.to_vec(),
            imap: matmul_out_imap(r),
            fmap: None,
        },
    }
}

pub fn matmul_params(tiles: MatmulTiles) -> LaunchParams {
    LaunchParams {
        threads: tiles.warps_m * tiles.warps_n * tiles.warps_k * 32,
        stages: tiles.stages,
        warps_m: tiles.warps_m,
        warps_n: tiles.warps_n,
        warps_k: tiles.warps_k,
        split_k: 1,
        fused_combine: false,
        wgmma: false,
        cluster_combine: false,
        tma: false,
    }
}

pub fn matmul_kernel(
    a: TensorId,
    a_shape: &[DimExpr],
    b: TensorId,
    b_shape: &[DimExpr],
    out: TensorId,
    shape: &[DimExpr],
    tiles: MatmulTiles,
) -> BlockGraph {
    let maps = matmul_maps((a, a_shape), (b, b_shape), (out, shape), tiles);
    BlockGraph {
        grid: maps.grid,
        forloop: Some(maps.forloop),
        inputs: vec![maps.a, maps.b],
        ops: vec![
            BlockOp::Input(0),
            BlockOp::Input(1),
            BlockOp::Matmul(ValueId(0), ValueId(1)),
            BlockOp::Accum {
                kind: AccumKind::Sum,
                input: ValueId(2),
            },
        ],
        outputs: vec![BlockOutput {
            value: ValueId(3),
            map: maps.out,
        }],
        params: matmul_params(tiles),
    }
}
