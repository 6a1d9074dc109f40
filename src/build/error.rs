//! Why a build failed. Every message says what to do.

use std::path::PathBuf;

use crate::codegen::CodegenError;
use crate::codegen::rust::EmitError;
use crate::nvcc::NvccError;

/// A workload whose `.cu` nvcc could not compile.
#[derive(Debug)]
pub struct CompileFailure {
    pub workload: String,
    pub cu_path: PathBuf,
    pub error: NvccError,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "OUT_DIR is not set\nhint: prism::Build runs from a build script (build.rs), where cargo sets OUT_DIR; elsewhere call .out_dir(..)"
    )]
    NoOutDir,
    #[error(
        "cannot read {}: {source}\nhint: the path is relative to the crate root (where Cargo.toml is); create the file, or pass its path to prism::Build::from_toml",
        path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The prism.toml has errors; `rendered` is the located report, without
    /// colors.
    #[error("{rendered}hint: fix the errors above in {path}")]
    Invalid { path: String, rendered: String },
    #[error(
        "{origin} = {value:?}: {message}\nhint: set {origin} to a compute capability such as 90 (H100) or 80 (A100), or to an architecture such as sm_90a; unset it to use `[target] arch` from prism.toml"
    )]
    Arch {
        origin: &'static str,
        value: String,
        message: String,
    },
    #[error("{var} = {value:?} is not valid: {message}\nhint: fix or unset {var}")]
    Env {
        var: &'static str,
        value: String,
        message: String,
    },
    #[error("{}", codegen_message(.0))]
    Codegen(Vec<CodegenError>),
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// nvcc could not be found.
    #[error(transparent)]
    Nvcc(#[from] NvccError),
    #[error("{}", compile_message(.0))]
    Compile(Vec<CompileFailure>),
    #[error("cannot write {}: {source}\nhint: check that the output directory is writable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot start {threads} compiler threads: {message}\nhint: set NUM_JOBS to a smaller number (cargo's -j sets it)"
    )]
    ThreadPool { threads: usize, message: String },
    /// prism.lock could not be read or is corrupt.
    #[error(transparent)]
    Lock(#[from] crate::tune::lock::LockError),
    /// Offline with missing or stale lock entries, or no instance.
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
