//! Autotuning: per workload and shape bucket, the cost model ranks the
//! verified instances, the best `top_k` are compiled (in parallel) and
//! timed on the GPU, each checked against the reference on the GPU first,
//! and the fastest correct one is chosen.
//!
//! The reference on the GPU is the direct lowering (one kernel per
//! operator), run on the same inputs; it is itself checked against the CPU
//! interpreter at the workload's smallest bucket, so a wrong-but-fast
//! kernel never wins. Every GPU of the machine tunes workloads in
//! parallel (one thread per device).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use super::buckets::{ShapeBucket, bucket_of, buckets};
use super::cost::estimate;
use super::gpu::{Device, GpuError};
use super::instances::{Instance, InstanceError, instances};
use crate::codegen::cuda::generate_variants;
use crate::ir::hardware::Hardware;
use crate::ir::{Arch, DimBindings, Spec, Workload};
use crate::reference::{Precision, Tensor, compare_outputs};
use crate::search::crosscheck::CrossCheckOptions;
use crate::ugraph::KernelGraph;
use crate::ugraph::lower::{LowerOptions, lower};

/// How to tune.
#[derive(Clone, Debug)]
pub struct TuneOptions {
    /// Instances timed per bucket (the cost model's best).
    pub top_k: usize,
    pub warmup: usize,
    /// Timed launches per instance (fewer for slow ones, see [`reps_for`]).
    pub reps: usize,
    pub seed: u64,
    /// nvcc processes at a time.
    pub jobs: usize,
    pub nvcc: PathBuf,
    /// Where `.cu` and fatbins go.
    pub work_dir: PathBuf,
    pub check: CrossCheckOptions,
    /// What the lock chose before, per (workload, bucket label, arch):
    /// the instance label. Timed besides the top-k, so that a re-tune
    /// (at a smaller top-k, or after new instances pushed it down the
    /// model's ranking) never loses a choice it cannot see.
    pub incumbents: std::collections::BTreeMap<(String, String, String), String>,
}

/// One timed instance of a bucket.
#[derive(Clone, Debug, Serialize)]
pub struct Timed {
    pub instance: String,
    /// Fingerprint of its graph.
    pub graph: String,
    /// The cost model's estimate, µs.
    pub model_micros: f64,
    /// Median measured time at the bucket's top, µs (`None` when it
    /// failed).
    pub micros: Option<f64>,
    /// Median times at the declared points inside the bucket
    /// ([`BucketResult::extra_points`] order).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_micros: Vec<f64>,
    /// Why it was rejected (wrong outputs, launch failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of one (workload, bucket, arch).
#[derive(Clone, Debug, Serialize)]
pub struct BucketResult {
    pub workload: String,
    pub bucket: String,
    pub arch: String,
    pub device: String,
    pub point: DimBindings,
    /// Declared points inside the bucket, also timed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_points: Vec<DimBindings>,
    /// Verified instances the model ranked.
    pub instances: usize,
    /// In the model's order.
    pub timed: Vec<Timed>,
    /// Index into `timed` of the fastest correct one.
    pub chosen: Option<usize>,
    /// Spearman's rank correlation between the model's estimates and the
    /// measured times of the correct timed instances (`None` below 3).
    pub spearman: Option<f64>,
    /// The reference's (direct lowering) time, µs.
    pub reference_micros: Option<f64>,
    /// The workload's roofline floor at the point on this arch: its
    /// program's input and output bytes over DRAM bandwidth, µs.
    pub roofline_micros: f64,
}

impl BucketResult {
    pub fn chosen(&self) -> Option<&Timed> {
        self.chosen.and_then(|i| self.timed.get(i))
    }

