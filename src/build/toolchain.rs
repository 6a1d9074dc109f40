//! nvcc discovery through the captured [`Env`], and compiling every
//! workload's fatbin in parallel.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::env::Env;
use super::error::{BuildError, CompileFailure};
use crate::ir::Arch;
use crate::nvcc::{self, NvccError};

/// Locate nvcc as [`nvcc::find`] does, reading the captured `env`.
pub fn find_nvcc(env: &Env) -> Result<PathBuf, NvccError> {
    nvcc::find_with(|var| env.get(var).map(|v| v.to_os_string()))
}

/// Compiler threads: `NUM_JOBS` when set (cargo sets it from `-j`), else the
/// available parallelism.
pub fn jobs(env: &Env) -> Result<usize, BuildError> {
    match env.get("NUM_JOBS") {
        Some(v) => {
            let s = v.to_string_lossy();
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| BuildError::Env {
                    var: "NUM_JOBS",
                    value: s.into_owned(),
                    message: "expected a positive number of jobs (cargo sets it from -j)".into(),
                })
        }
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// One fatbin to build.
pub struct Job<'a> {
    pub workload: &'a str,
    pub cu: &'a Path,
    pub fatbin: &'a Path,
}

/// Compile every job with `threads` nvcc processes at a time; all failures
/// are reported together.
pub fn compile_all(
    nvcc: &Path,
    include: &Path,
    archs: &[Arch],
    jobs: &[Job<'_>],
    threads: usize,
) -> Result<(), BuildError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BuildError::ThreadPool {
            threads,
            message: e.to_string(),
        })?;
    let results: Vec<Result<(), NvccError>> = pool.install(|| {
        jobs.par_iter()
            .map(|j| nvcc::compile_fatbin(nvcc, j.cu, j.fatbin, include, archs))
            .collect()
    });
    let failures: Vec<CompileFailure> = jobs
        .iter()
        .zip(results)
        .filter_map(|(j, r)| {
            r.err().map(|error| CompileFailure {
                workload: j.workload.to_string(),
                cu_path: j.cu.to_path_buf(),
                error,
            })
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(BuildError::Compile(failures))
    }
}
