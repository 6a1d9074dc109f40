//! `prism bench`: time, on this machine's GPU, the kernels a build would
//! embed, under triton `do_bench` discipline, next to the device's floors.
//!
//! Per workload the build's resolution ([`crate::tune::resolve::resolve`]:
//! prism.lock's choices, the cost model's where the lock has none) is
//! generated and compiled for the device's arch; per declared point (the
//! largest point when none is declared) the variant the generated runtime
//! would dispatch to ([`variant_for`]) runs once for its outputs (checked
//! against the CPU reference interpreter when cheap, else for finiteness),
//! then [`WARMUP`] times untimed and `reps` times timed: a 256 MiB buffer
//! zeroed before every launch ([`FLUSH_BYTES`], as `do_bench` does), CUDA
//! events around the workload's launches. The floors ([`floors`]: copy
//! bandwidth, `mma.sync` peak, empty-launch time) are measured in the same
//! run by the probes ([`probes`]), and each row gets its roofline.

pub mod floors;
pub mod probes;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::codegen::{ArchDispatch, WorkloadKernels};
use crate::ir::{Arch, DType, DimBindings, Spec, Workload};
use crate::reference::{Precision, Tensor, compare_outputs};
use crate::tune::buckets::{bucket_of, buckets};
use crate::tune::gpu::{Device, GpuError};
use crate::tune::lock::Lock;
use crate::tune::resolve::{Choice, Origin};
use floors::Floors;

/// Bytes zeroed before every timed launch (triton `do_bench`'s cache
/// buffer), far above any L2.
pub const FLUSH_BYTES: usize = 256 << 20;
/// Untimed launches before the timed ones.
pub const WARMUP: usize = 10;
/// Timed launches per row unless `--reps` says otherwise.
pub const DEFAULT_REPS: usize = 100;
/// Seed of the random inputs.
pub const SEED: u64 = 7;

