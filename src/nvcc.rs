//! Finding and running nvcc: one fatbin per `.cu`, SASS for every target
//! architecture plus PTX for the newest.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ir::Arch;

/// Environment variables that locate nvcc, in the order they are tried.
pub const NVCC_ENV: [&str; 2] = ["PRISM_NVCC", "NVCC"];
/// Environment variables that locate a CUDA toolkit (`$X/bin/nvcc`).
pub const CUDA_ENV: [&str; 2] = ["CUDA_HOME", "CUDA_PATH"];

/// Why nvcc could not be found or did not do its job.
#[derive(Debug, thiserror::Error)]
pub enum NvccError {
    /// No nvcc in any of the places searched.
    #[error(
        "nvcc not found (looked at $PRISM_NVCC, $NVCC, $CUDA_HOME/bin, $CUDA_PATH/bin, PATH and /usr/local/cuda/bin)\n\
         hint: install the CUDA 13 compiler (scripts/install-nvcc.sh installs it from PyPI) and set NVCC or CUDA_HOME"
    )]
    NotFound,
    #[error(
        "${var} points at {path}, which is not a file\nhint: set {var} to the nvcc executable, or unset it"
    )]
    /// A variable that names nvcc (`PRISM_NVCC`, `NVCC`) points at no file.
    BadEnv {
        /// The variable.
        var: &'static str,
        /// Its value.
        path: PathBuf,
    },
    /// nvcc could not be started.
    #[error(
        "cannot run {nvcc}: {source}\nhint: check that it is an executable nvcc of CUDA 13 (`{nvcc} --version`), or point NVCC at another one"
    )]
    Spawn {
        /// The nvcc executable.
        nvcc: PathBuf,
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },
    /// nvcc ran and failed (or `nvcc --version` printed no release).
    #[error(
        "nvcc failed on {file}:\n{stderr}\nhint: check that nvcc is CUDA 13.0 (`nvcc --version`); if it is, this is a bug in prism's code generation: please report it with the file"
    )]
    Failed {
        /// The file nvcc was compiling (the nvcc executable for
        /// `--version`).
        file: PathBuf,
        /// What nvcc printed.
        stderr: String,
    },
}

/// Locate nvcc: `PRISM_NVCC`, `NVCC`, `CUDA_HOME/bin`, `CUDA_PATH/bin`, `PATH`,
/// `/usr/local/cuda/bin`.
pub fn find() -> Result<PathBuf, NvccError> {
    find_with(|var| std::env::var_os(var))
}

