//! Code generation: μGraphs with concrete parameters → one `.cu` per workload
//! ([`cuda`]) plus the launch plan ([`plan`]) the Rust wrappers are emitted
//! from.

pub mod cuda;
pub mod plan;
pub mod rust;

pub use plan::{
    ArchDispatch, DispatchEntry, GridError, GridFactor, Launch, SplitK, TensorMapPlan, Variant,
    WorkloadKernels,
};

use crate::ir::{Target, Workload};

/// Why a workload could not be turned into CUDA.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The workload uses something no code template covers yet.
    #[error("workload `{workload}`: {message}")]
    Unsupported {
        /// The workload's name in prism.toml.
        workload: String,
        /// What is not supported.
        message: String,
    },
}

/// The CUDA source and launch plan of one workload for `target`.
pub fn generate(workload: &Workload, target: &Target) -> Result<WorkloadKernels, CodegenError> {
    cuda::generate(workload, target)
}

/// [`generate`] with the search's choices cached in `cache`.
pub fn generate_cached(
    workload: &Workload,
    target: &Target,
    cache: Option<&crate::search::cache::Cache>,
) -> Result<WorkloadKernels, CodegenError> {
    cuda::generate_cached(workload, target, cache)
}
