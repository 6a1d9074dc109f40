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
    #[error("{var} = {value:?} is not valid: {message}")]
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
    #[error("cannot start {threads} compiler threads: {message}")]
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
