//! The μGraph data types: a kernel graph of block graphs.
//!
//! A [`KernelGraph`] is a sequence of kernels over global tensors (the
//! workload's inputs and outputs plus intermediates). A graph-defined kernel
//! is a [`BlockGraph`]: a grid of up to three [`GridDim`]s, an optional
//! [`ForLoop`], per input an imap (grid dim → data axes, or replicated) and an
//! fmap (for-loop → data axis, or none), per output an omap, and block
//! operators on tiles. Tiles are clipped at tensor edges: a tile's extent is
//! `min(tile, extent - start)`, so dims that do not divide a tile are part of
//! the semantics, and generated code must predicate them.

use serde::Serialize;

use crate::ir::{BinaryOp, DType, DimExpr, ReduceOp, ScalarExpr, UnaryOp};

/// Index into [`KernelGraph::tensors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TensorId(pub usize);

/// What a global tensor is to the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TensorRole {
    /// The workload input with this index (argument order).
    Input(usize),
    /// The workload output with this index.
    Output(usize),
    /// Written by one kernel and read by later ones; allocated by the launcher.
    Intermediate,
}

/// A tensor in global memory, row-major and contiguous.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GlobalTensor {
    pub name: String,
    pub shape: Vec<DimExpr>,
    pub dtype: DType,
    pub role: TensorRole,
}

impl GlobalTensor {
    /// Elements at `dims` (a dim without a value counts as 0).
    pub fn elements_at(&self, dims: &crate::ir::DimBindings) -> u64 {
        self.shape
            .iter()
            .map(|d| d.eval(dims).unwrap_or(0).max(0) as u64)
            .fold(1u64, u64::saturating_mul)
    }
}

/// A whole workload as kernels, run in order on one stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelGraph {
    pub tensors: Vec<GlobalTensor>,
    pub kernels: Vec<Kernel>,
}

impl KernelGraph {
    pub fn tensor(&self, id: TensorId) -> &GlobalTensor {
        &self.tensors[id.0]
    }

    /// The bytes of the distinct global tensors `kernel` reads or writes at
    /// `dims` (each once: its DRAM traffic floor). A dim without a value
    /// counts as 0.
    pub fn kernel_bytes(&self, kernel: &Kernel, dims: &crate::ir::DimBindings) -> u64 {
        let mut tensors: Vec<usize> = match &kernel.body {
            KernelBody::Block(b) => b
                .inputs
                .iter()
                .map(|m| m.tensor.0)
                .chain(b.outputs.iter().map(|o| o.map.tensor.0))
                .collect(),
            KernelBody::Predefined(Predefined::SplitCombine { partials, output }) => {
                vec![partials.0, output.0]
            }
        };
        tensors.sort_unstable();
        tensors.dedup();
        tensors
            .iter()
            .map(|&t| {
                let t = &self.tensors[t];
                t.elements_at(dims).saturating_mul(t.dtype.size() as u64)
            })
            .fold(0u64, u64::saturating_add)
    }
}

/// A workload's inputs (in argument order), then its outputs, as global
/// tensors: the tensors of a kernel graph with no intermediates.
pub fn workload_tensors(w: &crate::ir::Workload) -> Vec<GlobalTensor> {
    let inputs = w
        .graph
        .inputs
        .iter()
        .enumerate()
        .map(|(i, x)| GlobalTensor {
            name: x.name.clone(),
            shape: x.shape.clone(),
            dtype: x.dtype,
            role: TensorRole::Input(i),
        });
    let outputs = w.graph.outputs.iter().enumerate().map(|(j, o)| {
        let n = w.graph.node(o.node);
        GlobalTensor {
            name: o.name.clone(),
            shape: n.shape.clone(),
            dtype: n.dtype,
            role: TensorRole::Output(j),
        }
    });
    inputs.chain(outputs).collect()
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Kernel {
    /// A C identifier, unique in its kernel graph.
    pub name: String,
    pub body: KernelBody,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum KernelBody {
    /// A graph-defined kernel.
    Block(BlockGraph),
    /// A pre-defined kernel.
    Predefined(Predefined),
}

/// Kernels with a fixed, hand-written meaning.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Predefined {
    /// `output = sum over axis 0 of partials`: the combine step of a split-K
    /// (or split-KV) kernel that wrote one partial result per split.
    /// `partials` has shape `[splits, ..output shape]`.
    SplitCombine {
        partials: TensorId,
        output: TensorId,
    },
}

/// A grid dimension: `extents` flattened row-major (usually one extent); the
/// last extent is cut into tiles of `tile`, the others are walked one index
/// per block. Number of blocks: `prod(extents[..k-1]) * ceil(extents[k-1] / tile)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GridDim {
    pub extents: Vec<DimExpr>,
    pub tile: u32,
}

