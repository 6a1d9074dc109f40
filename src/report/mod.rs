//! `report.html`: one self-contained page (inline CSS and SVG, no script,
//! nothing fetched) about a prism.toml's kernels, written by every build
//! (`<target>/prism/report.html`) and by `prism report`.
//!
//! Per workload: the chosen μGraph as a diagram ([`diagram`]), the search
//! funnel ([`funnel`]), the tuning landscape ([`landscape`], with
//! [`tune_data`]) and a roofline of every kernel ([`roofline`]); the page
//! itself is [`html`]. Everything is ordered and formatted with fixed
//! precision, and the page holds no time stamp or absolute path: the same
//! inputs give the same bytes.
//!
//! It never runs the search for a build: a build passes what it resolved
//! (the lock's instances) and the funnels cached by `prism report`.

pub mod diagram;
pub mod funnel;
pub mod html;
pub mod landscape;
pub mod roofline;
pub mod svg;
pub mod tune_data;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::codegen::WorkloadKernels;
use crate::ir::{Arch, DimBindings, Spec, Workload};
use crate::tune::buckets::{bucket_of, buckets};
use crate::tune::lock::{Lock, LockError, Source};
use crate::tune::resolve::{Origin, Resolution, resolve};
use crate::tune::tuner::hardware_for;

use diagram::Diagram;
use funnel::Funnel;
use landscape::BucketRow;
use roofline::{BenchFile, RoofPoint, Roofs};
use tune_data::TuneData;

/// The report's file name.
pub const REPORT_FILE: &str = "report.html";

/// Why a report cannot be made or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "cannot read tune data {path}: {source}\nhint: pass a file written by `prism tune --json FILE`, or the prism.tune.json `prism tune` writes next to prism.lock"
    )]
    ReadTune {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not prism tune data: {message}\nhint: pass a file written by `prism tune --json FILE`, or the prism.tune.json `prism tune` writes next to prism.lock (`prism report --tune A.json --save-tune prism.tune.json` converts the former)"
    )]
    MalformedTune { path: PathBuf, message: String },
    #[error(
        "cannot read bench results {path}: {source}\nhint: pass the JSON file `prism bench --json FILE` writes"
    )]
    ReadBench {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a `prism bench --json` report: {message}\nhint: pass the JSON file `prism bench --json FILE` writes (it holds the device's measured copy bandwidth and mma peak)"
    )]
    MalformedBench { path: PathBuf, message: String },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "cannot write {path}: {source}\nhint: check that its folder exists and is writable, or write the report elsewhere (`prism report --out FILE`)"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What a workload's kernels are, as its caller resolved them.
pub enum Plan<'a> {
    /// Per arch and bucket the instance and its graph (a build from the
    /// lock, `prism report`).
    Resolved(&'a Resolution),
    /// Only the launch plan (a custom code generator, a docs build).
    Kernels(&'a WorkloadKernels),
    /// Nothing: why.
    Missing(String),
}

/// Everything a report is made of.
pub struct Inputs<'a> {
    pub spec: &'a Spec,
    /// How the page names the prism.toml.
    pub toml_name: String,
    pub lock: Option<&'a Lock>,
    /// Per workload of `spec`, in order.
    pub plans: Vec<Plan<'a>>,
    /// Per workload: its funnel, or why there is none.
    pub funnels: Vec<Result<Funnel, String>>,
    pub tune: TuneData,
    /// A `prism bench --json` report and its file name.
    pub bench: Option<(String, BenchFile)>,
    /// Warnings, shown on the page.
    pub notes: Vec<String>,
}

