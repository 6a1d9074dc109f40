//! The search stage (being built): μGraph candidates for a workload,
//! verified before they are used.
//!
//! - [`crosscheck`]: the numeric cross-check every candidate must pass.
//! - [`strategies`]: today's candidates (lowering strategies), their
//!   analytic cost and the choice.

pub mod crosscheck;
pub mod strategies;