/// The block's for-loop: iteration `i` covers `[i*tile, min((i+1)*tile, extent))`.
///
/// With `split = Some(g)` the iterations are shared out among the blocks of
/// grid dim `g` (split-K, split-KV): that grid dim has one constant extent
/// `S` and tile 1, and its block `j` runs iterations
/// `[j*per, min((j+1)*per, iters))` with `iters = ceil(extent / tile)` and
/// `per = ceil(iters / S)`. A block whose range is empty leaves its
/// accumulators at their identities (0 for sums, -inf for maxima). Inputs
/// are not partitioned by grid dim `g`; outputs are (one partial result per
/// split), and a later kernel combines them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ForLoop {
    pub extent: DimExpr,
    pub tile: u32,
    pub split: Option<usize>,
}

impl ForLoop {
    /// Iterations at `p`: `ceil(extent / tile)`, an extent below 1 counted
    /// as 1; an error when a dim of the extent has no value.
    pub fn iterations(&self, p: &crate::ir::DimBindings) -> Result<u64, crate::ir::DimEvalError> {
        let n = self.extent.eval(p)?.max(1) as u64;
        Ok(n.div_ceil(u64::from(self.tile.max(1))))
    }

    /// An unsplit loop.
    pub fn new(extent: DimExpr, tile: u32) -> Self {
        ForLoop {
            extent,
            tile,
            split: None,
        }
    }
}

/// Iterations `[begin, end)` of a loop of `iters` iterations that block
/// `j` of `splits` runs (the whole loop when `splits` is 1).
pub fn split_range(iters: u64, splits: u64, j: u64) -> (u64, u64) {
    let per = iters.div_ceil(splits.max(1));
    let begin = j.saturating_mul(per).min(iters);
    (begin, begin.saturating_add(per).min(iters))
}

/// How a global tensor is cut into the tiles a block sees.
///
/// `view` reinterprets the tensor's row-major elements with another shape of
/// the same element count (a free reshape). `imap[g]` gives, for grid dim `g`,
/// one axis of the view per extent of that grid dim, or `None` for a
/// replicated tensor. An axis of size 1 mapped to a larger extent is
/// broadcast (every block sees index 0).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TileMap {
    pub tensor: TensorId,
    pub view: Vec<DimExpr>,
    pub imap: Vec<Option<Vec<usize>>>,
    /// The view axis the for-loop walks (inputs only).
    pub fmap: Option<usize>,
}

/// Index into [`BlockGraph::ops`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ValueId(pub usize);

/// How a for-loop accumulator combines iterations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AccumKind {
    Sum,
    Max,
    /// `acc = acc * exp(m_prev - m_cur) + x`, where `m` is the running value
    /// of the `Max` accumulator `max`: the online-softmax numerator and
    /// denominator. With exact arithmetic the result is
    /// `sum_i x_i * exp(m_i - m_final)`.
    RescaledSum {
        max: ValueId,
    },
}

/// A block operator. Operands precede their users in [`BlockGraph::ops`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum BlockOp {
    /// The current tile of block input `i`.
    Input(usize),
    /// A rank-0 constant (dims are known at run time).
    Const(ScalarExpr),
    Unary(UnaryOp, ValueId),
    /// Elementwise, numpy broadcasting.
    Binary(BinaryOp, ValueId, ValueId),
    /// Tile axis `i` of the result is axis `perm[i]` of the operand.
    Permute(ValueId, Vec<usize>),
    /// Tile matmul over the last two axes, leading axes broadcast.
    Matmul(ValueId, ValueId),
    /// Reduction over one axis of a tile. `Mean` divides by `count` (the
    /// whole data extent, not the tile's), so a partitioned mean composes.
    Reduce {
        op: ReduceOp,
        input: ValueId,
        axis: usize,
        count: Option<DimExpr>,
    },
    /// A for-loop accumulator; its value is the total after the loop, so it
    /// and every op that reads it run after the loop.
    Accum {
        kind: AccumKind,
        input: ValueId,
    },
    /// Inside the loop: the running value of accumulator `.0` including this
    /// iteration (online softmax reads its running max this way).
    Running(ValueId),
}

impl BlockOp {
    pub fn operands(&self) -> Vec<ValueId> {
        match self {
            BlockOp::Input(_) | BlockOp::Const(_) => vec![],
            BlockOp::Unary(_, a) | BlockOp::Running(a) | BlockOp::Permute(a, _) => vec![*a],
            BlockOp::Binary(_, a, b) | BlockOp::Matmul(a, b) => vec![*a, *b],
            BlockOp::Reduce { input, .. } => vec![*input],
            BlockOp::Accum { kind, input } => match kind {
                AccumKind::RescaledSum { max } => vec![*input, *max],
                _ => vec![*input],
            },
        }
    }
}

/// A block output: value `value` (computed after the loop) written to the
/// tile of `map.tensor` this block owns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockOutput {
    pub value: ValueId,
    pub map: TileMap,
}