/// One workload's section.
#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    pub description: Option<String>,
    /// `(name, type)`.
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
    /// The program, one operator a line.
    pub ops: Vec<String>,
    /// `n ∈ [8, 16]`.
    pub dims: Vec<String>,
    /// The bucket drawn (holding the workload's last declared point, else
    /// its largest) and its tuning point.
    pub bucket: String,
    pub point: DimBindings,
    /// The instance drawn.
    pub instance: Option<String>,
    pub diagram: Option<Diagram>,
    /// What the diagram shows, or why there is none.
    pub diagram_note: String,
    pub funnel: Result<Funnel, String>,
    /// The report arch's buckets.
    pub rows: Vec<BucketRow>,
    /// The other target archs' buckets.
    pub other_archs: Vec<(String, Vec<BucketRow>)>,
    /// Every kernel of every bucket's instance (report arch).
    pub roofline: Vec<RoofPoint>,
    pub notes: Vec<String>,
}

impl Section {
    /// (agreeing, compared) buckets of tune data against the build's
    /// choice.
    pub fn agreement(&self) -> (usize, usize) {
        let compared: Vec<bool> = self.rows.iter().filter_map(|r| r.agrees()).collect();
        (compared.iter().filter(|a| **a).count(), compared.len())
    }

    /// The representative bucket's row.
    pub fn row(&self) -> Option<&BucketRow> {
        self.rows.iter().find(|r| r.bucket == self.bucket)
    }
}

/// The whole report, before it is rendered.
#[derive(Clone, Debug)]
pub struct Report {
    pub title: String,
    pub prism: String,
    pub archs: Vec<String>,
    /// The arch the tables, landscape and roofline are of.
    pub arch: String,
    /// The device measured (or "no GPU measurement").
    pub device: String,
    /// nvcc's release of the lock.
    pub nvcc: Option<String>,
    pub roofs: Roofs,
    /// The data the page was made from, one line each.
    pub sources: Vec<String>,
    pub notes: Vec<String>,
    pub workloads: Vec<Section>,
}

impl Report {
    /// (agreeing, compared) buckets over every workload.
    pub fn agreement(&self) -> (usize, usize) {
        self.workloads
            .iter()
            .map(Section::agreement)
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }
}

/// The arch the report is about: the bench's, else the first with
/// measured lock entries, else the first target.
fn report_arch(spec: &Spec, lock: Option<&Lock>, bench: Option<&BenchFile>) -> Option<Arch> {
    let archs = &spec.target.archs;
    if let Some(b) = bench
        && let Some(a) = archs.iter().find(|a| a.to_string() == b.arch)
    {
        return Some(a.clone());
    }
    if let Some(l) = lock
        && let Some(a) = archs.iter().find(|a| {
            l.entries
                .iter()
                .any(|e| e.source == Source::Measured && e.arch == a.to_string())
        })
    {
        return Some(a.clone());
    }
    archs.first().cloned()
}

fn origin_text(o: &Origin) -> String {
    match o {
        Origin::Lock(Source::Measured) => "prism.lock (measured)".into(),
        Origin::Lock(Source::Model) => "prism.lock (cost model)".into(),
        Origin::Model => "cost model (untuned)".into(),
    }
}

/// The rows of `w` on `arch`.
fn bucket_rows(
    w: &Workload,
    arch: &Arch,
    plan: &Plan<'_>,
    lock: Option<&Lock>,
    tune: &TuneData,
) -> Vec<BucketRow> {
    let arch_name = arch.to_string();
    buckets(w)
        .iter()
        .map(|b| {
            let label = b.label();
            let entry = lock.and_then(|l| l.get(&crate::tune::lock::key(w, b, arch, &l.nvcc)));
            let choice = match plan {
                Plan::Resolved(r) => r
                    .choices
                    .iter()
                    .find(|c| c.arch == arch_name && c.bucket == label),
                _ => None,
            };
            let (instance, origin, problem) = match (choice, entry) {
                (Some(c), _) => (
                    c.instance.clone(),
                    origin_text(&c.origin),
                    c.problem.clone(),
                ),
                (None, Some(e)) => (
                    e.instance.clone(),
                    origin_text(&Origin::Lock(e.source)),
                    None,
                ),
                (None, None) => ("–".into(), "no lock entry".into(), None),
            };
            let same = entry.is_some_and(|e| e.instance == instance);
            BucketRow {
                bucket: label.clone(),
                micros: entry.filter(|_| same).and_then(|e| e.micros),
                model_instance: entry.and_then(|e| e.model_instance.clone()),
                model_micros: entry.and_then(|e| e.model_micros),
                tuning: tune.get(&w.name, &label, &arch_name).cloned(),
                instance,
                origin,
                problem,
            }
        })
        .collect()
}