/// [`find`], reading the environment through `var` (a build script's
/// captured environment, or the process's). Empty values count as unset.
pub fn find_with(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, NvccError> {
    let get = |name: &str| var(name).filter(|v| !v.is_empty());
    for name in NVCC_ENV {
        if let Some(p) = get(name) {
            let p = PathBuf::from(p);
            return if p.is_file() {
                Ok(p)
            } else {
                Err(NvccError::BadEnv { var: name, path: p })
            };
        }
    }
    let exe = if cfg!(windows) { "nvcc.exe" } else { "nvcc" };
    let mut candidates: Vec<PathBuf> = CUDA_ENV
        .iter()
        .filter_map(|name| get(name))
        .map(|home| PathBuf::from(home).join("bin").join(exe))
        .collect();
    if let Some(path) = var("PATH") {
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

/// The optimization flags of every compilation; part of a tuned entry's
/// key in prism.lock (other flags would make other kernels).
pub const FLAGS: [&str; 3] = ["-O3", "-std=c++17", "-lineinfo"];

/// nvcc's release, `13.0`, from `nvcc --version` (`... release 13.0, V13.0.88`).
pub fn version(nvcc: &Path) -> Result<String, NvccError> {
    let output = Command::new(nvcc)
        .arg("--version")
        .output()
        .map_err(|e| NvccError::Spawn {
            nvcc: nvcc.to_path_buf(),
            source: e,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_version(&text).ok_or_else(|| NvccError::Failed {
        file: nvcc.to_path_buf(),
        stderr: format!("`nvcc --version` printed no release:\n{text}"),
    })
}

/// The release in `nvcc --version`'s output.
pub fn parse_version(text: &str) -> Option<String> {
    let rest = &text[text.find("release ")? + "release ".len()..];
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
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
    run_fatbin(nvcc, cu, out, include, archs, &[]).map(|_| ())
}

/// Compile `cu` into the fatbin `out` exactly like [`compile_fatbin`], with
/// `-Xptxas -v`, and return ptxas's resource report (see
/// [`parse_ptxas_report`]).
pub fn compile_fatbin_ptxas_report(
    nvcc: &Path,
    cu: &Path,
    out: &Path,
    include: &Path,
    archs: &[Arch],
) -> Result<String, NvccError> {
    run_fatbin(nvcc, cu, out, include, archs, &["-Xptxas", "-v"])
}

/// The one nvcc invocation behind both: returns nvcc's stderr on success.
fn run_fatbin(
    nvcc: &Path,
    cu: &Path,
    out: &Path,
    include: &Path,
    archs: &[Arch],
    extra: &[&str],
) -> Result<String, NvccError> {
    let output = Command::new(nvcc)
        .arg("-fatbin")
        .args(FLAGS)
        .args(extra)
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
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(NvccError::Failed {
            file: cu.to_path_buf(),
            stderr,
        });
    }
    Ok(stderr)
}

/// Resource usage of one function on one architecture, from `ptxas -v`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PtxasUsage {
    /// Mangled function name.
    pub function: String,
    /// Target, e.g. `sm_90a`.
    pub arch: String,
    /// Registers per thread (entry functions only).
    pub registers: Option<u32>,
    pub stack_frame_bytes: u32,
    pub spill_store_bytes: u32,
    pub spill_load_bytes: u32,
}

impl PtxasUsage {
    /// True when the function uses local memory: a stack frame or spills.
    pub fn uses_local_memory(&self) -> bool {
        self.stack_frame_bytes > 0 || self.spill_store_bytes > 0 || self.spill_load_bytes > 0
    }
}

/// Parse the `-Xptxas -v` report: one [`PtxasUsage`] per
/// "Function properties for ..." block, in order.
pub fn parse_ptxas_report(report: &str) -> Vec<PtxasUsage> {
    fn quoted(s: &str) -> Option<&str> {
        let start = s.find('\'')? + 1;
        let len = s[start..].find('\'')?;
        Some(&s[start..start + len])
    }
    // The number just before `unit` in `line` ("12 bytes spill stores").
    fn number_before(line: &str, unit: &str) -> Option<u32> {
        let end = line.find(unit)?;
        line[..end].split_whitespace().last()?.parse().ok()
    }
    let mut usages: Vec<PtxasUsage> = Vec::new();
    let (mut entry, mut arch) = (String::new(), String::new());
    for line in report.lines() {
        if let Some(rest) = line.split("Compiling entry function ").nth(1) {
            entry = quoted(rest).unwrap_or_default().to_string();
            arch = rest
                .split(" for ")
                .nth(1)
                .and_then(quoted)
                .unwrap_or_default()
                .to_string();
        } else if let Some(f) = line.split("Function properties for ").nth(1) {
            usages.push(PtxasUsage {
                function: f.trim().to_string(),
                arch: arch.clone(),
                ..PtxasUsage::default()
            });
        } else if line.contains("bytes stack frame") {
            if let Some(u) = usages.last_mut() {
                u.stack_frame_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
                u.spill_store_bytes = number_before(line, "bytes spill stores").unwrap_or(0);
                u.spill_load_bytes = number_before(line, "bytes spill loads").unwrap_or(0);
            }
        } else if line.contains(" registers") {
            let regs = line
                .split("Used ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok());
            if let Some(u) = usages
                .iter_mut()
                .rev()
                .find(|u| u.function == entry && u.arch == arch)
            {
                u.registers = regs;
            }
        }
    }
    usages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_ptxas_report() {
        let report = "\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z1fPKfPf' for 'sm_80'
ptxas info    : Function properties for _Z1fPKfPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 16 registers, used 1 barriers, 192 bytes smem, 368 bytes cmem[0]
ptxas info    : Compiling entry function '_Z1gv' for 'sm_90a'
ptxas info    : Function properties for _Z1gv
    8 bytes stack frame, 4 bytes spill stores, 24 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 8 bytes cumulative stack size
";
        let u = parse_ptxas_report(report);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].function, "_Z1fPKfPf");
        assert_eq!(u[0].arch, "sm_80");
        assert_eq!(u[0].registers, Some(16));
        assert!(!u[0].uses_local_memory());
        assert_eq!(u[1].arch, "sm_90a");
        assert_eq!(u[1].registers, Some(40));
        assert_eq!(
            (
                u[1].stack_frame_bytes,
                u[1].spill_store_bytes,
                u[1].spill_load_bytes
            ),
            (8, 4, 24)
        );
        assert!(u[1].uses_local_memory());
    }
}
