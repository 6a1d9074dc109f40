//! Code generation: μGraphs with concrete parameters → one `.cu` per workload
//! ([`cuda`]) plus the launch plan ([`plan`]) the Rust wrappers are emitted
//! from.

pub mod cuda;
pub mod plan;
pub mod rust;

pub use plan::{GridError, GridFactor, Launch, WorkloadKernels};