    /// The model's first choice (what an untuned build runs).
    pub fn model_choice(&self) -> Option<&Timed> {
        self.timed.first()
    }
}

/// Why tuning failed.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    /// A workload has no verified instance to tune.
    #[error(transparent)]
    Instances(#[from] InstanceError),
    /// A workload could not be tuned (e.g. the reference kernel disagrees
    /// with the CPU interpreter).
    #[error("workload `{workload}`: {message}")]
    Workload {
        /// The workload.
        workload: String,
        /// What went wrong.
        message: String,
    },
    /// A GPU step (driver, loading, launching) failed.
    #[error("GPU {ordinal}: {source}")]
    Gpu {
        /// The GPU's ordinal.
        ordinal: usize,
        /// What failed.
        #[source]
        source: GpuError,
    },
    /// No GPU here has an architecture of `[target] arch`.
    #[error("no GPU of a target architecture here: the GPUs are {found}, the targets {targets}")]
    NoTargetGpu {
        /// The GPUs present.
        found: String,
        /// The target architectures.
        targets: String,
    },
    /// nvcc could not compile the candidates.
    #[error(transparent)]
    Nvcc(#[from] crate::nvcc::NvccError),
    /// A file of the tuner's work directory cannot be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },
}

/// Spearman's ρ of two equally long samples (average ranks for ties);
/// `None` below 3 points or when a sample is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 3 {
        return None;
    }
    let ranks = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0;
            for &k in &idx[i..=j] {
                r[k] = avg;
            }
            i = j + 1;
        }
        r
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// Measured times within this fraction of the fastest count as ties.
pub const NOISE: f64 = 0.01;

/// The chosen instance of a bucket: the correct instance with the least
/// total of its times relative to the fastest at each timed point (the
/// bucket's top and the declared points inside it), the first in the
/// model's order among those within [`NOISE`] of that least (so run-to-run
/// noise does not flip a choice the model already got right).
pub fn choose(timed: &[Timed]) -> Option<usize> {
    let times = |t: &Timed| -> Option<Vec<f64>> {
        let mut v = vec![t.micros?];
        v.extend(&t.extra_micros);
        Some(v)
    };
    let ok: Vec<(usize, Vec<f64>)> = timed
        .iter()
        .enumerate()
        .filter_map(|(i, t)| times(t).map(|v| (i, v)))
        .collect();
    let points = ok.iter().map(|(_, v)| v.len()).min()?;
    let best: Vec<f64> = (0..points)
        .map(|p| ok.iter().map(|(_, v)| v[p]).fold(f64::INFINITY, f64::min))
        .collect();
    let score = |v: &[f64]| -> f64 { (0..points).map(|p| v[p] / best[p]).sum() };
    let least = ok
        .iter()
        .map(|(_, v)| score(v))
        .fold(f64::INFINITY, f64::min);
    ok.iter()
        .find(|(_, v)| score(v) <= least * (1.0 + NOISE))
        .map(|(i, _)| *i)
}

/// Timed launches for an instance the model estimates at `micros`: `reps`,
/// fewer for slow ones (at least 10).
pub fn reps_for(reps: usize, micros: f64) -> usize {
    if micros > 500.0 {
        (reps / 2).max(10)
    } else {
        reps
    }
}

/// The model's order of ranked instances `(index, estimate)`: cheapest
/// first, ties to the earlier instance.
fn rank_order(a: &(usize, f64), b: &(usize, f64)) -> std::cmp::Ordering {
    a.1.total_cmp(&b.1).then(a.0.cmp(&b.0))
}

/// The verified instances that run on `arch` ([`super::tiles::runs_on`])
/// ranked by the model at `point` on `hw`: indices into `insts` and
/// estimates, cheapest first (ties: the earlier one).
pub fn rank(
    insts: &[Instance],
    point: &DimBindings,
    hw: &Hardware,
    arch: &Arch,
) -> Vec<(usize, f64)> {
    let mut r: Vec<(usize, f64)> = insts
        .iter()
        .enumerate()
        .filter(|(_, x)| super::tiles::runs_on(&x.graph, arch))
        .map(|(i, x)| (i, estimate(&x.graph, point, hw).micros))
        .collect();
    r.sort_by(rank_order);
    r
}