/// The graph of bucket `bi` on `arch` in a resolution.
fn graph_of<'a>(
    r: &'a Resolution,
    arch: &Arch,
    bi: usize,
) -> Option<&'a (String, crate::ugraph::KernelGraph)> {
    let d = r.dispatch.iter().find(|d| d.arch == arch.to_string())?;
    let v = d.entries.get(bi)?.variant;
    r.variants.get(v)
}

fn point_text(p: &DimBindings) -> String {
    let v: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.join(" ")
}

fn section(
    inputs: &Inputs<'_>,
    wi: usize,
    arch: &Arch,
    hw: Option<&crate::ir::hardware::Hardware>,
) -> Section {
    let spec = inputs.spec;
    let w = &spec.workloads[wi];
    let plan = &inputs.plans[wi];
    let bs = buckets(w);
    let rep_point = crate::search::strategies::cost_point(w);
    let rep = bucket_of(w, &rep_point).unwrap_or(0);
    let tp = bs.get(rep).map(|b| b.tuning_point()).unwrap_or(rep_point);
    let rows = bucket_rows(w, arch, plan, inputs.lock, &inputs.tune);
    let other_archs = spec
        .target
        .archs
        .iter()
        .filter(|a| *a != arch)
        .map(|a| {
            (
                a.to_string(),
                bucket_rows(w, a, plan, inputs.lock, &inputs.tune),
            )
        })
        .collect();
    let bucket = bs.get(rep).map(|b| b.label()).unwrap_or_default();
    let mut notes = Vec::new();
    let (diagram, instance, diagram_note) = match plan {
        Plan::Resolved(r) => match graph_of(r, arch, rep) {
            Some((label, g)) => (
                Some(diagram::from_graph(g, &tp).shortened(&w.name)),
                Some(label.clone()),
                format!(
                    "{label} on {arch}: the instance of bucket {bucket}, the one holding the workload's last declared point (else its largest); grids counted at {}",
                    point_text(&tp)
                ),
            ),
            None => (
                None,
                None,
                format!("no instance for bucket {bucket} on {arch}"),
            ),
        },
        Plan::Kernels(k) => {
            let v = k
                .dispatch
                .iter()
                .find(|d| d.arch == arch.to_string())
                .and_then(|d| {
                    d.entries.iter().find(|e| {
                        e.ranges.iter().zip(&k.dims).all(|((lo, hi), name)| {
                            tp.get(name).is_some_and(|x| (*lo..=*hi).contains(x))
                        })
                    })
                })
                .map_or(0, |e| e.variant);
            match k.variants.get(v) {
                Some(var) => (
                    Some(diagram::from_variant(var, &tp).shortened(&w.name)),
                    Some(var.label.clone()),
                    format!(
                        "the launch plan of {} (no μGraph: a custom code generator or a docs build); grids counted at {}",
                        var.label,
                        point_text(&tp)
                    ),
                ),
                None => (None, None, "no variant".into()),
            }
        }
        Plan::Missing(why) => (None, None, why.clone()),
    };
    // Roofline points: every bucket's instance, kernel by kernel.
    let mut roofline = Vec::new();
    if let (Plan::Resolved(r), Some(hw)) = (plan, hw) {
        for (bi, b) in bs.iter().enumerate() {
            let Some((_, g)) = graph_of(r, arch, bi) else {
                continue;
            };
            let p = b.tuning_point();
            let est = crate::tune::cost::estimate(g, &p, hw);
            let row = rows.get(bi);
            let measured = row.and_then(|row| {
                row.tuning
                    .as_ref()
                    .and_then(|t| t.timed.iter().find(|c| c.instance == row.instance))
                    .and_then(|c| c.micros)
                    .or(row.micros)
            });
            for k in &est.kernels {
                let share = if est.micros > 0.0 {
                    k.micros / est.micros
                } else {
                    0.0
                };
                roofline.push(RoofPoint {
                    workload: w.name.clone(),
                    series: wi,
                    bucket: b.label(),
                    kernel: k.name.clone(),
                    bytes: k.bytes,
                    flops: k.flops,
                    micros: measured.map_or(k.micros, |t| t * share),
                    measured: measured.is_some(),
                    representative: bi == rep,
                });
            }
        }
    } else if hw.is_none() {
        notes.push(format!("no hardware description for {arch}: no roofline"));
    }
    let check = crate::cli::check::workload_report(w);
    Section {
        name: w.name.clone(),
        description: w.description.clone(),
        inputs: check
            .inputs
            .iter()
            .map(|i| (i.name.clone(), i.ty.clone()))
            .collect(),
        outputs: check
            .outputs
            .iter()
            .map(|o| (o.name.clone(), o.ty.clone()))
            .collect(),
        ops: check
            .ops
            .iter()
            .map(|o| format!("{:>4} = {:<36} {}", o.id, o.op, o.ty))
            .collect(),
        dims: w
            .dims
            .iter()
            .map(|d| format!("{} ∈ {}", d.name, d.values))
            .collect(),
        bucket,
        point: tp,
        instance,
        diagram,
        diagram_note,
        funnel: inputs
            .funnels
            .get(wi)
            .cloned()
            .unwrap_or_else(|| Err("no funnel".into())),
        rows,
        other_archs,
        roofline,
        notes,
    }
}