/// Why `prism bench` could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(
        "prism bench needs an NVIDIA GPU and its driver (libcuda), and this machine has {0}\nhint: run it on a machine with a GPU; `prism build` and `prism tune --check` need none"
    )]
    NoGpu(String),
    #[error("{toml} has no workload `{name}`\nhint: its workloads are: {known}")]
    UnknownWorkload {
        toml: String,
        name: String,
        known: String,
    },
    #[error("--reps must be at least 1")]
    NoReps,
    #[error(
        "the GPU {device} (sm_{capability}) runs none of the target architectures ({targets})\nhint: add its arch to `[target] arch` in the prism.toml"
    )]
    NoTargetArch {
        device: String,
        capability: u32,
        targets: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Nvcc(#[from] crate::nvcc::NvccError),
    #[error(transparent)]
    Compile(#[from] crate::tune::tuner::TuneError),
    #[error(transparent)]
    Lock(#[from] crate::tune::lock::LockError),
    #[error(transparent)]
    Resolve(#[from] crate::tune::resolve::ResolveError),
    #[error(transparent)]
    Codegen(#[from] crate::codegen::CodegenError),
    #[error("GPU: {0}")]
    Gpu(#[from] GpuError),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a row's kernel choice came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChoiceSource {
    /// prism.lock's entry, timed on a GPU by `prism tune`.
    Measured,
    /// The cost model's choice (a model entry of the lock, or none).
    Model,
}

/// How a row's outputs were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checked {
    /// Against the CPU reference interpreter (relative L2 within the
    /// workload's tolerance, no non-finite mismatches).
    Cpu,
    /// Too large for the CPU reference ([`floors::cpu_checkable`]): every
    /// output element finite.
    Finite,
}

/// One (workload, point).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub workload: String,
    pub dims: BTreeMap<String, i64>,
    /// The variant's label (the tuned instance).
    pub variant: String,
    pub source: ChoiceSource,
    /// Kernels launched per call.
    pub kernels: usize,
    /// Over the timed launches, µs (`None` when it could not run).
    pub median_us: Option<f64>,
    pub min_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub samples: usize,
    /// Input plus output bytes ([`floors::bytes_at`]).
    pub bytes: u64,
    /// 2·M·N·K over the matmuls ([`floors::flops_at`]).
    pub flops: u64,
    pub roofline_us: f64,
    /// `roofline_us` + the launch floor.
    pub limit_us: f64,
    /// `median_us / limit_us`.
    pub over_limit: Option<f64>,
    /// A bare read of `bytes` (L2 evict_first, every SM) under the same
    /// flush and timing, launch included: what moving the row's bytes costs
    /// right after the flush leaves L2 full of dirty lines
    /// ([`probes::ReadProbe`]). `None` when it could not run.
    #[serde(default)]
    pub read_floor_us: Option<f64>,
    /// `median_us / read_floor_us`.
    #[serde(default)]
    pub over_read_floor: Option<f64>,
    pub checked: Checked,
    /// Largest relative L2 error of an output against the CPU reference
    /// (`None` unless `checked` is `cpu`).
    pub max_error: Option<f64>,
    /// Why the row failed (a wrong output, a launch error); `None` when it
    /// passed.
    pub error: Option<String>,
}

/// The whole run: what `--json` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub prism: String,
    pub toml: String,
    pub device: String,
    pub capability: u32,
    pub sms: Option<u32>,
    pub arch: String,
    pub nvcc: String,
    pub reps: usize,
    pub warmup: usize,
    pub flush_bytes: usize,
    pub copy_bytes_per_s: f64,
    pub mma_flops_per_s: f64,
    /// What `mma_flops_per_s` is ([`probes::MMA_NOTE`]).
    pub mma_note: String,
    pub launch_floor_us: f64,
    pub rows: Vec<Row>,
}

impl Report {
    /// Whether some row failed.
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.error.is_some())
    }
}

/// What to bench.
#[derive(Clone, Debug)]
pub struct Options {
    /// The prism.toml (its lock is next to it).
    pub toml: PathBuf,
    /// Only these workloads (all when empty).
    pub workloads: Vec<String>,
    pub reps: usize,
    pub warmup: usize,
    /// Where `.cu` files and fatbins go ([`default_work_dir`]).
    pub work_dir: PathBuf,
}

/// `target/prism/bench` next to the prism.toml.
pub fn default_work_dir(toml: &Path) -> PathBuf {
    toml.parent()
        .unwrap_or_else(|| Path::new("."))
        .join("target")
        .join("prism")
        .join("bench")
}

/// The points a workload is benched at: its declared points, else its
/// largest point. (Without `points` the front end fills in the ranges'
/// corners and middles, [`crate::frontend::config::default_points`]; those
/// count as undeclared.)
pub fn points(w: &Workload) -> Vec<DimBindings> {
    if w.points.is_empty() || w.points == crate::frontend::config::default_points(&w.dims) {
        vec![w.max_point()]
    } else {
        w.points.clone()
    }
}

/// Median, minimum and 90th percentile (linear interpolation between
/// order statistics, as `torch.quantile`) of `v`; `None` when empty.
pub fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |q: f64| {
        let x = q * (s.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        s[lo] + (s[hi] - s[lo]) * (x - lo as f64)
    };
    Some((q(0.5), s[0], q(0.9)))
}

/// The dispatch table a device of `capability` uses, as the generated
/// runtime chooses it: the newest architecture not newer than the device,
/// else the oldest.
pub fn dispatch_for(dispatch: &[ArchDispatch], capability: u32) -> Option<&ArchDispatch> {
    dispatch
        .iter()
        .filter(|t| t.capability <= capability)
        .max_by_key(|t| t.capability)
        .or_else(|| dispatch.iter().min_by_key(|t| t.capability))
}

/// The variant the generated runtime launches at `dims` on a device of
/// `capability`: the first entry of its table holding the dims (in
/// [`WorkloadKernels::dims`] order), else variant 0.
pub fn variant_for(k: &WorkloadKernels, capability: u32, dims: &DimBindings) -> usize {
    let values: Vec<i64> = k
        .dims
        .iter()
        .map(|d| dims.get(d).copied().unwrap_or(1))
        .collect();
    let v = dispatch_for(&k.dispatch, capability)
        .and_then(|t| {
            t.entries.iter().find(|e| {
                e.ranges.len() == values.len()
                    && e.ranges
                        .iter()
                        .zip(&values)
                        .all(|((lo, hi), v)| (lo..=hi).contains(&v))
            })
        })
        .map_or(0, |e| e.variant);
    if v < k.variants.len() { v } else { 0 }
}

/// Where the choice of `arch` for the bucket holding `dims` came from.
pub fn source_of(w: &Workload, choices: &[Choice], arch: &str, dims: &DimBindings) -> ChoiceSource {
    let label = bucket_of(w, dims)
        .and_then(|i| buckets(w).get(i).map(|b| b.label()))
        .unwrap_or_default();
    match choices
        .iter()
        .find(|c| c.arch == arch && c.bucket == label)
        .map(|c| &c.origin)
    {
        Some(Origin::Lock(crate::tune::lock::Source::Measured)) => ChoiceSource::Measured,
        _ => ChoiceSource::Model,
    }
}

/// One workload as a build resolves it, compiled for the device's arch.
pub struct Prepared {
    pub workload: Workload,
    pub kernels: WorkloadKernels,
    pub choices: Vec<Choice>,
    pub fatbin: PathBuf,
    /// Choices whose lock entry was missing or stale (the model's now).
    pub untuned: usize,
}

/// What [`prepare`] needs besides the workload.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub lock: Option<&'a Lock>,
    /// The lock's path, for messages.
    pub lock_name: &'a str,
    /// nvcc's release (part of the lock's keys).
    pub release: &'a str,
    pub nvcc: &'a Path,
    /// The device's target arch.
    pub arch: &'a Arch,
    /// The work directory.
    pub dir: &'a Path,
}