/// Parameters the tuner sets; the structure above does not depend on them
/// except through `GridDim::tile` and `ForLoop::tile`.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct LaunchParams {
    pub threads: u32,
    /// cp.async pipeline depth (1 = no pipelining).
    pub stages: u32,
    /// Warps along the tile's rows and columns in tensor-core kernels.
    pub warps_m: u32,
    pub warps_n: u32,
    /// Warp groups that share each K tile of a tensor-core matmul (each
    /// sums the whole output tile over its k16 steps; the groups' sums are
    /// added in shared memory at the end): an in-block split-K.
    pub warps_k: u32,
    /// Blocks that share each output tile's K range in a tensor-core
    /// matmul (split-K across blocks, an extra grid factor along z): each
    /// stores its partial sums to a workspace, and the tile's last block
    /// to arrive adds them in split order (deterministic) and runs the
    /// epilogue. 1: none.
    pub split_k: u32,
    /// A flash-decoding partial (a loop split over grid x) whose combine,
    /// the next kernel, runs in this kernel's last block per row tile
    /// instead of a launch of its own (see
    /// `codegen::cuda::attention::fusable_combine`). It changes how the
    /// kernels run, not what they compute.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fused_combine: bool,
    /// A tensor-core matmul whose main loop runs on Hopper's warpgroup
    /// MMA (`prism::WgmmaGemm`: wgmma.mma_async from 128-byte-swizzled
    /// shared memory, one warpgroup per 64 rows) instead of mma.sync
    /// (`prism::TileGemm`). sm_90a only: the tuner offers it on hardware
    /// with `warpgroup_mma`. It changes how the kernel runs, not what it
    /// computes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wgmma: bool,
    /// With `fused_combine`: the splits of a row tile run as one thread
    /// block cluster (grid x, at most 16 blocks) and combine through
    /// distributed shared memory (`prism::FlashClusterCombine`) instead of
    /// the last block reading the others' results back through L2. With
    /// `split_k` (2 to 16) on a tensor-core matmul: a tile's splits are one
    /// cluster (grid z) and its first block adds their sums through
    /// distributed shared memory (`GemmAccumulators::add_cluster_sums`),
    /// no workspace or counters. sm_90+ only (clusters). It changes how
    /// the kernels run, not what they compute.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cluster_combine: bool,
    /// With `wgmma`: the main loop's copies come from the Tensor Memory
    /// Accelerator (`WgmmaGemm::mainloop_tma`: one more warp issues 2-D
    /// tensor copies into the stages, the warpgroups only wait and issue
    /// wgmma), through tensor maps the launcher encodes
    /// ([`crate::codegen::TensorMapPlan`]). sm_90a only. It changes how
    /// the kernel runs, not what it computes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tma: bool,
}

/// As derived, but `fused_combine`, `wgmma`, `cluster_combine` and `tma` only when set: graph
/// fingerprints (the `Debug` text) of graphs without them stay what they
/// were before they existed, and so do the prism.lock entries that name
/// them.
impl std::fmt::Debug for LaunchParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("LaunchParams");
        d.field("threads", &self.threads)
            .field("stages", &self.stages)
            .field("warps_m", &self.warps_m)
            .field("warps_n", &self.warps_n)
            .field("warps_k", &self.warps_k)
            .field("split_k", &self.split_k);
        if self.fused_combine {
            d.field("fused_combine", &self.fused_combine);
        }
        if self.wgmma {
            d.field("wgmma", &self.wgmma);
        }
        if self.cluster_combine {
            d.field("cluster_combine", &self.cluster_combine);
        }
        if self.tma {
            d.field("tma", &self.tma);
        }
        d.finish()
    }
}

impl Default for LaunchParams {
    fn default() -> Self {
        LaunchParams {
            threads: 256,
            stages: 1,
            warps_m: 1,
            warps_n: 1,
            warps_k: 1,
            split_k: 1,
            fused_combine: false,
            wgmma: false,
            cluster_combine: false,
            tma: false,
        }
    }
}

/// A graph-defined kernel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockGraph {
    pub grid: Vec<GridDim>,
    pub forloop: Option<ForLoop>,
    pub inputs: Vec<TileMap>,
    pub ops: Vec<BlockOp>,
    pub outputs: Vec<BlockOutput>,
    pub params: LaunchParams,
}

impl BlockGraph {
    /// The blocks its grid launches at `dims` (a dim without a value
    /// counts as 1), times the split-K factor of its launch parameters.
    pub fn blocks(&self, dims: &crate::ir::DimBindings) -> u64 {
        self.grid
            .iter()
            .fold(1u64, |acc, d| {
                let n = d.extents.len();
                let per: u64 = d
                    .extents
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        let x = e.eval(dims).unwrap_or(1).max(1) as u64;
                        if i + 1 == n {
                            x.div_ceil(u64::from(d.tile.max(1)))
                        } else {
                            x
                        }
                    })
                    .fold(1u64, u64::saturating_mul);
                acc.saturating_mul(per)
            })
            .saturating_mul(u64::from(self.params.split_k.max(1)))
    }
}
