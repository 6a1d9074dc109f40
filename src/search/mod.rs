//! The search stage (being built): μGraph candidates for a workload,
//! verified before they are used.
//!
//! - [`cache`]: the choices, cached under `<target>/prism/search/`.
//! - [`crosscheck`]: the numeric cross-check every candidate must pass.
//! - [`strategies`]: today's candidates (lowering strategies), their
//!   analytic cost and the choice.

pub mod cache;
pub mod crosscheck;
pub mod strategies;
