//! Code generation: μGraphs with concrete parameters → one `.cu` per workload
//! ([`cuda`]) plus the launch plan ([`plan`]) the Rust wrappers are emitted
//! from.

pub mod plan;

pub use plan::{GridError, GridFactor, Launch, WorkloadKernels};