/// Resolve `w` as a build does (not offline), generate its `.cu` and
/// compile it for the setup's arch into its directory.
pub fn prepare(s: &Setup<'_>, w: &Workload) -> Result<Prepared, BenchError> {
    let (spec, arch, dir, nvcc) = (s.spec, s.arch, s.dir, s.nvcc);
    let command = format!("prism tune {}", spec.source_name);
    let res =
        crate::tune::resolve::resolve(spec, w, s.lock, s.release, false, s.lock_name, &command)?;
    let untuned = res.problems().count();
    let crate::tune::resolve::Resolution {
        variants,
        dispatch,
        choices,
    } = res;
    let kernels = crate::codegen::cuda::generate_variants(w, &variants, dispatch)?;
    let fatbin = crate::tune::tuner::compile_source(nvcc, dir, arch, &w.name, &kernels.source)?;
    Ok(Prepared {
        workload: w.clone(),
        kernels,
        choices,
        fatbin,
        untuned,
    })
}

/// Compare `got` with the CPU reference's `want` output by output: the
/// largest relative L2 error, or why they disagree.
pub fn check_cpu(got: &[Tensor], want: &[Tensor], tolerance: f64) -> (f64, Option<String>) {
    compare_outputs(got, want, tolerance, "the CPU reference")
}

/// `Some(why)` when an output holds a NaN or an infinity.
pub fn check_finite(got: &[Tensor]) -> Option<String> {
    got.iter().enumerate().find_map(|(j, t)| {
        let bad = t.data.iter().filter(|v| !v.is_finite()).count();
        (bad > 0).then(|| format!("output {j} has {bad} non-finite elements"))
    })
}

/// The row of `dims` before it runs, with the variant the device of
/// `capability` dispatches to: where that choice came from, how the outputs
/// will be checked, the point's floors; no times yet.
fn planned_row(
    p: &Prepared,
    capability: u32,
    arch: &Arch,
    dims: &DimBindings,
    floors: &Floors,
) -> (usize, Row) {
    let w = &p.workload;
    let v = variant_for(&p.kernels, capability, dims);
    let source = source_of(w, &p.choices, &arch_table_name(p, capability, arch), dims);
    let checked = if floors::cpu_checkable(w, dims).unwrap_or(false) {
        Checked::Cpu
    } else {
        Checked::Finite
    };
    let bytes = floors::bytes_at(w, dims).unwrap_or(0);
    let flops = floors::flops_at(w, dims).unwrap_or(0);
    let variant = &p.kernels.variants[v];
    let row = Row {
        workload: w.name.clone(),
        dims: dims.clone(),
        variant: variant.label.clone(),
        source,
        kernels: variant.launches.len(),
        median_us: None,
        min_us: None,
        p90_us: None,
        samples: 0,
        bytes,
        flops,
        roofline_us: floors.roofline_us(bytes, flops),
        limit_us: floors.limit_us(bytes, flops),
        over_limit: None,
        read_floor_us: None,
        over_read_floor: None,
        checked,
        max_error: None,
        error: None,
    };
    (v, row)
}

