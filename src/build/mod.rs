//! `prism::Build`: kernels from a downstream crate's `build.rs`.
//!
//! ```no_run
//! // build.rs, in `fn main`:
//! prism::build::Build::from_toml("prism.toml").run();
//! ```
//!
//! ```text
//! // src/lib.rs: declares `pub mod prism_kernels`
//! include!(concat!(env!("OUT_DIR"), "/prism_kernels.rs"));
//! ```
//!
//! The pipeline: [`crate::frontend::load`] → per workload and target
//! architecture, the kernel choices of prism.lock (else tuned on this
//! machine's GPU, else the cost model's) → code generation into
//! `OUT_DIR/prism/<module>/<workload>.cu`, with the device library in
//! `OUT_DIR/prism/include` → one fatbin per workload (SASS for every target
//! architecture, PTX for the newest), compiled in parallel → the Rust module
//! `OUT_DIR/<module>.rs`. [`BuildOutput`] lists what was written.
//!
//! Environment (each gets a `cargo::rerun-if-env-changed`, see [`ENV_VARS`]):
//! `PRISM_NVCC`, `NVCC`, `CUDA_HOME`, `CUDA_PATH`, `PATH` (finding nvcc),
//! `CUDA_COMPUTE_CAP` (replaces `[target] arch`), `NUM_JOBS` (compiler
//! threads), `DOCS_RS` (no nvcc: stub module for docs.rs), `PRISM_OFFLINE`
//! (build only from prism.lock), `PRISM_UPDATE_LOCK` (write what was tuned
//! here into prism.lock); `OUT_DIR` is where everything goes.

pub mod arch;
pub mod env;
pub mod error;
// Internal: nvcc discovery through the captured `Env` and the parallel
// fatbin compiles `Build` runs. No stability promise.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod toolchain;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::tune::lock::Source;
pub use crate::tune::resolve::{Choice, Origin};
pub use env::{ENV_VARS, Env};
pub use error::{BuildError, CompileFailure};

pub use crate::codegen::rust::DriverLinking;
use crate::codegen::rust::{self as rust_emit, EmitOptions, Fatbins};
use crate::codegen::{CodegenError, WorkloadKernels};
use crate::ir::{Arch, Spec, Target, Workload};

/// What [`Build`] resolved from the lock: per workload its kernels and its
/// resolution, and the lock it resolved from.
type Tuned = (
    Vec<WorkloadKernels>,
    Vec<crate::tune::resolve::Resolution>,
    Option<crate::tune::lock::Lock>,
);

/// The module name used unless [`Build::module_name`] says otherwise.
pub const DEFAULT_MODULE: &str = "prism_kernels";

/// A code generator: prism's own unless replaced with
/// `Build::codegen_with` (tests and tools). Internal: it names types of the
/// code generator, which carry no stability promise.
#[doc(hidden)]
pub type Codegen =
    dyn Fn(&Workload, &Target) -> Result<WorkloadKernels, CodegenError> + Send + Sync;

/// Builds the kernels of one prism.toml into one Rust module.
///
/// In a build script, [`Build::run`] is all it takes: it prints the
/// `cargo::rerun-if-*` directives, builds, and on failure prints
/// `cargo::error=` lines and exits with status 1 (never a panic).
///
/// ```no_run
/// // build.rs, in `fn main`:
/// prism::Build::from_toml("prism.toml")
///     .arch("sm_90a") // instead of `[target] arch`; call again to add more
///     .module_name("kernels") // OUT_DIR/kernels.rs instead of prism_kernels.rs
///     .run();
/// ```
///
/// [`Build::try_run`] returns the [`BuildOutput`] or a [`BuildError`]
/// instead. With `DOCS_RS` set (as on docs.rs) it writes the same module
/// API without running nvcc, so this runs anywhere:
///
/// ```
/// let dir = std::env::temp_dir().join(format!("prism-doc-build-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let toml = dir.join("prism.toml");
/// std::fs::write(
///     &toml,
///     r#"
/// [workload.scale]
/// inputs = { x = "f16[n, d]", g = "f16[d]" }
/// program = "x * g"
/// dims = { n = "1..=64", d = [1024, 4096] }
/// "#,
/// )
/// .unwrap();
///
/// let out = prism::Build::from_toml(&toml)
///     .out_dir(dir.join("out"))
///     .env("DOCS_RS", "1") // no nvcc: `load` of the stub module returns an error
///     .emit_directives(false) // not a build script: print nothing
///     .try_run()
///     .unwrap_or_else(|e| panic!("{e}"));
///
/// assert!(out.docs_stub && out.nvcc.is_none());
/// assert_eq!(out.module_path, dir.join("out").join("prism_kernels.rs"));
/// let module = std::fs::read_to_string(&out.module_path).unwrap();
/// assert!(module.contains("pub struct Scale"));
/// assert_eq!(out.workloads[0].type_name, "Scale");
/// # std::fs::remove_dir_all(&dir).ok();
/// ```
#[derive(Clone)]
pub struct Build {
    toml: PathBuf,
    archs: Vec<String>,
    out_dir: Option<PathBuf>,
    module_name: String,
    env: Env,
    emit_directives: bool,
    driver_linking: DriverLinking,
    codegen: Option<Arc<Codegen>>,
}