/// Put the report together.
pub fn assemble(inputs: Inputs<'_>) -> Report {
    let spec = inputs.spec;
    let bench = inputs.bench.as_ref().map(|(_, b)| b);
    let arch = report_arch(spec, inputs.lock, bench);
    let hw = arch.as_ref().and_then(|a| hardware_for(spec, a));
    let mut notes = inputs.notes.clone();
    if let Some(b) = bench
        && !spec.target.archs.iter().any(|a| a.to_string() == b.arch)
    {
        notes.push(format!(
            "the bench results were measured on {} ({}), not a target arch of {}: its roofs are drawn anyway",
            b.device, b.arch, inputs.toml_name
        ));
    }
    let roofs = match (bench, hw) {
        (Some(b), _) => Roofs {
            bytes_per_s: b.copy_bytes_per_s,
            flops_per_s: b.mma_flops_per_s,
            measured: true,
            label: format!(
                "measured by prism bench on {} ({}): device copy bandwidth and mma.sync peak",
                b.device,
                inputs.bench.as_ref().map_or("", |(n, _)| n.as_str())
            ),
            device: b.device.clone(),
        },
        (None, Some(h)) => Roofs {
            bytes_per_s: h.dram_gbps * 1e9,
            flops_per_s: h.tensor_tflops * 1e12,
            measured: false,
            label: format!(
                "spec: the hardware description of {} ({}), not measured (prism report --bench FILE takes measured roofs from prism bench --json)",
                arch.as_ref().map_or_else(String::new, ToString::to_string),
                h.name
            ),
            device: h.name.clone(),
        },
        (None, None) => Roofs {
            bytes_per_s: 1e12,
            flops_per_s: 1e14,
            measured: false,
            label: "no hardware description: placeholder roofs".into(),
            device: "unknown".into(),
        },
    };
    let arch_name = arch
        .as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string);
    let device = match (bench, inputs.lock) {
        (Some(b), _) => b.device.clone(),
        (None, Some(l)) => l
            .entries
            .iter()
            .filter(|e| e.source == Source::Measured && e.arch == arch_name)
            .find_map(|e| e.device.clone())
            .unwrap_or_else(|| "no GPU measurement".into()),
        (None, None) => "no GPU measurement".into(),
    };
    let workloads: Vec<Section> = match &arch {
        Some(a) => (0..spec.workloads.len())
            .map(|wi| section(&inputs, wi, a, hw))
            .collect(),
        None => Vec::new(),
    };
    let mut sources = vec![format!(
        "{}{}",
        inputs.toml_name,
        match inputs.lock {
            Some(l) => format!(
                " and its prism.lock ({} entries, nvcc {})",
                l.entries.len(),
                l.nvcc
            ),
            None => " (no prism.lock: the cost model's choices)".into(),
        }
    )];
    if inputs.tune.is_empty() {
        sources.push(
            "no tune data (the landscape needs the prism.tune.json prism tune writes, or prism report --tune FILE)"
                .into(),
        );
    } else {
        sources.push(format!(
            "tune data: {} ({} buckets)",
            inputs.tune.files.join(", "),
            inputs.tune.len()
        ));
    }
    sources.push(format!("roofs: {}", roofs.label));
    Report {
        title: inputs.toml_name.clone(),
        prism: env!("CARGO_PKG_VERSION").to_string(),
        archs: spec.target.archs.iter().map(ToString::to_string).collect(),
        arch: arch_name,
        device,
        nvcc: inputs.lock.map(|l| l.nvcc.clone()),
        roofs,
        sources,
        notes,
        workloads,
    }
}