/// Bench one point of a prepared workload on `dev` (module loaded).
#[allow(clippy::too_many_arguments)]
pub fn bench_point(
    dev: &Device,
    module: &crate::tune::gpu::Module,
    p: &Prepared,
    arch: &Arch,
    dims: &DimBindings,
    floors: &Floors,
    warmup: usize,
    reps: usize,
) -> Row {
    let w = &p.workload;
    let (v, mut row) = planned_row(p, dev.capability, arch, dims, floors);
    let cpu = row.checked == Checked::Cpu;
    let host = match crate::reference::random_inputs(w, dims, SEED) {
        Ok(h) => h,
        Err(e) => {
            row.error = Some(format!("inputs: {e}"));
            return row;
        }
    };
    let typed: Vec<(&Tensor, DType)> = host
        .iter()
        .zip(&w.graph.inputs)
        .map(|(t, i)| (t, i.dtype))
        .collect();
    let run = dev
        .upload(&typed)
        .and_then(|inputs| dev.run(module, v, dims, &inputs, warmup, reps));
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    if let Some((median, min, p90)) = stats(&run.micros) {
        row.median_us = Some(median);
        row.min_us = Some(min);
        row.p90_us = Some(p90);
        row.over_limit = Some(median / row.limit_us);
    }
    row.samples = run.micros.len();
    if cpu {
        match crate::reference::eval(&w.graph, dims, &host, Precision::Declared) {
            Ok(want) => {
                let (err, why) = check_cpu(&run.outputs, &want, w.tolerance);
                row.max_error = Some(err);
                row.error = why;
            }
            Err(e) => row.error = Some(format!("CPU reference: {e}")),
        }
    } else {
        row.error = check_finite(&run.outputs);
    }
    row
}

/// The arch name of the dispatch table the device uses (falling back to
/// the compiled arch when the workload has no tables).
fn arch_table_name(p: &Prepared, capability: u32, arch: &Arch) -> String {
    dispatch_for(&p.kernels.dispatch, capability)
        .map_or_else(|| arch.to_string(), |t| t.arch.clone())
}

