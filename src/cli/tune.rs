//! `prism tune`: tune a prism.toml's workloads on this machine's GPUs and
//! write prism.lock next to it; `--check` (no GPU) says whether the lock
//! is complete and up to date.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::ir::Spec;
use crate::search::crosscheck::CrossCheckOptions;
use crate::tune::buckets::buckets;
use crate::tune::lock::{Lock, path_for};
use crate::tune::resolve::{locked, merge, model_entries, orphans, tuned_entries};
use crate::tune::tuner::{BucketResult, TuneOptions, default_work_dir, tune_spec};

/// The options of `prism tune`.
pub struct Options {
    pub path: Option<PathBuf>,
    pub check: bool,
    pub model: bool,
    pub workloads: Vec<String>,
    pub top_k: usize,
    pub reps: usize,
    pub json: Option<PathBuf>,
}

fn toml_path(path: Option<PathBuf>) -> Result<PathBuf, String> {
    match path {
        Some(p) => Ok(p),
        None if Path::new("prism.toml").is_file() => Ok(PathBuf::from("prism.toml")),
        None => Err(
            "no prism.toml here\nhint: pass the prism.toml to tune, e.g. `prism tune path/to/prism.toml` (the lock is written next to it)"
                .into(),
        ),
    }
}

fn nvcc_release() -> Result<(PathBuf, String), String> {
    let nvcc = crate::nvcc::find().map_err(|e| e.to_string())?;
    let v = crate::nvcc::version(&nvcc).map_err(|e| e.to_string())?;
    Ok((nvcc, v))
}

fn load(path: &Path, color: bool) -> Result<Spec, i32> {
    crate::frontend::load(path).map_err(|e| {
        match e {
            crate::Error::Invalid(r) => eprint!("{}", r.render(color)),
            other => eprintln!("error: {other}"),
        }
        1
    })
}

