//! The search stage: μGraph candidates for a workload,
//! verified before they are used.
//!
//! - [`abstract_graph`]: a μGraph's unpartitioned meaning as a tensor
//!   program, for the algebraic proof.
//! - [`cache`]: the choices, cached under `<target>/prism/search/`.
//! - [`crosscheck`]: the numeric cross-check every candidate must pass.
//! - [`partition`]: the partition rules of the proof: each block computes
//!   the tiles its grid indices select.
//! - [`sgraph`]: the sGraph enumeration: single-kernel μGraphs generated
//!   from the program's saturated e-graph, instantiated and ranked.
//! - [`strategies`]: the candidates (the enumeration's best, lowering
//!   strategies), their verification, analytic cost and the choice.

pub mod abstract_graph;
pub mod cache;
pub mod crosscheck;
pub mod partition;
pub mod sgraph;
pub mod strategies;