/// Progress of a run, for a bar or a log.
pub trait Progress: Sync {
    /// A phase starts (`preparing`, `probes`).
    fn phase(&self, _what: &str) {}
    /// The number of rows to come, known after preparing.
    fn rows(&self, _total: usize) {}
    /// A row is done.
    fn row(&self, _row: &Row) {}
    /// Something the user should know (untuned choices).
    fn warn(&self, _message: &str) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

/// Check the options against `spec` and that a GPU is present: the
/// user's errors come first, then the machine's.
pub fn preflight(spec: &Spec, o: &Options) -> Result<(), BenchError> {
    if let Some(name) = o.workloads.iter().find(|n| spec.workload(n).is_none()) {
        return Err(BenchError::UnknownWorkload {
            toml: spec.source_name.clone(),
            name: name.clone(),
            known: spec
                .workloads
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    if o.reps == 0 {
        return Err(BenchError::NoReps);
    }
    // SAFETY: only tries to open the driver library.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(BenchError::NoGpu("no CUDA driver library".into()));
    }
    if crate::tune::gpu::device_count() == 0 {
        return Err(BenchError::NoGpu("no GPU the driver can see".into()));
    }
    Ok(())
}

/// Bench `spec` on GPU 0.
pub fn run(spec: &Spec, o: &Options, progress: &dyn Progress) -> Result<Report, BenchError> {
    preflight(spec, o)?;
    let nvcc = crate::nvcc::find()?;
    let release = crate::nvcc::version(&nvcc)?;
    let dev = Device::open_with_flush(0, Some(FLUSH_BYTES))?;
    let arch =
        crate::tune::tuner::arch_for(&spec.target.archs, dev.capability).ok_or_else(|| {
            BenchError::NoTargetArch {
                device: dev.name.clone(),
                capability: dev.capability,
                targets: spec
                    .target
                    .archs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?;
    let lock_path = crate::tune::lock::path_for(&o.toml);
    let lock = Lock::read(&lock_path)?;
    let lock_name = lock_path.display().to_string();

    progress.phase("resolving and compiling");
    let workloads: Vec<&Workload> = spec
        .workloads
        .iter()
        .filter(|w| o.workloads.is_empty() || o.workloads.contains(&w.name))
        .collect();
    let setup = Setup {
        spec,
        lock: lock.as_ref(),
        lock_name: &lock_name,
        release: &release,
        nvcc: &nvcc,
        arch: &arch,
        dir: &o.work_dir,
    };
    let probe_dir = o.work_dir.join(arch.to_string());
    let (prepared, probes) = rayon::join(
        || {
            workloads
                .par_iter()
                .map(|w| prepare(&setup, w))
                .collect::<Vec<_>>()
        },
        || probes::compile(&nvcc, &probe_dir, &arch),
    );
    let prepared: Vec<Prepared> = prepared.into_iter().collect::<Result<_, _>>()?;
    let probes_fatbin = probes?;
    for p in prepared.iter().filter(|p| p.untuned > 0) {
        progress.warn(&format!(
            "workload `{}`: {} of {} kernel choices are the cost model's ({} lacks fresh entries); those rows say source \"model\"",
            p.workload.name,
            p.untuned,
            p.choices.len(),
            lock_name
        ));
    }

    progress.phase("measuring the floors");
    let floors = probes::measure(&dev, &probes_fatbin, o.warmup, o.reps)?;

    // The read floor's buffer: the largest row's bytes.
    let most_bytes = prepared
        .iter()
        .flat_map(|p| {
            points(&p.workload)
                .into_iter()
                .map(|d| floors::bytes_at(&p.workload, &d).unwrap_or(0))
        })
        .max()
        .unwrap_or(0);
    let read_probe = match probes::ReadProbe::load(&dev, &probes_fatbin, most_bytes) {
        Ok(r) => Some(r),
        Err(e) => {
            progress.warn(&format!("no read floors: {e}"));
            None
        }
    };

    progress.rows(prepared.iter().map(|p| points(&p.workload).len()).sum());
    let mut rows = Vec::new();
    for p in &prepared {
        let module = match dev.load(&p.fatbin, &p.kernels) {
            Ok(m) => m,
            Err(e) => {
                for dims in points(&p.workload) {
                    let (_, mut row) = planned_row(p, dev.capability, &arch, &dims, &floors);
                    row.error = Some(format!("cannot load the fatbin: {e}"));
                    progress.row(&row);
                    rows.push(row);
                }
                continue;
            }
        };
        for dims in points(&p.workload) {
            let mut row = bench_point(&dev, &module, p, &arch, &dims, &floors, o.warmup, o.reps);
            if let Some(probe) = &read_probe {
                match probe.floor_us(&dev, row.bytes, o.warmup, o.reps) {
                    Ok(us) => {
                        row.read_floor_us = Some(us);
                        row.over_read_floor = row.median_us.map(|m| m / us);
                    }
                    Err(e) => progress.warn(&format!("{}: no read floor: {e}", row.workload)),
                }
            }
            progress.row(&row);
            rows.push(row);
        }
    }
    Ok(Report {
        tool: "prism bench".into(),
        prism: env!("CARGO_PKG_VERSION").into(),
        toml: o.toml.display().to_string(),
        device: dev.name.clone(),
        capability: dev.capability,
        sms: dev.sms,
        arch: arch.to_string(),
        nvcc: release,
        reps: o.reps,
        warmup: o.warmup,
        flush_bytes: dev.flush_bytes(),
        copy_bytes_per_s: floors.copy_bytes_per_s,
        mma_flops_per_s: floors.mma_flops_per_s,
        mma_note: probes::MMA_NOTE.into(),
        launch_floor_us: floors.launch_floor_us,
        rows,
    })
}