impl std::fmt::Debug for Build {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Build")
            .field("toml", &self.toml)
            .field("archs", &self.archs)
            .field("out_dir", &self.out_dir)
            .field("module_name", &self.module_name)
            .field("env", &self.env)
            .field("emit_directives", &self.emit_directives)
            .field("driver_linking", &self.driver_linking)
            .field("custom_codegen", &self.codegen.is_some())
            .finish()
    }
}

/// What a successful build produced.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildOutput {
    /// `OUT_DIR/<module>.rs`, to `include!`.
    pub module_path: PathBuf,
    /// The generated module's name ([`Build::module_name`]).
    pub module_name: String,
    /// The architectures compiled for (after overrides).
    pub archs: Vec<Arch>,
    /// `DOCS_RS` was set: no fatbins, `load` returns an error.
    pub docs_stub: bool,
    /// The nvcc used (`None` in docs mode).
    pub nvcc: Option<PathBuf>,
    /// Every workload of the prism.toml, in declaration order.
    pub workloads: Vec<BuiltWorkload>,
    /// What the build warned about (printed as `cargo::warning=` by a
    /// build script): workloads built with untuned kernel choices.
    pub warnings: Vec<String>,
    /// The report page written ([`crate::report::build_report_path`]);
    /// `None` when it could not be written (a warning says why).
    pub report: Option<PathBuf>,
}

/// One workload of a [`BuildOutput`].
#[derive(Clone, Debug, PartialEq)]
pub struct BuiltWorkload {
    /// The workload's name in prism.toml (`[workload.NAME]`).
    pub name: String,
    /// The Rust type in the module (`rms_norm` → `RmsNorm`).
    pub type_name: String,
    /// The generated CUDA source (`OUT_DIR/prism/<module>/<name>.cu`).
    pub cu_path: PathBuf,
    /// `None` in docs mode.
    pub fatbin_path: Option<PathBuf>,
    /// Kernels per launch, at most (over the variants).
    pub kernels: usize,
    /// The labels of the variants embedded (`sgraph#0 splits=16`).
    pub variants: Vec<String>,
    /// Per target arch and shape bucket, the instance chosen and where the
    /// choice came from (prism.lock or the cost model); empty for a custom
    /// code generator or a docs build.
    pub choices: Vec<crate::tune::resolve::Choice>,
}

impl Build {
    /// Build the workloads of the prism.toml at `path` (relative to the
    /// crate root in a build script). The environment is captured now; see
    /// [`Build::env`].
    pub fn from_toml(path: impl Into<PathBuf>) -> Self {
        Build {
            toml: path.into(),
            archs: Vec::new(),
            out_dir: None,
            module_name: DEFAULT_MODULE.to_string(),
            env: Env::capture(),
            emit_directives: true,
            driver_linking: DriverLinking::Loaded,
            codegen: None,
        }
    }

    /// Build for this architecture instead of `[target] arch` (and instead of
    /// `CUDA_COMPUTE_CAP`): `sm_90a`, `sm_80`, or a compute capability such
    /// as `90`, `9.0`, `86`. Call it again to add more.
    pub fn arch(mut self, arch: impl Into<String>) -> Self {
        self.archs.push(arch.into());
        self
    }

    /// Where to write everything (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Name of the generated module and of its file `<out_dir>/<name>.rs`
    /// (default `prism_kernels`).
    pub fn module_name(mut self, name: impl Into<String>) -> Self {
        self.module_name = name.into();
        self
    }