pub fn run(o: Options, color: bool) -> i32 {
    let toml = match toml_path(o.path.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let spec = match load(&toml, color) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(w) = o.workloads.iter().find(|w| spec.workload(w).is_none()) {
        return super::find_workload(&spec, w).map_or_else(|c| c, |_| 1);
    }
    let (nvcc, release) = match nvcc_release() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let lock_path = path_for(&toml);
    let old = match Lock::read(&lock_path) {
        Ok(l) => l,
        Err(e) if o.check => {
            eprintln!("error: {e}");
            return 1;
        }
        // Tuning writes a new lock; the unreadable one's entries (which may
        // include other archs' measurements) are not carried over.
        Err(e) => {
            eprintln!("warning: {e}");
            eprintln!(
                "note: writing a new {} from this run alone; none of the old file's entries are kept",
                lock_path.display()
            );
            None
        }
    };
    if o.check {
        check(&spec, &toml, &lock_path, old.as_ref(), &release)
    } else if o.model {
        model_only(&o, &spec, &lock_path, old.as_ref(), &release)
    } else {
        tune(&o, &spec, &toml, &lock_path, old.as_ref(), nvcc, &release)
    }
}

/// Every (workload, arch, bucket) must have a fresh entry and every entry
/// a (workload, arch, bucket).
fn check(spec: &Spec, toml: &Path, lock_path: &Path, lock: Option<&Lock>, nvcc: &str) -> i32 {
    let start = Instant::now();
    let Some(lock) = lock else {
        eprintln!(
            "error: {} does not exist\nhint: run `prism tune {}` on a machine with a GPU and commit the lock",
            lock_path.display(),
            toml.display()
        );
        return 1;
    };
    let problems: Vec<Vec<String>> = spec
        .workloads
        .par_iter()
        .map(|w| {
            locked(spec, w, Some(lock), nvcc)
                .into_iter()
                .filter_map(|(_, _, r)| r.err().map(|e| format!("`{}`: {e}", w.name)))
                .collect()
        })
        .collect();
    let mut problems: Vec<String> = problems.into_iter().flatten().collect();
    problems.extend(
        orphans(spec, lock, nvcc)
            .into_iter()
            .map(|o| format!("entry {o} matches nothing in the prism.toml (stale)")),
    );
    let total: usize = spec
        .workloads
        .iter()
        .map(|w| buckets(w).len() * spec.target.archs.len())
        .sum();
    let measured = lock
        .entries
        .iter()
        .filter(|e| e.source == crate::tune::lock::Source::Measured)
        .count();
    if problems.is_empty() {
        println!(
            "{}: complete and up to date ({total} entries, {measured} measured on a GPU, {} from the cost model; nvcc {nvcc}; {:.1} s)",
            lock_path.display(),
            total - measured.min(total),
            start.elapsed().as_secs_f64()
        );
        0
    } else {
        eprintln!(
            "error: {} is incomplete or stale ({} problems):",
            lock_path.display(),
            problems.len()
        );
        for p in problems.iter().take(20) {
            eprintln!("  {p}");
        }
        if problems.len() > 20 {
            eprintln!("  ... and {} more", problems.len() - 20);
        }
        eprintln!(
            "hint: run `prism tune {}` on a machine with a GPU and commit the lock",
            toml.display()
        );
        1
    }
}

/// `--model`: the cost model's choice for every entry not measured on a
/// GPU (measured entries stay).
fn model_only(o: &Options, spec: &Spec, lock_path: &Path, old: Option<&Lock>, nvcc: &str) -> i32 {
    let start = Instant::now();
    let per: Vec<Result<Vec<crate::tune::lock::Entry>, String>> = spec
        .workloads
        .par_iter()
        .filter(|w| o.workloads.is_empty() || o.workloads.contains(&w.name))
        .map(|w| {
            let fits = |g: &crate::ugraph::KernelGraph| crate::codegen::cuda::fits(w, g);
            let insts = crate::tune::instances::instances(w, &CrossCheckOptions::default(), &fits)
                .map_err(|e| e.to_string())?;
            Ok(spec
                .target
                .archs
                .iter()
                .flat_map(|a| model_entries(spec, w, a, nvcc, &insts))
                .collect())
        })
        .collect();
    let mut fresh = Vec::new();
    for r in per {
        match r {
            Ok(e) => fresh.extend(e),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    }
    let measured = |k: &str| {
        old.and_then(|l| l.get(k))
            .is_some_and(|e| e.source == crate::tune::lock::Source::Measured)
    };
    fresh.retain(|e| !measured(&e.key));
    let lock = merge(spec, nvcc, &fresh, old);
    if let Err(e) = lock.write(lock_path) {
        eprintln!("error: {e}");
        return 1;
    }
    println!(
        "wrote {}: {} entries from the cost model ({:.1} s)",
        lock_path.display(),
        fresh.len(),
        start.elapsed().as_secs_f64()
    );
    0
}

#[derive(Serialize)]
struct Summary {
    buckets: usize,
    /// Mean Spearman ρ over buckets with at least 3 correct timed instances.
    mean_spearman: Option<f64>,
    spearman_buckets: usize,
    /// Buckets where the model's first choice was the fastest.
    model_top1_hits: usize,
    /// Geometric mean of model choice time / tuned time.
    geomean_speedup_over_model: f64,
    /// Instances rejected by the GPU check.
    rejected: usize,
    seconds: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    toml: String,
    devices: Vec<String>,
    arch: String,
    nvcc: &'a str,
    summary: Summary,
    results: &'a [BucketResult],
}

fn summarize(results: &[BucketResult], seconds: f64) -> Summary {
    let rhos: Vec<f64> = results.iter().filter_map(|r| r.spearman).collect();
    let mut hits = 0;
    let mut log_sum = 0.0;
    let mut n = 0usize;
    for r in results {
        if let (Some(c), Some(m)) = (r.chosen(), r.model_choice()) {
            if r.chosen == Some(0) {
                hits += 1;
            }
            if let (Some(t), Some(mt)) = (c.micros, m.micros) {
                log_sum += (mt / t).ln();
                n += 1;
            }
        }
    }
    Summary {
        buckets: results.len(),
        mean_spearman: (!rhos.is_empty()).then(|| rhos.iter().sum::<f64>() / rhos.len() as f64),
        spearman_buckets: rhos.len(),
        model_top1_hits: hits,
        geomean_speedup_over_model: if n == 0 {
            1.0
        } else {
            (log_sum / n as f64).exp()
        },
        rejected: results
            .iter()
            .flat_map(|r| &r.timed)
            .filter(|t| t.error.is_some())
            .count(),
        seconds,
    }
}

fn tune(
    o: &Options,
    spec: &Spec,
    toml: &Path,
    lock_path: &Path,
    old: Option<&Lock>,
    nvcc: PathBuf,
    release: &str,
) -> i32 {
    let start = Instant::now();
    let jobs = std::env::var("NUM_JOBS")
        .ok()
        .or_else(|| std::env::var("RAYON_NUM_THREADS").ok())
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n: &usize| n >= 1)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let opts = TuneOptions {
        top_k: o.top_k.max(1),
        warmup: 3,
        reps: o.reps.max(5),
        seed: 7,
        jobs,
        nvcc,
        work_dir: default_work_dir(toml),
        check: CrossCheckOptions::default(),
        // The lock's earlier choices are timed again beside the top-k.
        incumbents: old.map(Lock::choices).unwrap_or_default(),
    };
    let total: usize = spec
        .workloads
        .iter()
        .filter(|w| o.workloads.is_empty() || o.workloads.contains(&w.name))
        .map(|w| buckets(w).len())
        .sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed:>4} [{bar:30}] {pos}/{len} buckets {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message("searching and compiling");
    let progress = |r: &BucketResult| {
        bar.set_message(format!("{} {}", r.workload, r.bucket));
        bar.inc(1);
    };
    let tuned = match tune_spec(spec, &o.workloads, &opts, &progress) {
        Ok(t) => t,
        Err(e) => {
            bar.abandon();
            eprintln!("error: {e}");
            return 1;
        }
    };
    bar.finish_and_clear();
    let fresh = tuned_entries(spec, &tuned, release);
    // Entries of other archs measured earlier stay (a GPU of that arch
    // tuned them); model entries of the workloads tuned now are replaced,
    // those of the others stay.
    let tuned_now: Vec<String> = spec
        .workloads
        .iter()
        .filter(|w| o.workloads.is_empty() || o.workloads.contains(&w.name))
        .map(|w| w.name.clone())
        .collect();
    let keep_measured = old.map(|l| crate::tune::resolve::kept_entries(l, &tuned_now));
    let fresh: Vec<_> = fresh
        .into_iter()
        .filter(|e| {
            e.source == crate::tune::lock::Source::Measured
                || keep_measured.as_ref().and_then(|l| l.get(&e.key)).is_none()
        })
        .collect();
    let lock = merge(spec, release, &fresh, keep_measured.as_ref().or(old));
    if let Err(e) = lock.write(lock_path) {
        eprintln!("error: {e}");
        return 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    print_table(&tuned.results);
    let summary = summarize(&tuned.results, seconds);
    println!(
        "\n{} buckets on {} in {:.0} s; tuned vs the cost model's choice: {:.2}x (geomean), model first choice fastest in {}/{}; mean Spearman rho {} over {} buckets; {} instances rejected by the GPU check",
        summary.buckets,
        tuned.arch,
        seconds,
        summary.geomean_speedup_over_model,
        summary.model_top1_hits,
        summary.buckets,
        summary
            .mean_spearman
            .map_or("n/a".into(), |r| format!("{r:.2}")),
        summary.spearman_buckets,
        summary.rejected
    );
    println!("wrote {}", lock_path.display());
    // Every timed instance, for the report's tuning landscape.
    let tune_path = crate::report::tune_data::path_for(toml);
    match crate::report::tune_data::update_after_tune(spec, &tune_path, &tuned.results, release) {
        Ok(notes) => {
            for n in notes {
                eprintln!("warning: {n}");
            }
            println!("wrote {}", tune_path.display());
        }
        Err(e) => eprintln!("warning: {e}"),
    }
    if let Some(path) = &o.json {
        let mut devices: Vec<String> = tuned.results.iter().map(|r| r.device.clone()).collect();
        devices.dedup();
        let report = Report {
            toml: toml.display().to_string(),
            devices,
            arch: tuned.arch.to_string(),
            nvcc: release,
            summary,
            results: &tuned.results,
        };
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    0
}

fn print_table(results: &[BucketResult]) {
    println!(
        "{:<18} {:<22} {:<22} {:>10} {:>10} {:>8} {:>9}",
        "workload", "bucket", "chosen", "time µs", "model µs", "speedup", "roofline"
    );
    for r in results {
        let Some(c) = r.chosen() else {
            println!("{:<18} {:<22} (no correct instance)", r.workload, r.bucket);
            continue;
        };
        let t = c.micros.unwrap_or(f64::NAN);
        let m = r.model_choice().and_then(|m| m.micros).unwrap_or(f64::NAN);
        println!(
            "{:<18} {:<22} {:<22} {:>10.1} {:>10.1} {:>7.2}x {:>8.0}%",
            r.workload,
            r.bucket,
            c.instance,
            t,
            m,
            m / t,
            100.0 * r.roofline_micros / t
        );
    }
}