/// The first `k` of `ranked` (best first), taking one instance per
/// kernel count and parameter setting (split count, tiles, flash rows,
/// combine, warpgroup MMA) before a second: candidates whose kernels differ only in how their
/// epilogue is written time alike, and would otherwise crowd the shortlist
/// with one tile shape, while a graph of another kernel count (LoRA's
/// x·A in a kernel of its own) is another schedule worth timing at the
/// best tiles. Kept in rank order.
pub fn shortlist(insts: &[Instance], ranked: Vec<(usize, f64)>, k: usize) -> Vec<(usize, f64)> {
    let mut seen = std::collections::BTreeSet::new();
    let (mut first, mut rest): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
    for (i, t) in ranked {
        let id = insts[i].id;
        let kernels = insts[i].graph.kernels.len();
        let setting = (id.splits, id.tiles, id.rows, id.fused, id.cluster, id.wgmma);
        if seen.insert((kernels, setting)) {
            first.push((i, t));
        } else {
            rest.push((i, t));
        }
    }
    let mut out: Vec<(usize, f64)> = first.into_iter().take(k).collect();
    let room = k.saturating_sub(out.len());
    out.extend(rest.into_iter().take(room));
    out.sort_by(rank_order);
    out
}

/// `list` (a shortlist of `ranked`) with the instance labelled `incumbent`
/// added when `ranked` has it (it runs on the arch) and `list` does not:
/// the lock's earlier choice is always timed again. Rank order kept.
pub fn with_incumbent(
    insts: &[Instance],
    ranked: &[(usize, f64)],
    mut list: Vec<(usize, f64)>,
    incumbent: Option<&str>,
) -> Vec<(usize, f64)> {
    let Some(id) = incumbent.and_then(super::instances::InstanceId::parse) else {
        return list;
    };
    let found = ranked.iter().find(|(i, _)| insts[*i].id == id);
    if let Some(&(i, t)) = found.filter(|(i, _)| !list.iter().any(|(j, _)| j == i)) {
        list.push((i, t));
        list.sort_by(rank_order);
    }
    list
}

/// The hardware description of `arch` in `spec` (the first one when the
/// arch has none).
pub fn hardware_for<'a>(spec: &'a Spec, arch: &Arch) -> Option<&'a Hardware> {
    spec.target
        .hardware
        .iter()
        .find(|t| t.arch == *arch)
        .or(spec.target.hardware.first())
        .map(|t| &t.hardware)
}

/// The program's own input and output bytes at `p` over DRAM bandwidth:
/// no schedule moves less.
fn roofline(w: &Workload, p: &DimBindings, hw: &Hardware) -> f64 {
    let bytes = |shape: &[crate::ir::DimExpr], dtype: crate::ir::DType| -> f64 {
        let n: i64 = shape
            .iter()
            .map(|e| e.eval(p).unwrap_or(1).max(1))
            .product();
        n as f64 * dtype.size() as f64
    };
    let mut total: f64 = w
        .graph
        .inputs
        .iter()
        .map(|i| bytes(&i.shape, i.dtype))
        .sum();
    for o in &w.graph.outputs {
        let n = w.graph.node(o.node);
        total += bytes(&n.shape, n.dtype);
    }
    total / (hw.dram_gbps * 1e3)
}

/// The first `numel(shape at p)` elements of a tensor generated at a larger
/// point: what a kernel reading the same buffer at `p` sees.
fn prefix(t: &Tensor, shape: Vec<usize>) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor {
        data: t.data[..n.min(t.data.len())].to_vec(),
        shape,
    }
}

/// What one workload needs on the GPU: its instances, per bucket the
/// model's ranking, and the compiled fatbin of the timed ones.
pub struct Prepared {
    pub workload: Workload,
    pub instances: Vec<Instance>,
    pub buckets: Vec<ShapeBucket>,
    /// Per bucket: the ranked instances (indices into `instances`) to
    /// time, with estimates.
    pub ranked: Vec<Vec<(usize, f64)>>,
    /// Variant index in the fatbin of every instance compiled (by instance
    /// index), and the reference's.
    pub variant_of: Vec<Option<usize>>,
    pub reference_variant: usize,
    pub kernels: crate::codegen::WorkloadKernels,
    pub fatbin: PathBuf,
}

