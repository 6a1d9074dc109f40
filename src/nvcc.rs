//! Finding and running nvcc: one fatbin per `.cu`, SASS for every target
//! architecture plus PTX for the newest.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ir::Arch;

/// Environment variables that locate nvcc, in the order they are tried.
pub const NVCC_ENV: [&str; 2] = ["PRISM_NVCC", "NVCC"];
/// Environment variables that locate a CUDA toolkit (`$X/bin/nvcc`).
pub const CUDA_ENV: [&str; 2] = ["CUDA_HOME", "CUDA_PATH"];

#[derive(Debug, thiserror::Error)]
pub enum NvccError {
    #[error(
        "nvcc not found (looked at $PRISM_NVCC, $NVCC, $CUDA_HOME/bin, $CUDA_PATH/bin, PATH and /usr/local/cuda/bin)\n\
         hint: install the CUDA 13 compiler (scripts/install-nvcc.sh installs it from PyPI) and set NVCC or CUDA_HOME"
    )]
    NotFound,
    #[error(
        "${var} points at {path}, which is not a file\nhint: set {var} to the nvcc executable, or unset it"
    )]
    BadEnv { var: &'static str, path: PathBuf },
    #[error("cannot run {nvcc}: {source}")]
    Spawn {
        nvcc: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("nvcc failed on {file}:\n{stderr}")]
    Failed { file: PathBuf, stderr: String },
}

/// Locate nvcc: `PRISM_NVCC`, `NVCC`, `CUDA_HOME/bin`, `CUDA_PATH/bin`, `PATH`,
/// `/usr/local/cuda/bin`.
pub fn find() -> Result<PathBuf, NvccError> {
    for var in NVCC_ENV {
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(NvccError::BadEnv { var, path: p })
            };
        }
    }
    let exe = if cfg!(windows) { "nvcc.exe" } else { "nvcc" };
    let mut candidates: Vec<PathBuf> = CUDA_ENV
        .iter()
        .filter_map(std::env::var_os)
        .map(|home| PathBuf::from(home).join("bin").join(exe))
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(exe)));
    }
    candidates.push(PathBuf::from("/usr/local/cuda/bin").join(exe));
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .ok_or(NvccError::NotFound)
}

/// nvcc arguments that select SASS for every arch and PTX for the newest.
pub fn gencode_args(archs: &[Arch]) -> Vec<String> {
    let mut args = Vec::new();
    for a in archs {
        args.push("-gencode".into());
        args.push(format!(
            "arch=compute_{}{},code=sm_{}{}",
            a.capability, a.suffix, a.capability, a.suffix
        ));
    }
    if let Some(newest) = archs.iter().max_by_key(|a| a.capability) {
        args.push("-gencode".into());
        args.push(format!(
            "arch=compute_{}{},code=compute_{}{}",
            newest.capability, newest.suffix, newest.capability, newest.suffix
        ));
    }
    args
}

/// Compile `cu` into the fatbin `out`, with `include` on the include path.
/// Never passes `-G`: device code is always optimized.
pub fn compile_fatbin(
    nvcc: &Path,
    cu: &Path,
    out: &Path,
    include: &Path,
    archs: &[Arch],
) -> Result<(), NvccError> {
    let output = Command::new(nvcc)
        .arg("-fatbin")
        .args(["-O3", "-std=c++17", "-lineinfo"])
        .arg("-I")
        .arg(include)
        .args(gencode_args(archs))
        .arg("-o")
        .arg(out)
        .arg(cu)
        .output()
        .map_err(|e| NvccError::Spawn {
            nvcc: nvcc.to_path_buf(),
            source: e,
        })?;
    if !output.status.success() {
        return Err(NvccError::Failed {
            file: cu.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(())
}
