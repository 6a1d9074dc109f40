//! prism: an ahead-of-time symbolic superoptimizer for GPU tensor programs.
//!
//! The pipeline runs front to back, one module per stage:
//! [`frontend`] (prism.toml, expression language) → [`ir`] (tensor-program
//! graphs) → [`reference`] (the CPU oracle every later stage is checked
//! against). See ARCHITECTURE.md for the map.

pub mod bench;
pub mod build;
pub mod cli;
pub mod codegen;
pub mod device_library;
pub mod diagnostics;
pub mod error;
pub mod frontend;
pub mod ir;
pub mod nvcc;
pub mod reference;
pub mod report;
pub mod search;
pub mod tune;
pub mod ugraph;
pub mod verify;

pub use build::{Build, BuildError, BuildOutput};
pub use diagnostics::{Diagnostic, Report, Span};
pub use error::Error;
pub use ir::{Spec, Workload};
