//! Why a build failed. Every message says what to do.
//!
//! [`BuildError`] is what [`Build::try_run`](super::Build::try_run) returns;
//! [`cargo_error_lines`](super::cargo_error_lines) turns it into the
//! `cargo::error=` lines [`Build::run`](super::Build::run) prints. The errors
//! of the stages it wraps are re-exported here: [`NvccError`],
//! [`CodegenError`], [`EmitError`], [`LockError`] (with [`ChecksumProblem`]),
//! [`ResolveError`] and [`TuneError`] (with [`InstanceError`] and
//! [`GpuError`]). Match on the variants to tell failures apart; their
//! messages (`Display`) are what to show a user.

use std::path::PathBuf;

pub use crate::codegen::CodegenError;
pub use crate::codegen::rust::EmitError;
pub use crate::nvcc::NvccError;
pub use crate::tune::gpu::GpuError;
pub use crate::tune::instances::InstanceError;
pub use crate::tune::lock::{ChecksumProblem, LockError};
pub use crate::tune::resolve::ResolveError;
pub use crate::tune::tuner::TuneError;

/// A workload whose `.cu` nvcc could not compile (in
/// [`BuildError::Compile`]).
#[derive(Debug)]
pub struct CompileFailure {
    /// The workload's name in prism.toml.
    pub workload: String,
    /// The generated CUDA source, kept for inspection.
    pub cu_path: PathBuf,
    /// What nvcc said ([`NvccError::Failed`] carries its stderr).
    pub error: NvccError,
}

/// Why [`Build::try_run`](super::Build::try_run) failed.
///
/// Every message (`Display`) names what went wrong and ends with a `hint:`
/// saying what to do; [`cargo_error_lines`](super::cargo_error_lines) turns
/// it into `cargo::error=` lines.
///
/// ```
/// use prism::build::{Build, BuildError, cargo_error_lines};
///
/// let out = std::env::temp_dir().join("prism-doc-build-error");
/// let err = Build::from_toml("no/such/prism.toml")
///     .out_dir(&out)
///     .emit_directives(false)
///     .try_run()
///     .expect_err("there is no prism.toml there");
/// assert!(matches!(err, BuildError::Read { .. }));
///
/// let lines = cargo_error_lines(&err);
/// assert!(lines[0].starts_with("cargo::error=prism[toml-unreadable]: cannot read no/such/prism.toml"));
/// assert_eq!(err.code(), "toml-unreadable");
/// assert!(lines.iter().all(|l| l.starts_with("cargo::error=")));
/// assert!(lines.iter().any(|l| l.contains("hint: the path is relative to the crate root")));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Neither `OUT_DIR` nor [`Build::out_dir`](super::Build::out_dir) says
    /// where to write.
    #[error(
        "OUT_DIR is not set\nhint: prism::Build runs from a build script (build.rs), where cargo sets OUT_DIR; elsewhere call .out_dir(..)"
    )]
    NoOutDir,
    /// The prism.toml cannot be read.
    #[error(
        "cannot read {}: {source}\nhint: the path is relative to the crate root (where Cargo.toml is); create the file, or pass its path to prism::Build::from_toml",
        path.display()
    )]
    Read {
        /// The path given to [`Build::from_toml`](super::Build::from_toml).
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The prism.toml has errors; `rendered` is the located report, without
    /// colors.
    #[error("{rendered}hint: fix the errors above in {path}")]
    Invalid {
        /// The prism.toml, as named in the report.
        path: String,
        /// Every diagnostic, rendered by [`Report::render`](crate::Report::render).
        rendered: String,
    },
    /// An architecture override ([`Build::arch`](super::Build::arch) or
    /// `CUDA_COMPUTE_CAP`) does not parse ([`super::arch::parse_list`]).
    #[error(
        "{origin} = {value:?}: {message}\nhint: set {origin} to a compute capability such as 90 (H100) or 80 (A100), or to an architecture such as sm_90a; unset it to use `[target] arch` from prism.toml"
    )]
    Arch {
        /// `Build::arch` or `CUDA_COMPUTE_CAP`.
        origin: &'static str,
        /// The text given.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// An environment variable the build reads has an invalid value (e.g.
    /// `NUM_JOBS=0`).
    #[error("{var} = {value:?} is not valid: {message}\nhint: fix or unset {var}")]
    Env {
        /// The variable's name.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// prism could not generate kernels for these workloads (one error each).
    #[error("{}", codegen_message(.0))]
    Codegen(Vec<CodegenError>),
    /// The Rust module could not be emitted: a bad module name, workloads
    /// whose Rust type names collide, no target architecture.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// nvcc could not be found, or `nvcc --version` could not be run.
    #[error(transparent)]
    Nvcc(#[from] NvccError),
    /// nvcc failed on the generated kernels of these workloads.
    #[error("{}", compile_message(.0))]
    Compile(Vec<CompileFailure>),
    /// A file or directory under the output directory cannot be written.
    #[error("cannot write {}: {source}\nhint: check that the output directory is writable", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },
    /// The compiler thread pool could not be started.
    #[error(
        "cannot start {threads} compiler threads: {message}\nhint: set NUM_JOBS to a smaller number (cargo's -j sets it)"
    )]
    ThreadPool {
        /// Threads asked for (`NUM_JOBS`, else the available parallelism).
        threads: usize,
        /// The thread pool's error.
        message: String,
    },
    /// prism.lock could not be read or is corrupt.
    #[error(transparent)]
    Lock(#[from] crate::tune::lock::LockError),
    /// No kernel could be chosen for these workloads: offline
    /// (`PRISM_OFFLINE=1`) with missing or stale prism.lock entries, or no
    /// verified instance.
    #[error("{}", resolve_message(.0))]
    Resolve(Vec<crate::tune::resolve::ResolveError>),
    /// Tuning on this machine's GPU failed.
    #[error(
        "tuning on this machine's GPU failed: {0}\nhint: set PRISM_OFFLINE=1 to build from prism.lock (or the cost model) without the GPU"
    )]
    Tune(#[from] crate::tune::tuner::TuneError),
}

