//! The search stage (being built): μGraph candidates for a workload,
//! verified before they are used.
//!
//! - [`crosscheck`]: the numeric cross-check every candidate must pass.

pub mod crosscheck;