/// The page of a report.
pub fn render(r: &Report) -> String {
    html::page(r)
}

/// How to make a report outside a build.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Tune data files (later ones win per bucket); empty: the
    /// prism.tune.json next to the prism.toml, if any.
    pub tune: Vec<PathBuf>,
    /// A `prism bench --json` report.
    pub bench: Option<PathBuf>,
    /// The search cache folder holding funnels (read, and filled).
    pub cache: Option<PathBuf>,
    /// Run the search for funnels not cached (else they are missing).
    pub search: bool,
}

/// A made report.
pub struct Made {
    pub report: Report,
    pub html: String,
    /// The tune data it used (for `--save-tune`).
    pub tune: TuneData,
    /// Warnings (also on the page).
    pub warnings: Vec<String>,
}

/// The tune data of `paths`, or of the prism.tune.json next to `toml`
/// (which may be missing; a bad one is a warning).
fn load_tune(
    spec: &Spec,
    toml: Option<&Path>,
    paths: &[PathBuf],
    warnings: &mut Vec<String>,
) -> Result<TuneData, ReportError> {
    let mut files = Vec::new();
    if paths.is_empty() {
        if let Some(t) = toml {
            let p = tune_data::path_for(t);
            if p.is_file() {
                match tune_data::read(&p) {
                    Ok(f) => files.push(f),
                    Err(e) => warnings.push(format!("{e} (it is ignored)")),
                }
            }
        }
    } else {
        for p in paths {
            files.push(tune_data::read(p)?);
        }
    }
    Ok(tune_data::matched(spec, &files, warnings))
}

/// The report of `spec` (read from `toml` when it is a file, which
/// locates prism.lock and prism.tune.json), as `prism report` makes it:
/// the lock's instances resolved (the cost model's where the lock has
/// none), funnels from the cache or (with `opts.search`) the search.
pub fn make(spec: &Spec, toml: Option<&Path>, opts: &Options) -> Result<Made, ReportError> {
    let mut warnings = Vec::new();
    let lock = match toml {
        Some(t) => Lock::read(&crate::tune::lock::path_for(t))?,
        None => None,
    };
    let tune = load_tune(spec, toml, &opts.tune, &mut warnings)?;
    let bench = match &opts.bench {
        Some(p) => Some((
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            roofline::read_bench(p)?,
        )),
        None => None,
    };
    let cache = opts.cache.as_deref();
    let funnels: Vec<Result<Funnel, String>> = spec
        .workloads
        .par_iter()
        .map(|w| {
            funnel::funnel_of(w, cache, opts.search).ok_or_else(|| {
                "not recorded: run prism report (it runs the search's proofs and cross-checks once and caches the funnel for later builds)".to_string()
            })
        })
        .collect();
    let nvcc = lock
        .as_ref()
        .map_or_else(|| "none".to_string(), |l| l.nvcc.clone());
    let lock_name = toml.map_or_else(
        || "prism.lock".to_string(),
        |t| crate::tune::lock::path_for(t).display().to_string(),
    );
    let resolved: Vec<Result<Resolution, String>> = spec
        .workloads
        .par_iter()
        .map(|w| {
            resolve(
                spec,
                w,
                lock.as_ref(),
                &nvcc,
                false,
                &lock_name,
                "prism tune",
            )
            .map_err(|e| e.to_string())
        })
        .collect();
    let plans: Vec<Plan<'_>> = resolved
        .iter()
        .map(|r| match r {
            Ok(r) => Plan::Resolved(r),
            Err(e) => Plan::Missing(e.clone()),
        })
        .collect();
    let toml_name = toml.map_or_else(|| spec.source_name.clone(), |t| t.display().to_string());
    let inputs = Inputs {
        spec,
        toml_name,
        lock: lock.as_ref(),
        plans,
        funnels,
        tune: tune.clone(),
        bench,
        notes: warnings.clone(),
    };
    let report = assemble(inputs);
    let html = render(&report);
    Ok(Made {
        report,
        html,
        tune,
        warnings,
    })
}

