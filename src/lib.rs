//! prism: an ahead-of-time symbolic superoptimizer for GPU tensor programs,
//! used from a crate's `build.rs`.
//!
//! A crate declares its workloads (small tensor programs such as
//! RMSNorm→Linear, SwiGLU or attention) and their shape ranges in a
//! `prism.toml`. At build time prism searches a symbolic space of fused GPU
//! kernels for each workload, proves every candidate equivalent to the
//! declared program, picks one per shape bucket and architecture (measured on
//! the build machine's GPU, recorded in `prism.lock`, or ranked by a cost
//! model), and writes CUDA fatbins with a safe Rust module of launch wrappers
//! that the crate `include!`s. The generated module depends only on `cudarc`
//! and `half` at run time.
//!
//! # Using prism from a build script
//!
//! ```no_run
//! // build.rs, in `fn main`. Errors become `cargo::error=` lines and exit
//! // status 1, never a panic.
//! prism::Build::from_toml("prism.toml").run();
//! ```
//!
//! ```text
//! // src/lib.rs: declares `pub mod prism_kernels`
//! include!(concat!(env!("OUT_DIR"), "/prism_kernels.rs"));
//! ```
//!
//! [`Build`] has the options (architectures, module name, output directory,
//! the environment it reads); [`BuildError`] says why a build failed, each
//! message with a hint.
//!
//! # Reading a prism.toml
//!
//! The front end is usable on its own, on any machine (no GPU, no nvcc):
//! [`frontend::parse`] validates a prism.toml and returns the [`Spec`] every
//! later stage consumes, or a located [`Report`].
//!
//! ```
//! let toml = r#"
//! [workload.scale]
//! inputs = { x = "f16[n, d]", g = "f16[d]" }
//! program = "x * g"
//! dims = { n = "1..=64", d = [1024, 4096] }
//! "#;
//! let spec = prism::frontend::parse("prism.toml", toml).expect("a valid prism.toml");
//! let w = spec.workload("scale").expect("declared");
//!
//! // Dims, in first-use order, with their declared values.
//! let dims: Vec<String> = w.dims.iter().map(|d| format!("{} = {}", d.name, d.values)).collect();
//! assert_eq!(dims, ["n = 1..=64", "d = [1024, 4096]"]);
//!
//! // Inputs, in declaration order (the launch argument order), with their types.
//! let inputs: Vec<String> = w
//!     .graph
//!     .inputs
//!     .iter()
//!     .map(|i| format!("{}: {}", i.name, prism::ir::type_string(i.dtype, &i.shape)))
//!     .collect();
//! assert_eq!(inputs, ["x: f16[n, d]", "g: f16[d]"]);
//!
//! // One output, `out`, broadcast to the shape of `x`.
//! let out = w.graph.node(w.graph.outputs[0].node);
//! assert_eq!(w.graph.outputs[0].name, "out");
//! assert_eq!(prism::ir::type_string(out.dtype, &out.shape), "f16[n, d]");
//! ```
//!
//! # The pipeline
//!
//! ```text
//! prism.toml ──frontend──▶ ir::Spec ──search──▶ candidate μGraphs ──verify──▶ proven μGraphs
//!            ──tune──▶ one instance per shape bucket and arch ──codegen──▶ .cu + Rust wrappers
//!            ──nvcc──▶ fatbins ──build──▶ OUT_DIR/<module>.rs
//!
//! reference (the CPU interpreter) checks every stage's output numerically
//! ```
//!
//! ARCHITECTURE.md in the repository maps every module and file.
//!
//! # Supported API and internals
//!
//! The supported API, documented item by item and meant for other crates:
//!
//! - [`build`]: [`Build`] for build scripts, [`BuildOutput`], [`BuildError`]
//!   (and the errors it wraps, re-exported in [`build::error`]),
//!   [`build::cargo_error_lines`], the captured environment [`build::Env`],
//!   architecture overrides ([`build::arch`]).
//! - [`frontend`]: [`frontend::parse`], [`frontend::load`],
//!   [`frontend::embedded`] and the bundled [`frontend::EMBEDDED_PRISM_TOML`].
//! - [`ir`]: what the front end produces: [`Spec`], [`ir::Target`],
//!   [`ir::Arch`], [`Workload`], dims ([`ir::DimExpr`], [`ir::DimValues`]),
//!   dtypes, and the tensor-program [`ir::Graph`] with its operators.
//! - [`diagnostics`]: [`Span`], [`Diagnostic`] (stable codes, labels and
//!   hints) and [`Report`] (rendering, JSON locations).
//! - [`error`]: the library's [`Error`].
//!
//! Every other module (`bench`, `cli`, `codegen`, `device_library`, `nvcc`,
//! `reference`, `search`, `tune`, `ugraph`, `verify`, `build::toolchain`,
//! and the front end's syntax tree, lexer, parser and lowering steps) is
//! public only so that prism's own command-line tool, tests, benchmarks and
//! fuzzers can reach it. Those
//! modules are hidden from this documentation and carry no stability
//! promise: they change with the search, the code generator and the tuner.
//!
//! # Guide
//!
//! The repository's README.md is the user guide. Its sections: "Adding prism
//! to a crate" (the Cargo.toml, build.rs and `include!` above, and launching
//! the generated kernels), "prism.toml" and "The expression language" (the
//! file format), "Tuning and prism.lock" (`prism tune`, shape buckets, what a
//! build does without a GPU), "The command line" (`prism check`, `search`,
//! `explain`, `equiv`, `tune`, `bench`, `build`) and "Environment" (every
//! variable prism reads).

#![deny(missing_docs)]

mod atomic_write;
// Internal: `prism bench` (the CLI's GPU benchmark). No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bench;
pub mod build;
// Internal: the command-line tool's argument parsing and subcommands
// (`src/main.rs`, tests/cli.rs). No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod cli;
// Internal: CUDA and Rust code generation from μGraphs; `Build` drives it.
// Public for tests and tools (`Build::codegen_with`). No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod codegen;
// Internal: the embedded `cuda/` device-library headers. No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod device_library;
pub mod diagnostics;
pub mod error;
pub mod frontend;
pub mod ir;
// Internal: nvcc discovery and invocation; `Build` drives it. Its error type
// is part of the supported API as `build::error::NvccError`.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod nvcc;
// Internal: the CPU reference interpreter (tests, tuner, `prism bench`). Its
// error type is part of the supported API as `error::EvalError`.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod reference;
// Internal: the build report (report.html) behind `prism report` and
// `BuildOutput::report`; the page is the interface, not these types.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod report;
// Internal: the sGraph search and its cache. No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod search;
// Internal: shape buckets, cost model, tuner and prism.lock. Public for the
// CLI and tests; the types a build reports (`Choice`, `LockError`, ...) are
// re-exported, documented, from `build`.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod tune;
// Internal: the μGraph IR, its interpreter and lowerings. No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod ugraph;
// Internal: the e-graph equivalence prover. No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod verify;

pub use build::{Build, BuildError, BuildOutput};
pub use diagnostics::{Diagnostic, Report, Span};
pub use error::Error;
pub use ir::{Spec, Workload};