    /// Use `value` for the environment variable `key` (one of [`ENV_VARS`])
    /// instead of the process's value.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.set(key, value);
        self
    }

    /// Treat the environment variable `key` as unset.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Replace the whole captured environment.
    pub fn with_env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Whether [`Build::try_run`] prints its `cargo::rerun-if-*` directives
    /// (default true; [`Build::run`] always prints them).
    pub fn emit_directives(mut self, yes: bool) -> Self {
        self.emit_directives = yes;
        self
    }

    /// How the crate reaches the CUDA driver library (default
    /// [`DriverLinking::Loaded`], cudarc's default): pass
    /// [`DriverLinking::Linked`] when it builds cudarc with `dynamic-linking`
    /// or `static-linking`, as a crate using candle-core's `cuda` feature
    /// does. The generated module's driver check needs cudarc's
    /// `dynamic-loading` and would not compile otherwise.
    pub fn driver_linking(mut self, linking: DriverLinking) -> Self {
        self.driver_linking = linking;
        self
    }

    /// Generate kernels with `f` instead of prism's search and code
    /// generator (tests and tools). Internal: `f` works with the code
    /// generator's types, which carry no stability promise.
    #[doc(hidden)]
    pub fn codegen_with(
        mut self,
        f: impl Fn(&Workload, &Target) -> Result<WorkloadKernels, CodegenError> + Send + Sync + 'static,
    ) -> Self {
        self.codegen = Some(Arc::new(f));
        self
    }

    /// The `cargo::` directives of this build: rerun when the prism.toml or
    /// any environment variable the build reads changes.
    pub fn directives(&self) -> Vec<String> {
        let mut out = vec![format!("cargo::rerun-if-changed={}", self.toml.display())];
        // Only an existing lock: cargo reruns a build script on every build
        // while a watched path is missing.
        let lock = crate::tune::lock::path_for(&self.toml);
        if lock.is_file() {
            out.push(format!("cargo::rerun-if-changed={}", lock.display()));
        }
        let tune = crate::report::tune_data::path_for(&self.toml);
        if tune.is_file() {
            out.push(format!("cargo::rerun-if-changed={}", tune.display()));
        }
        out.extend(Env::rerun_vars().map(|v| format!("cargo::rerun-if-env-changed={v}")));
        out
    }

    /// Run the build; on error print `cargo::error=` lines saying what to do
    /// and exit with status 1 (never panics).
    pub fn run(&self) -> BuildOutput {
        let this = self.clone().emit_directives(true);
        match this.try_run() {
            Ok(out) => out,
            Err(e) => {
                for line in cargo_error_lines(&e) {
                    println!("{line}");
                }
                std::process::exit(1);
            }
        }
    }

    /// Run the build and return what it produced, or a typed error.
    pub fn try_run(&self) -> Result<BuildOutput, BuildError> {
        if self.emit_directives {
            for d in self.directives() {
                println!("{d}");
            }
        }
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => PathBuf::from(
                self.env
                    .get_nonempty("OUT_DIR")
                    .ok_or(BuildError::NoOutDir)?,
            ),
        };
        let out_dir = std::path::absolute(&out_dir).map_err(|source| BuildError::Io {
            path: out_dir.clone(),
            source,
        })?;
        let mut spec = load_spec(&self.toml)?;
        if let Some(archs) = self.arch_override()? {
            spec.target.archs = archs;
        }
        if !rust_emit::is_module_name(&self.module_name) {
            return Err(rust_emit::EmitError::ModuleName(self.module_name.clone()).into());
        }
        let docs = self.env.get_nonempty("DOCS_RS").is_some();

        let mut warnings = Vec::new();
        let cache = crate::search::cache::Cache::for_out_dir(&out_dir)
            .and_then(|c| usable_cache(c, &mut warnings));
        let (kernels, resolutions, lock) = if docs || self.codegen.is_some() {
            (self.generate(&spec, cache.as_ref())?, None, None)
        } else {
            let nvcc = toolchain::find_nvcc(&self.env)?;
            let release = crate::nvcc::version(&nvcc)?;
            let (k, r, l) = self.generate_tuned(&spec, &out_dir, &nvcc, &release, &mut warnings)?;
            (k, Some(r), l)
        };
        let mut choices: Vec<Vec<crate::tune::resolve::Choice>> = resolutions
            .as_ref()
            .map(|rs| rs.iter().map(|r| r.choices.clone()).collect())
            .unwrap_or_default();
        choices.resize(kernels.len(), Vec::new());
        if self.emit_directives {
            for w in &warnings {
                println!("cargo::warning={w}");
            }
        }

        let root = out_dir.join("prism");
        let dir = root.join(&self.module_name);
        let include = root.join("include");
        create_dir(&dir)?;
        crate::device_library::write_to(&include).map_err(|source| BuildError::Io {
            path: include.clone(),
            source,
        })?;
        let mut cu_paths = Vec::new();
        let mut fatbin_paths = Vec::new();
        for k in &kernels {
            let cu = dir.join(format!("{}.cu", k.workload));
            write_if_changed(&cu, &k.source)?;
            cu_paths.push(cu);
            fatbin_paths.push(dir.join(format!("{}.fatbin", k.workload)));
        }

        let (fatbins, nvcc) = if docs {
            (Fatbins::DocsStub, None)
        } else {
            let nvcc = toolchain::find_nvcc(&self.env)?;
            let threads = toolchain::jobs(&self.env)?;
            let jobs: Vec<toolchain::Job<'_>> = kernels
                .iter()
                .zip(cu_paths.iter().zip(&fatbin_paths))
                .map(|(k, (cu, fatbin))| toolchain::Job {
                    workload: &k.workload,
                    cu,
                    fatbin,
                })
                .collect();
            toolchain::compile_all(&nvcc, &include, &spec.target.archs, &jobs, threads)?;
            (Fatbins::Embedded(fatbin_paths.clone()), Some(nvcc))
        };

        let options = EmitOptions {
            driver_linking: self.driver_linking,
        };
        let text = rust_emit::emit_with(&spec, &self.module_name, &kernels, &fatbins, &options)?;
        let module_path = out_dir.join(format!("{}.rs", self.module_name));
        write_if_changed(&module_path, &text)?;

        // The report: never a build failure, never a search.
        let report = {
            let (html, notes) = crate::report::for_build(&crate::report::BuildInputs {
                spec: &spec,
                toml: &self.toml,
                lock: lock.as_ref(),
                resolutions: resolutions.as_deref(),
                kernels: &kernels,
                cache: cache.as_ref().map(|c| c.dir()),
            });
            let path = crate::report::build_report_path(&out_dir, &self.module_name);
            let mut late = Vec::new();
            let written = match crate::report::write(&path, &html) {
                Ok(()) => Some(path),
                Err(e) => {
                    late.push(format!("prism: the report page was not written: {e}"));
                    None
                }
            };
            late.extend(notes.into_iter().map(|n| format!("prism: report: {n}")));
            if self.emit_directives {
                for w in &late {
                    println!("cargo::warning={}", w.replace('\n', " "));
                }
            }
            warnings.extend(late);
            written
        };

        let workloads = kernels
            .iter()
            .zip(cu_paths)
            .zip(fatbin_paths)
            .zip(choices)
            .map(|(((k, cu_path), fatbin), choices)| BuiltWorkload {
                name: k.workload.clone(),
                type_name: rust_emit::type_name(&k.workload).unwrap_or_default(),
                cu_path,
                fatbin_path: (!docs).then_some(fatbin),
                kernels: k.max_launches(),
                variants: k.variants.iter().map(|v| v.label.clone()).collect(),
                choices,
            })
            .collect();
        Ok(BuildOutput {
            module_path,
            module_name: self.module_name.clone(),
            archs: spec.target.archs.clone(),
            docs_stub: docs,
            nvcc,
            workloads,
            warnings,
            report,
        })
    }

    /// Whether `PRISM_OFFLINE` is set (to anything but `0`).
    fn offline(&self) -> bool {
        self.env
            .get_nonempty("PRISM_OFFLINE")
            .is_some_and(|v| v != "0")
    }

    /// The tuned kernels of every workload: prism.lock's entries, entries
    /// tuned on this machine's GPU (cached under `target/prism/tune/`, not
    /// offline), else the cost model's choice (a warning; offline, an
    /// error).
    fn generate_tuned(
        &self,
        spec: &Spec,
        out_dir: &Path,
        nvcc: &Path,
        release: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Tuned, BuildError> {
        use crate::tune::lock::{Lock, path_for};
        use crate::tune::resolve::resolve;
        use rayon::prelude::*;
        let lock_path = path_for(&self.toml);
        let lock = Lock::read(&lock_path)?;
        let offline = self.offline();
        let command = format!("prism tune {}", self.toml.display());
        let mut lock = lock;
        if !offline && crate::tune::gpu::device_count() > 0 {
            lock = Some(self.tune_missing(spec, out_dir, nvcc, release, lock)?);
        }
        let lock_name = lock_path.display().to_string();
        let results: Vec<_> = spec
            .workloads
            .par_iter()
            .map(|w| {
                resolve(
                    spec,
                    w,
                    lock.as_ref(),
                    release,
                    offline,
                    &lock_name,
                    &command,
                )
            })
            .collect();
        let mut kernels = Vec::new();
        let mut resolutions = Vec::new();
        let mut errors = Vec::new();
        let mut codegen_errors = Vec::new();
        for (w, r) in spec.workloads.iter().zip(results) {
            match r {
                Err(e) => errors.push(e),
                Ok(res) => {
                    let problems: Vec<_> = res.problems().collect();
                    if let Some(first) = problems.first() {
                        warnings.push(format!(
                            "prism: workload `{}`: {} of {} kernel choices use the cost model, untuned ({}); run `{command}` on a machine with a GPU and commit {}",
                            w.name,
                            problems.len(),
                            res.choices.len(),
                            first.problem.as_deref().unwrap_or(""),
                            lock_name
                        ));
                    }
                    match crate::codegen::cuda::generate_variants(
                        w,
                        &res.variants,
                        res.dispatch.clone(),
                    ) {
                        Ok(k) => {
                            kernels.push(k);
                            resolutions.push(res);
                        }
                        Err(e) => codegen_errors.push(e),
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(BuildError::Resolve(errors));
        }
        if !codegen_errors.is_empty() {
            return Err(BuildError::Codegen(codegen_errors));
        }
        Ok((kernels, resolutions, lock))
    }

    /// Tune, on this machine's GPUs, the workloads that `lock` (and the
    /// tuning cache under `target/prism/tune/`) lacks fresh entries for;
    /// record them in the cache, and in prism.lock itself when
    /// `PRISM_UPDATE_LOCK=1`. Returns the lock to build from.
    fn tune_missing(
        &self,
        spec: &Spec,
        out_dir: &Path,
        nvcc: &Path,
        release: &str,
        lock: Option<crate::tune::lock::Lock>,
    ) -> Result<crate::tune::lock::Lock, BuildError> {
        use crate::tune::lock::{Lock, hash, path_for};
        use crate::tune::resolve::{locked, merge, tuned_entries};
        let target = out_dir
            .ancestors()
            .find(|a| a.join("CACHEDIR.TAG").is_file())
            .map_or_else(|| out_dir.to_path_buf(), Path::to_path_buf);
        let dir = target.join("prism").join("tune");
        let toml_abs = std::path::absolute(&self.toml).unwrap_or_else(|_| self.toml.clone());
        let cache_path = dir.join(format!("{}.lock", hash(&toml_abs.display().to_string())));
        // A cache that does not read (damaged, or written before locks had
        // checksums) is never used: it counts as empty and is written again.
        let cached = Lock::read(&cache_path).ok().flatten();
        // The committed lock first, the cache for what it lacks.
        let mut combined = merge(
            spec,
            release,
            &lock.as_ref().map(|l| l.entries.clone()).unwrap_or_default(),
            cached.as_ref(),
        );
        let missing: Vec<String> = spec
            .workloads
            .iter()
            .filter(|w| {
                locked(spec, w, Some(&combined), release)
                    .iter()
                    .any(|(_, _, r)| r.is_err())
            })
            .map(|w| w.name.clone())
            .collect();
        if !missing.is_empty() {
            let opts = crate::tune::tuner::TuneOptions {
                top_k: 10,
                warmup: 3,
                reps: 30,
                seed: 7,
                jobs: toolchain::jobs(&self.env)?,
                nvcc: nvcc.to_path_buf(),
                work_dir: dir.join("work"),
                check: crate::search::crosscheck::CrossCheckOptions::default(),
                // Stale entries (another prism or nvcc) still name good
                // instances: timed again beside the model's top 10.
                incumbents: combined.choices(),
            };
            let tuned = crate::tune::tuner::tune_spec(spec, &missing, &opts, &|_| {})?;
            let fresh = tuned_entries(spec, &tuned, release);
            let cache = merge(spec, release, &fresh, cached.as_ref());
            create_dir(&dir)?;
            cache.write(&cache_path)?;
            combined = merge(
                spec,
                release,
                &lock.as_ref().map(|l| l.entries.clone()).unwrap_or_default(),
                Some(&cache),
            );
        }
        if self
            .env
            .get_nonempty("PRISM_UPDATE_LOCK")
            .is_some_and(|v| v != "0")
        {
            combined.write(&path_for(&self.toml))?;
        }
        Ok(combined)
    }

    /// Architectures from [`Build::arch`], else `CUDA_COMPUTE_CAP`, else
    /// `None` (keep `[target] arch`).
    fn arch_override(&self) -> Result<Option<Vec<Arch>>, BuildError> {
        if !self.archs.is_empty() {
            let mut out: Vec<Arch> = Vec::new();
            for a in &self.archs {
                for parsed in arch::parse_list(a).map_err(|message| BuildError::Arch {
                    origin: "Build::arch",
                    value: a.clone(),
                    message,
                })? {
                    if !out.contains(&parsed) {
                        out.push(parsed);
                    }
                }
            }
            return Ok(Some(out));
        }
        match self.env.get_nonempty("CUDA_COMPUTE_CAP") {
            None => Ok(None),
            Some(v) => {
                let value = v.to_string_lossy().into_owned();
                arch::parse_list(&value)
                    .map(Some)
                    .map_err(|message| BuildError::Arch {
                        origin: "CUDA_COMPUTE_CAP",
                        value,
                        message,
                    })
            }
        }
    }

    /// Code for every workload; all failures are reported together.
    /// Generate every workload, in parallel (rayon), in declaration order.
    fn generate(
        &self,
        spec: &Spec,
        cache: Option<&crate::search::cache::Cache>,
    ) -> Result<Vec<WorkloadKernels>, BuildError> {
        use rayon::prelude::*;
        let results: Vec<_> = spec
            .workloads
            .par_iter()
            .map(|w| match &self.codegen {
                Some(f) => f(w, &spec.target),
                None => crate::codegen::generate_cached(w, &spec.target, cache),
            })
            .collect();
        let mut kernels = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(k) => kernels.push(k),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(kernels)
        } else {
            Err(BuildError::Codegen(errors))
        }
    }
}

fn load_spec(path: &Path) -> Result<Spec, BuildError> {
    crate::frontend::load(path).map_err(|e| match e {
        crate::Error::Read { path, source } => BuildError::Read { path, source },
        crate::Error::Invalid(report) => BuildError::Invalid {
            path: report.path.clone(),
            rendered: report.render(false),
        },
        other => BuildError::Invalid {
            path: path.display().to_string(),
            rendered: format!("{other}\n"),
        },
    })
}

/// `cache` when its folder can be created and written; otherwise `None` and
/// a warning: the search cache only saves time, so a build without it is
/// slower, not wrong.
fn usable_cache(
    cache: crate::search::cache::Cache,
    warnings: &mut Vec<String>,
) -> Option<crate::search::cache::Cache> {
    let probe = cache
        .dir()
        .join(format!(".prism-write-probe-{}", std::process::id()));
    let writable = std::fs::create_dir_all(cache.dir())
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe));
    match writable {
        Ok(()) => Some(cache),
        Err(e) => {
            warnings.push(format!(
                "prism: the search cache {} cannot be written ({e}), so every build searches \
                 again; make it a writable directory (or remove what stands in its place)",
                cache.dir().display()
            ));
            None
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|source| BuildError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Write `text` unless the file already holds it (keeps mtimes stable).
fn write_if_changed(path: &Path, text: &str) -> Result<(), BuildError> {
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `cargo::error=` lines for `e`: one per message line (cargo takes one line
/// per directive), the first saying it comes from prism.
///
/// [`Build::run`] prints these; a build script that calls [`Build::try_run`]
/// to handle some errors itself can print them for the rest.
///
/// ```
/// let err = prism::BuildError::NoOutDir;
/// let lines = prism::build::cargo_error_lines(&err);
/// assert_eq!(
///     lines,
///     [
///         "cargo::error=prism[no-out-dir]: OUT_DIR is not set",
///         "cargo::error=hint: prism::Build runs from a build script (build.rs), \
///          where cargo sets OUT_DIR; elsewhere call .out_dir(..)",
///     ]
/// );
/// ```
pub fn cargo_error_lines(e: &BuildError) -> Vec<String> {
    let text = format!("prism[{}]: {e}", e.code());
    text.trim_end()
        .lines()
        .map(|l| format!("cargo::error={}", l.trim_end()))
        .collect()
}