/// What a build knows when it writes its report.
pub struct BuildInputs<'a> {
    pub spec: &'a Spec,
    /// The prism.toml as the build script names it.
    pub toml: &'a Path,
    /// The lock the build resolved from.
    pub lock: Option<&'a Lock>,
    /// Per workload: its resolution (a build from the lock or the model),
    /// else its launch plan.
    pub resolutions: Option<&'a [Resolution]>,
    pub kernels: &'a [WorkloadKernels],
    /// The search cache folder (funnels recorded by `prism report`).
    pub cache: Option<&'a Path>,
}

/// Where a build writes its report: `<target>/prism/report.html` (the
/// target folder being the nearest ancestor of `out_dir` holding cargo's
/// `CACHEDIR.TAG`), else `<out_dir>/prism/report.html`; a module other than
/// the default one gets `report-<module>.html`.
pub fn build_report_path(out_dir: &Path, module: &str) -> PathBuf {
    let base = out_dir
        .ancestors()
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .unwrap_or(out_dir);
    let name = if module == crate::build::DEFAULT_MODULE {
        REPORT_FILE.to_string()
    } else {
        format!("report-{module}.html")
    };
    base.join("prism").join(name)
}

/// The report of a build (no search: funnels only from the cache), and
/// its warnings.
pub fn for_build(b: &BuildInputs<'_>) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
    let tune = load_tune(b.spec, Some(b.toml), &[], &mut warnings).unwrap_or_default();
    let plans: Vec<Plan<'_>> = b
        .spec
        .workloads
        .iter()
        .enumerate()
        .map(
            |(i, w)| match (b.resolutions.and_then(|r| r.get(i)), b.kernels.get(i)) {
                (Some(r), _) => Plan::Resolved(r),
                (None, Some(k)) if k.workload == w.name => Plan::Kernels(k),
                _ => Plan::Missing("not built".into()),
            },
        )
        .collect();
    let funnels = b
        .spec
        .workloads
        .iter()
        .map(|w| {
            funnel::funnel_of(w, b.cache, false).ok_or_else(|| {
                "not recorded: a build does not run the search's proofs and cross-checks when prism.lock names its kernels; run prism report once (it caches every workload's funnel under target/prism/search, and later builds show it)".to_string()
            })
        })
        .collect();
    let inputs = Inputs {
        spec: b.spec,
        toml_name: b.toml.display().to_string(),
        lock: b.lock,
        plans,
        funnels,
        tune,
        bench: None,
        notes: warnings.clone(),
    };
    let report = assemble(inputs);
    (render(&report), warnings)
}

/// Write a report page to `path` (its folder created), atomically.
pub fn write(path: &Path, html: &str) -> Result<(), ReportError> {
    let err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    crate::atomic_write::write(path, html.as_bytes()).map_err(err)
}
