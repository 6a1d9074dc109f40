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
}

/// Everything needed to build and launch one workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadKernels {
    pub workload: String,
    /// The workload's dims, in the order kernels take them.
    pub dims: Vec<String>,
    /// Global tensors: the workload's inputs and outputs (their roles give the
    /// argument order) and intermediates the launcher allocates.
    pub tensors: Vec<GlobalTensor>,
    pub launches: Vec<Launch>,
    /// The complete `.cu` file; it includes `prism/*.cuh` from the device
    /// library (`crate::device_library`).
    pub source: String,
}

impl Launch {
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