/// Instances, ranking and compilation of one workload for `arch` on `hw`.
pub fn prepare(
    w: &Workload,
    arch: &Arch,
    hw: &Hardware,
    opts: &TuneOptions,
) -> Result<Prepared, TuneError> {
    let fits = |g: &KernelGraph| crate::codegen::cuda::fits(w, g);
    let insts = instances(w, &opts.check, &fits)?;
    let bs = buckets(w);
    let ranked: Vec<Vec<(usize, f64)>> = bs
        .iter()
        .map(|b| {
            let r = rank(&insts, &b.tuning_point(), hw, arch);
            let list = shortlist(&insts, r.clone(), opts.top_k.max(1));
            let key = (w.name.clone(), b.label(), arch.to_string());
            with_incumbent(
                &insts,
                &r,
                list,
                opts.incumbents.get(&key).map(String::as_str),
            )
        })
        .collect();
    let mut variant_of = vec![None; insts.len()];
    let mut variants: Vec<(String, KernelGraph)> = Vec::new();
    for r in &ranked {
        for &(i, _) in r {
            if variant_of[i].is_none() {
                variant_of[i] = Some(variants.len());
                variants.push((insts[i].id.label(), insts[i].graph.clone()));
            }
        }
    }
    let reference = lower(w, &LowerOptions::direct()).map_err(|e| TuneError::Workload {
        workload: w.name.clone(),
        message: e.to_string(),
    })?;
    let reference_variant = variants.len();
    variants.push(("reference".into(), reference));
    let kernels = generate_variants(w, &variants, Vec::new()).map_err(|e| TuneError::Workload {
        workload: w.name.clone(),
        message: e.to_string(),
    })?;
    let fatbin = compile_source(&opts.nvcc, &opts.work_dir, arch, &w.name, &kernels.source)?;
    Ok(Prepared {
        workload: w.clone(),
        instances: insts,
        buckets: bs,
        ranked,
        variant_of,
        reference_variant,
        kernels,
        fatbin,
    })
}

/// Run variant `v` at `q`, compare its outputs with `want` (the
/// reference's), and return its median time, or why it was rejected.
#[allow(clippy::too_many_arguments)]
fn time_checked(
    dev: &Device,
    module: &super::gpu::Module,
    v: usize,
    q: &DimBindings,
    inputs: &[cudarc::driver::CudaSlice<u8>],
    want: &[Tensor],
    tolerance: f64,
    warmup: usize,
    reps: usize,
) -> Result<f64, String> {
    let run = dev
        .run(module, v, q, inputs, warmup, reps)
        .map_err(|e| e.to_string())?;
    check_outputs(&run.outputs, want, tolerance)?;
    Ok(run.median())
}

/// Write `source` (workload `name`'s `.cu`) to `work_dir/<arch>/`, the
/// device library to `work_dir/include`, and compile it for `arch` with
/// `nvcc`: the fatbin's path, beside the `.cu`.
pub fn compile_source(
    nvcc: &Path,
    work_dir: &Path,
    arch: &Arch,
    name: &str,
    source: &str,
) -> Result<PathBuf, TuneError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TuneError::Io { path, source }
    };
    let dir = work_dir.join(arch.to_string());
    let include = work_dir.join("include");
    for d in [&dir, &include] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    crate::device_library::write_to(&include).map_err(io(&include))?;
    let cu = dir.join(format!("{name}.cu"));
    let fatbin = dir.join(format!("{name}.fatbin"));
    std::fs::write(&cu, source).map_err(io(&cu))?;
    crate::nvcc::compile_fatbin(nvcc, &cu, &fatbin, &include, std::slice::from_ref(arch))?;
    Ok(fatbin)
}

