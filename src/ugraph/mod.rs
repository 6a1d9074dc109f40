//! The μGraph IR: kernels made of block graphs, the representation the search
//! produces and code generation consumes (Mirage's kernel/block hierarchy).
//!
//! - [`types`]: the data types.
//! - [`validate`]: structural checks and symbolic tile shapes.
//! - [`interp`]: a CPU interpreter with the same semantics (f64), to check any
//!   μGraph against the reference interpreter.
//! - [`lower`]: the direct lowering of a tensor program, one kernel per
//!   operator; the fallback and the baseline the search is compared against.
//! - [`display`]: the readable form `prism explain` prints.
//! - [`fusion`]: fusion regions (elementwise, reduction, matmul epilogue)
//!   and their block graphs.
//! - [`fused`]: hand-built fused μGraphs (rms_norm → matmul) until the search
//!   finds them.

pub mod display;
pub mod flash;
pub mod fused;
pub mod fusion;
pub mod interp;
pub mod lower;
pub mod online;
pub mod types;
pub mod validate;

pub use types::*;