impl BuildError {
    /// Every code [`BuildError::code`] returns, for documentation and tests.
    pub const CODES: &'static [&'static str] = &[
        "no-out-dir",
        "toml-unreadable",
        "invalid-toml",
        "bad-arch-override",
        "bad-env",
        "codegen-failed",
        "emit-failed",
        "nvcc-not-found",
        "nvcc-bad-env",
        "nvcc-not-runnable",
        "nvcc-failed",
        "io",
        "thread-pool",
        "lock-unreadable",
        "lock-invalid",
        "lock-checksum",
        "lock-version",
        "lock-duplicate",
        "lock-write",
        "lock-stale",
        "no-instance",
        "tune-failed",
    ];

    /// A stable, kebab-case name of what went wrong, e.g. `nvcc-not-found`;
    /// the build prints it first (`prism[nvcc-not-found]: ...`) and the
    /// README's error list explains each.
    pub fn code(&self) -> &'static str {
        use crate::tune::lock::LockError;
        let nvcc = |e: &NvccError| match e {
            NvccError::NotFound => "nvcc-not-found",
            NvccError::BadEnv { .. } => "nvcc-bad-env",
            NvccError::Spawn { .. } => "nvcc-not-runnable",
            NvccError::Failed { .. } => "nvcc-failed",
        };
        match self {
            BuildError::NoOutDir => "no-out-dir",
            BuildError::Read { .. } => "toml-unreadable",
            BuildError::Invalid { .. } => "invalid-toml",
            BuildError::Arch { .. } => "bad-arch-override",
            BuildError::Env { .. } => "bad-env",
            BuildError::Codegen(_) => "codegen-failed",
            BuildError::Emit(_) => "emit-failed",
            BuildError::Nvcc(e) => nvcc(e),
            BuildError::Compile(failures) => {
                failures.first().map_or("nvcc-failed", |f| nvcc(&f.error))
            }
            BuildError::Io { .. } => "io",
            BuildError::ThreadPool { .. } => "thread-pool",
            BuildError::Lock(e) => match e {
                LockError::Read { .. } => "lock-unreadable",
                LockError::Corrupt { .. } => "lock-invalid",
                LockError::Checksum { .. } => "lock-checksum",
                LockError::Version { .. } => "lock-version",
                LockError::Duplicate { .. } => "lock-duplicate",
                LockError::Write { .. } => "lock-write",
            },
            BuildError::Resolve(errors) => match errors.first() {
                Some(crate::tune::resolve::ResolveError::Instances { .. }) => "no-instance",
                _ => "lock-stale",
            },
            BuildError::Tune(_) => "tune-failed",
        }
    }
}

fn resolve_message(errors: &[crate::tune::resolve::ResolveError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    lines.join("\n")
}

fn codegen_message(errors: &[CodegenError]) -> String {
    let mut out = String::from("prism cannot generate kernels for these workloads:\n");
    for e in errors {
        out.push_str(&format!("  {e}\n"));
    }
    out.push_str(
        "hint: change the workload's program in prism.toml, or report the workload to prism",
    );
    out
}

fn compile_message(failures: &[CompileFailure]) -> String {
    let mut out = String::new();
    for f in failures {
        match &f.error {
            NvccError::Failed { stderr, .. } => {
                out.push_str(&format!(
                    "nvcc failed on the generated kernels of workload `{}` ({}):\n{}",
                    f.workload,
                    f.cu_path.display(),
                    stderr.trim_end()
                ));
            }
            other => out.push_str(&format!(
                "nvcc failed on the generated kernels of workload `{}` ({}): {other}",
                f.workload,
                f.cu_path.display()
            )),
        }
        out.push('\n');
    }
    out.push_str(
        "hint: the generated .cu files are kept at the paths above; if nvcc itself works, this is a bug in prism's code generation: please report it with the file",
    );
    out
}