/// `Err` naming the first output of `got` not within `tolerance` (relative
/// L2, no non-finite mismatches) of `want`'s.
fn check_outputs(got: &[Tensor], want: &[Tensor], tolerance: f64) -> Result<(), String> {
    match compare_outputs(got, want, tolerance, "the reference").1 {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// Time a prepared workload on `dev`; `progress` is called after each
/// bucket.
pub fn measure(
    p: &Prepared,
    dev: &Device,
    arch: &Arch,
    hw: &Hardware,
    opts: &TuneOptions,
    progress: &(dyn Fn(&BucketResult) + Sync),
) -> Result<Vec<BucketResult>, TuneError> {
    let w = &p.workload;
    let gpu = |source| TuneError::Gpu {
        ordinal: dev.ordinal,
        source,
    };
    let wl = |message: String| TuneError::Workload {
        workload: w.name.clone(),
        message,
    };
    let module = dev.load(&p.fatbin, &p.kernels).map_err(gpu)?;
    // Inputs generated once at the largest point; a smaller point reads a
    // prefix of each buffer.
    let top = w.max_point();
    let host =
        crate::reference::random_inputs(w, &top, opts.seed).map_err(|e| wl(e.to_string()))?;
    let typed: Vec<(&Tensor, crate::ir::DType)> = host
        .iter()
        .zip(&w.graph.inputs)
        .map(|(t, i)| (t, i.dtype))
        .collect();
    let inputs = dev.upload(&typed).map_err(gpu)?;
    let mut out = Vec::new();
    for (k, (bucket, ranked)) in p.buckets.iter().zip(&p.ranked).enumerate() {
        let point = bucket.tuning_point();
        let reference = dev
            .run(&module, p.reference_variant, &point, &inputs, 1, 5)
            .map_err(gpu)?;
        if k == 0 {
            // The GPU reference itself against the CPU interpreter.
            let mut at: Vec<Tensor> = Vec::new();
            for (t, i) in host.iter().zip(&w.graph.inputs) {
                let shape = i
                    .shape
                    .iter()
                    .map(|e| e.eval(&point).map(|v| v.max(1) as usize))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| wl(e.to_string()))?;
                at.push(prefix(t, shape));
            }
            let want = crate::reference::eval(&w.graph, &point, &at, Precision::Declared)
                .map_err(|e| wl(e.to_string()))?;
            check_outputs(&reference.outputs, &want, w.tolerance).map_err(|e| {
                wl(format!(
                    "the GPU reference disagrees with the CPU interpreter at {} ({e}); nothing was tuned",
                    bucket.label()
                ))
            })?;
        }
        // Declared points inside the bucket are timed too: the choice must
        // serve them, not only the bucket's top.
        let extra: Vec<DimBindings> = w
            .points
            .iter()
            .filter(|q| **q != point && bucket_of(w, q) == Some(k))
            .cloned()
            .collect();
        let mut extra_refs = Vec::new();
        for q in &extra {
            extra_refs.push(
                dev.run(&module, p.reference_variant, q, &inputs, 0, 0)
                    .map_err(gpu)?
                    .outputs,
            );
        }
        let mut timed = Vec::new();
        for &(i, est) in ranked {
            let Some(v) = p.variant_of[i] else { continue };
            let reps = reps_for(opts.reps, est);
            let mut t = Timed {
                instance: p.instances[i].id.label(),
                graph: crate::search::cache::graph_fingerprint(&p.instances[i].graph),
                model_micros: est,
                micros: None,
                extra_micros: Vec::new(),
                error: None,
            };
            if std::env::var_os("PRISM_TUNE_TRACE").is_some() {
                eprintln!("tune-trace {} {} {}", w.name, bucket.label(), t.instance);
            }
            let at =
                std::iter::once((&point, &reference.outputs)).chain(extra.iter().zip(&extra_refs));
            for (j, (q, want)) in at.enumerate() {
                match time_checked(
                    dev,
                    &module,
                    v,
                    q,
                    &inputs,
                    want,
                    w.tolerance,
                    opts.warmup,
                    reps,
                ) {
                    Ok(m) if j == 0 => t.micros = Some(m),
                    Ok(m) => t.extra_micros.push(m),
                    Err(e) => {
                        t.micros = None;
                        t.extra_micros.clear();
                        t.error = Some(format!("at {q:?}: {e}"));
                        break;
                    }
                }
            }
            timed.push(t);
        }
        let chosen = choose(&timed);
        let ok: Vec<&Timed> = timed.iter().filter(|t| t.micros.is_some()).collect();
        let spearman = spearman(
            &ok.iter().map(|t| t.model_micros).collect::<Vec<_>>(),
            &ok.iter().filter_map(|t| t.micros).collect::<Vec<_>>(),
        );
        let r = BucketResult {
            workload: w.name.clone(),
            bucket: bucket.label(),
            arch: arch.to_string(),
            device: dev.name.clone(),
            point: point.clone(),
            extra_points: extra,
            instances: p.instances.len(),
            timed,
            chosen,
            spearman,
            reference_micros: Some(reference.median()),
            roofline_micros: roofline(w, &point, hw),
        };
        progress(&r);
        out.push(r);
    }
    Ok(out)
}

/// The target arch a device of `capability` tunes: the newest target not
/// newer than it (`sm_XYa` only on X.Y exactly, `sm_XYf` within its
/// family; a plain older arch across families runs as PTX, JIT-compiled).
pub fn arch_for(archs: &[Arch], capability: u32) -> Option<Arch> {
    archs
        .iter()
        .filter(|a| match a.suffix.as_str() {
            "a" => a.capability == capability,
            "f" => a.capability <= capability && a.capability / 10 == capability / 10,
            _ => a.capability <= capability,
        })
        .max_by_key(|a| a.capability)
        .cloned()
}

/// Tune every workload of `spec` on every GPU here (workloads shared out
/// among the GPUs). Returns the results in spec order, bucket order, with
/// the arch tuned for and every tuned workload's instances.
pub fn tune_spec(
    spec: &Spec,
    only: &[String],
    opts: &TuneOptions,
    progress: &(dyn Fn(&BucketResult) + Sync),
) -> Result<Tuned, TuneError> {
    let count = super::gpu::device_count();
    let devices: Vec<Device> = (0..count)
        .map(|i| Device::open(i).map_err(|source| TuneError::Gpu { ordinal: i, source }))
        .collect::<Result<_, _>>()?;
    // Devices of a target arch, with their arch and hardware (the SM count
    // read off the device).
    let usable: Vec<(&Device, Arch, Hardware)> = devices
        .iter()
        .filter_map(|d| {
            let arch = arch_for(&spec.target.archs, d.capability)?;
            let mut hw = hardware_for(spec, &arch)?.clone();
            if let Some(sms) = d.sms {
                hw.sms = sms;
            }
            Some((d, arch, hw))
        })
        .collect();
    // Every device tunes for the first one's arch (the fatbins are built
    // for it).
    let usable: Vec<(&Device, Arch, Hardware)> = match usable.first() {
        Some((_, first, _)) => {
            let first = first.clone();
            usable.into_iter().filter(|u| u.1 == first).collect()
        }
        None => usable,
    };
    let Some((_, arch, hw)) = usable.first().cloned() else {
        return Err(TuneError::NoTargetGpu {
            found: if devices.is_empty() {
                "none".into()
            } else {
                devices
                    .iter()
                    .map(|d| format!("{} (sm_{})", d.name, d.capability))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            targets: spec
                .target
                .archs
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let workloads: Vec<&Workload> = spec
        .workloads
        .iter()
        .filter(|w| only.is_empty() || only.contains(&w.name))
        .collect();
    // CPU work first, in parallel: instances, ranking, nvcc.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| TuneError::Workload {
            workload: "*".into(),
            message: format!("cannot start {} threads: {e}", opts.jobs),
        })?;
    let prepared: Vec<Result<Prepared, TuneError>> = pool.install(|| {
        workloads
            .par_iter()
            .map(|w| prepare(w, &arch, &hw, opts))
            .collect()
    });
    let prepared: Vec<Prepared> = prepared.into_iter().collect::<Result<_, _>>()?;
    // GPU work: one thread per device, taking workloads in turn.
    let next = AtomicUsize::new(0);
    type Outcome = (usize, Result<Vec<BucketResult>, TuneError>);
    let results: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (dev, arch, hw) in &usable {
            let (next, results, prepared) = (&next, &results, &prepared);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(p) = prepared.get(i) else { break };
                    let r = measure(p, dev, arch, hw, opts, progress);
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let mut out = Vec::new();
    for (_, r) in results {
        out.extend(r?);
    }
    Ok(Tuned {
        arch,
        results: out,
        instances: prepared
            .into_iter()
            .map(|p| (p.workload.name, p.instances))
            .collect(),
    })
}

/// What [`tune_spec`] measured.
pub struct Tuned {
    /// The arch the GPUs ran.
    pub arch: Arch,
    pub results: Vec<BucketResult>,
    /// Per tuned workload (by name) its verified instances.
    pub instances: Vec<(String, Vec<Instance>)>,
}

/// The work directory of `prism tune` for a prism.toml: `target/prism/tune`.
pub fn default_work_dir(toml: &Path) -> PathBuf {
    toml.parent()
        .unwrap_or_else(|| Path::new("."))
        .join("target")
        .join("prism")
        .join("tune")
}
