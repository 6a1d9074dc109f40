//! What code generation hands to the build: the CUDA source of one workload
//! and how to launch each of its kernels. The Rust wrapper emitter and the
//! runtime launcher consume only this.

use serde::Serialize;

use crate::ir::{DimBindings, DimEvalError, DimExpr};
use crate::ugraph::{GlobalTensor, TensorId};

/// One factor of a grid extent: `ceil(extent / tile)` blocks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GridFactor {
    pub extent: DimExpr,
    pub tile: u32,
}

/// One kernel launch, in stream order.
///
/// The kernel's parameters are, in order: one device pointer per entry of
/// `tensors` (`const T*` for tensors it reads, `T*` for those it writes; the
/// element type is the tensor's dtype), then every dim of the workload as a
/// 64-bit signed integer, in the order of [`WorkloadKernels::dims`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Launch {
    /// The `extern "C"` symbol in the fatbin.
    pub symbol: String,
    /// Blocks along x, y, z: the product of each list's factors (an empty
    /// list is 1 block).
    pub grid: [Vec<GridFactor>; 3],
    pub threads: u32,
    /// Dynamic shared memory in bytes. Above 48 KiB the launcher must raise
    /// the function's `MAX_DYNAMIC_SHARED_SIZE_BYTES` attribute first.
    pub shared_bytes: u32,
    pub tensors: Vec<TensorId>,
    /// Split-K across blocks (`None`: none).
    pub split_k: Option<SplitK>,
    /// Tensor maps the kernel's TMA copies read (empty: none). The kernel
    /// takes them after the split-K pointers, each as a 128-byte
    /// `prism::TensorMap` by value. Their row strides are multiples of 16
    /// bytes (codegen checks); a launcher refuses a pointer that is not
    /// (TMA cannot address it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tensor_maps: Vec<TensorMapPlan>,
}

/// A 2-D tensor map of a launch's tensor: the tensor as a row-major
/// `[rows, cols]` matrix of its dtype, copied in boxes of `box_rows` ×
/// `box_cols` elements, zeros outside (`cuTensorMapEncodeTiled`), in the
/// swizzle as wide as a box row: `box_cols` × element size is 128 bytes
/// (a GEMM operand, the 128-byte swizzle) or 32 (a low-rank side operand,
/// the 32-byte swizzle). `cols` is a constant multiple of 16 bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorMapPlan {
    pub tensor: TensorId,
    pub rows: DimExpr,
    pub cols: DimExpr,
    pub box_rows: u32,
    pub box_cols: u32,
}

/// Split-K across blocks: the blocks along z that share each output tile's
/// K range (the z list of the launch's grid ends with this factor). The
/// kernel takes two more pointers after the tensors: `unsigned int*
/// counters`, one per output tile (the grid's blocks / `splits`), zero
/// before the launch and left zero by it (a launcher keeps them per
/// stream, as launches on one stream never overlap), and `float*
/// workspace` of `workspace` elements (any contents: every split writes
/// its part before the tile's last block reads them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SplitK {
    /// At least 2.
    pub splits: u32,
    pub workspace: DimExpr,
}

/// One concrete instance of a workload: a kernel graph with its
/// parameters set, as the kernels it launches. A workload holds one per
/// distinct tuned choice; the runtime picks one per launch
/// ([`WorkloadKernels::dispatch`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Variant {
    /// What it is, for humans and the lock (`sgraph#0 splits=16`).
    pub label: String,
    /// Global tensors: the workload's inputs and outputs (their roles give
    /// the argument order; the same in every variant) and intermediates
    /// the launcher allocates.
    pub tensors: Vec<GlobalTensor>,
    /// Kernels, in stream order. Their symbols are unique in the workload's
    /// `.cu`.
    pub launches: Vec<Launch>,
}

/// Which variant serves a box of dims: `ranges[i]` is the inclusive range
/// of dim `i` ([`WorkloadKernels::dims`] order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DispatchEntry {
    pub ranges: Vec<(i64, i64)>,
    pub variant: usize,
}

/// The dispatch table of one target architecture.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ArchDispatch {
    /// `sm_90a`, as in `[target] arch`.
    pub arch: String,
    /// Compute capability times ten (90).
    pub capability: u32,
    /// Disjoint boxes; dims in none of them (never, for declared values)
    /// use variant 0.
    pub entries: Vec<DispatchEntry>,
}

/// Everything needed to build and launch one workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadKernels {
    pub workload: String,
    /// The workload's dims, in the order kernels take them.
    pub dims: Vec<String>,
    /// At least one.
    pub variants: Vec<Variant>,
    /// Per target architecture, the variant of each shape bucket. The
    /// runtime takes the table of the newest architecture the device runs
    /// (the one whose SASS it loads); empty: variant 0 everywhere.
    pub dispatch: Vec<ArchDispatch>,
    /// The complete `.cu` file (every variant's kernels); it includes
    /// `prism/*.cuh` from the device library (`crate::device_library`).
    pub source: String,
}

impl WorkloadKernels {
    /// Kernels launched per call, at most (over the variants).
    pub fn max_launches(&self) -> usize {
        self.variants
            .iter()
            .map(|v| v.launches.len())
            .max()
            .unwrap_or(0)
    }
}

impl Launch {
    /// Split-K counters a launch over `grid` needs (one per output tile;
    /// 0 without split-K).
    pub fn counters(&self, grid: [u32; 3]) -> usize {
        let Some(s) = &self.split_k else {
            return 0;
        };
        let blocks = grid.iter().map(|&g| g as usize).product::<usize>();
        blocks / s.splits.max(1) as usize
    }

    /// The split-K workspace's f32 elements at `dims` (0 without split-K).
    pub fn workspace_at(&self, dims: &DimBindings) -> Result<usize, GridError> {
        match &self.split_k {
            None => Ok(0),
            Some(s) => Ok(usize::try_from(s.workspace.eval(dims)?.max(0)).unwrap_or(usize::MAX)),
        }
    }

    /// Blocks sharing each output tile's K range (1 without split-K).
    pub fn splits(&self) -> u32 {
        self.split_k.as_ref().map_or(1, |s| s.splits)
    }

    /// Concrete grid at `dims`, or an error when a dim is unbound, a count
    /// overflows, or a grid dimension exceeds CUDA's limits.
    pub fn grid_at(&self, dims: &DimBindings) -> Result<[u32; 3], GridError> {
        let mut out = [1u32; 3];
        for (axis, factors) in self.grid.iter().enumerate() {
            let mut blocks: u64 = 1;
            for f in factors {
                let e = f.extent.eval(dims)?;
                let tile = i64::from(f.tile.max(1));
                let n = if e <= 0 { 0 } else { (e + tile - 1) / tile };
                blocks = blocks.saturating_mul(n as u64);
            }
            let limit: u64 = if axis == 0 { (1 << 31) - 1 } else { 65535 };
            if blocks > limit {
                return Err(GridError::TooLarge {
                    axis: ["x", "y", "z"][axis],
                    blocks,
                    limit,
                });
            }
            out[axis] = blocks as u32;
        }
        Ok(out)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GridError {
    #[error(transparent)]
    Dim(#[from] DimEvalError),
    #[error("grid {axis} needs {blocks} blocks, more than CUDA allows ({limit})")]
    TooLarge {
        axis: &'static str,
        blocks: u64,
        limit: u64,
    },
}
