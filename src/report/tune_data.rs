//! Tuning data: per shape bucket every instance the tuner timed, with the
//! cost model's estimate and the measured time: the report's tuning
//! landscape.
//!
//! Two files carry it: the JSON report of `prism tune --json FILE`, and
//! `prism.tune.json`, which `prism tune` writes next to prism.lock (only
//! the fields the report needs, each bucket with its prism.lock key, in
//! the prism.toml's order, floats rounded: a re-tune diffs line by line).
//! Buckets are matched to the prism.toml by workload, bucket label and
//! arch, and by key (prism.tune.json) or tuning point (`--json` reports);
//! the rest are ignored with a warning, so tune data of another prism.toml
//! never shows up under the wrong workload.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ReportError;
use crate::ir::{Spec, Workload};
use crate::tune::buckets::{ShapeBucket, buckets};
use crate::tune::lock::key;

/// The file `prism tune` writes next to prism.lock.
pub const TUNE_FILE: &str = "prism.tune.json";
/// Its `format` field.
pub const FORMAT: &str = "prism.tune";
/// Bumped when its fields change meaning.
pub const VERSION: u32 = 1;

/// One timed instance of a bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedInstance {
    /// Its label (`sgraph#0 splits=16`).
    pub instance: String,
    /// The fingerprint of its graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// The cost model's estimate, µs.
    pub model_micros: f64,
    /// The measured median, µs (`None`: it failed).
    #[serde(default)]
    pub micros: Option<f64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The tuning of one (workload, bucket, arch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketTuning {
    pub workload: String,
    pub bucket: String,
    pub arch: String,
    /// Its prism.lock key (prism.tune.json; absent in `--json` reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The tuning point (the bucket's top).
    #[serde(default)]
    pub point: BTreeMap<String, i64>,
    /// Index into `timed` of the chosen instance.
    #[serde(default)]
    pub chosen: Option<usize>,
    /// In the cost model's order (the first is the model's choice).
    pub timed: Vec<TimedInstance>,
}

impl BucketTuning {
    pub fn chosen(&self) -> Option<&TimedInstance> {
        self.chosen.and_then(|i| self.timed.get(i))
    }

    /// Spearman's ρ of the model's estimates and the measured times of the
    /// correct timed instances (`None` below 3).
    pub fn spearman(&self) -> Option<f64> {
        let ok: Vec<&TimedInstance> = self.timed.iter().filter(|t| t.micros.is_some()).collect();
        let model: Vec<f64> = ok.iter().map(|t| t.model_micros).collect();
        let measured: Vec<f64> = ok.iter().filter_map(|t| t.micros).collect();
        crate::tune::tuner::spearman(&model, &measured)
    }
}

/// prism.tune.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneFile {
    pub format: String,
    pub version: u32,
    /// nvcc's release the keys were made with.
    pub nvcc: String,
    pub buckets: Vec<BucketTuning>,
}

/// Either file, as read.
#[derive(Deserialize)]
struct AnyTune {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    nvcc: Option<String>,
    /// `prism tune --json`.
    #[serde(default)]
    results: Option<Vec<BucketTuning>>,
    /// prism.tune.json.
    #[serde(default)]
    buckets: Option<Vec<BucketTuning>>,
}

/// A tune file as read, before it is matched to a prism.toml.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// How the report names it (the file name).
    pub name: String,
    pub nvcc: Option<String>,
    pub buckets: Vec<BucketTuning>,
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Read a `prism tune --json` report or a prism.tune.json.
pub fn read(path: &Path) -> Result<Loaded, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::ReadTune {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, &file_name(path)).map_err(|message| ReportError::MalformedTune {
        path: path.to_path_buf(),
        message,
    })
}

/// Parse tune data named `name`; `Err` says what is wrong.
pub fn parse(text: &str, name: &str) -> Result<Loaded, String> {
    let any: AnyTune = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if let Some(f) = &any.format
        && f != FORMAT
    {
        return Err(format!("its format is `{f}`, not `{FORMAT}`"));
    }
    if any.format.is_some() && any.version != Some(VERSION) {
        return Err(format!(
            "it has format version {}, this prism reads version {VERSION}",
            any.version
                .map_or_else(|| "none".to_string(), |v| v.to_string())
        ));
    }
    let buckets = match (any.results, any.buckets) {
        (Some(r), None) => r,
        (None, Some(b)) => b,
        (Some(_), Some(_)) => {
            return Err("it has both `results` and `buckets`".into());
        }
        (None, None) => {
            return Err("it has neither `results` (a `prism tune --json` report) nor `buckets` (prism.tune.json)".into());
        }
    };
    for b in &buckets {
        if let Some(c) = b.chosen
            && c >= b.timed.len()
        {
            return Err(format!(
                "bucket `{} {} {}` chooses instance {c} of {}",
                b.workload,
                b.bucket,
                b.arch,
                b.timed.len()
            ));
        }
        if let Some(t) = b.timed.iter().find(|t| {
            !t.model_micros.is_finite() || t.micros.is_some_and(|m| !m.is_finite() || m <= 0.0)
        }) {
            return Err(format!(
                "bucket `{} {} {}`: instance `{}` has a time that is not a positive number",
                b.workload, b.bucket, b.arch, t.instance
            ));
        }
    }
    Ok(Loaded {
        name: name.to_string(),
        nvcc: any.nvcc,
        buckets,
    })
}

/// Tune data matched to a prism.toml: per (workload, bucket, arch) the
/// last file's record.
#[derive(Clone, Debug, Default)]
pub struct TuneData {
    /// The files that contributed, in order.
    pub files: Vec<String>,
    map: BTreeMap<(String, String, String), BucketTuning>,
}

impl TuneData {
    pub fn get(&self, workload: &str, bucket: &str, arch: &str) -> Option<&BucketTuning> {
        self.map
            .get(&(workload.to_string(), bucket.to_string(), arch.to_string()))
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Add `b` (replacing an earlier record of its bucket).
    pub fn insert(&mut self, b: BucketTuning) {
        self.map
            .insert((b.workload.clone(), b.bucket.clone(), b.arch.clone()), b);
    }
}

/// Why `b` does not belong to `spec` (a workload, bucket label and target
/// arch of it, with the same key or tuning point).
fn mismatch(spec: &Spec, b: &BucketTuning, nvcc: Option<&str>) -> Result<(), String> {
    let w = spec
        .workload(&b.workload)
        .ok_or_else(|| format!("no workload `{}`", b.workload))?;
    let bs = buckets(w);
    let sb = bs
        .iter()
        .find(|x| x.label() == b.bucket)
        .ok_or_else(|| format!("workload `{}` has no bucket `{}`", b.workload, b.bucket))?;
    let arch = spec
        .target
        .archs
        .iter()
        .find(|a| a.to_string() == b.arch)
        .ok_or_else(|| format!("`{}` is not a target arch", b.arch))?;
    match (&b.key, nvcc) {
        (Some(k), Some(v)) if *k != key(w, sb, arch, v) => Err(format!(
            "`{} {} {}` was tuned for another program, dims, prism or nvcc",
            b.workload, b.bucket, b.arch
        )),
        _ if !b.point.is_empty() && b.point != sb.tuning_point() => Err(format!(
            "`{} {} {}` was tuned at another point",
            b.workload, b.bucket, b.arch
        )),
        _ => Ok(()),
    }
}

/// The buckets of `files` that belong to `spec` (later files win); a
/// warning per file with buckets that do not (they are ignored).
pub fn matched(spec: &Spec, files: &[Loaded], warnings: &mut Vec<String>) -> TuneData {
    let mut data = TuneData::default();
    for f in files {
        let mut used = 0;
        let mut ignored: Vec<String> = Vec::new();
        for b in &f.buckets {
            match mismatch(spec, b, f.nvcc.as_deref()) {
                Ok(()) => {
                    data.insert(b.clone());
                    used += 1;
                }
                Err(why) => ignored.push(why),
            }
        }
        if used == 0 && !f.buckets.is_empty() {
            warnings.push(format!(
                "tune data {}: none of its {} buckets belongs to {} (first: {}); is it for another prism.toml? It is ignored",
                f.name,
                f.buckets.len(),
                spec.source_name,
                ignored.first().map_or("", String::as_str)
            ));
        } else if !ignored.is_empty() {
            warnings.push(format!(
                "tune data {}: {} of its {} buckets do not belong to {} and are ignored (first: {})",
                f.name,
                ignored.len(),
                f.buckets.len(),
                spec.source_name,
                ignored[0]
            ));
        }
        if used > 0 {
            data.files.push(f.name.clone());
        }
    }
    data
}

/// Rounded to a thousandth (of a µs): stable text, enough precision.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `data` as prism.tune.json for `spec` (keys made with nvcc `release`):
/// in the prism.toml's order (workload, arch, bucket), floats rounded.
pub fn to_file(spec: &Spec, data: &TuneData, release: &str) -> TuneFile {
    let mut out = Vec::new();
    for w in &spec.workloads {
        let bs = buckets(w);
        for arch in &spec.target.archs {
            for b in &bs {
                let Some(t) = data.get(&w.name, &b.label(), &arch.to_string()) else {
                    continue;
                };
                out.push(record(w, b, arch, release, t));
            }
        }
    }
    TuneFile {
        format: FORMAT.into(),
        version: VERSION,
        nvcc: release.into(),
        buckets: out,
    }
}

fn record(
    w: &Workload,
    b: &ShapeBucket,
    arch: &crate::ir::Arch,
    release: &str,
    t: &BucketTuning,
) -> BucketTuning {
    BucketTuning {
        workload: w.name.clone(),
        bucket: b.label(),
        arch: arch.to_string(),
        key: Some(key(w, b, arch, release)),
        device: t.device.clone(),
        point: b.tuning_point(),
        chosen: t.chosen,
        timed: t
            .timed
            .iter()
            .map(|x| TimedInstance {
                instance: x.instance.clone(),
                graph: x.graph.clone(),
                model_micros: round(x.model_micros),
                micros: x.micros.map(round),
                error: x.error.clone(),
            })
            .collect(),
    }
}

/// The text of a tune file: JSON, one bucket field a line and one timed
/// instance a line (a re-tune diffs line by line), a final newline.
pub fn render(file: &TuneFile) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{{");
    let _ = writeln!(s, "  \"format\": {},", j(&file.format));
    let _ = writeln!(s, "  \"version\": {},", file.version);
    let _ = writeln!(s, "  \"nvcc\": {},", j(&file.nvcc));
    let _ = writeln!(s, "  \"buckets\": [");
    for (i, b) in file.buckets.iter().enumerate() {
        let _ = writeln!(s, "    {{");
        let _ = writeln!(s, "      \"workload\": {},", j(&b.workload));
        let _ = writeln!(s, "      \"bucket\": {},", j(&b.bucket));
        let _ = writeln!(s, "      \"arch\": {},", j(&b.arch));
        if let Some(k) = &b.key {
            let _ = writeln!(s, "      \"key\": {},", j(k));
        }
        if let Some(d) = &b.device {
            let _ = writeln!(s, "      \"device\": {},", j(d));
        }
        let _ = writeln!(s, "      \"point\": {},", j(&b.point));
        let _ = writeln!(s, "      \"chosen\": {},", j(&b.chosen));
        let _ = writeln!(s, "      \"timed\": [");
        for (k, t) in b.timed.iter().enumerate() {
            let comma = if k + 1 < b.timed.len() { "," } else { "" };
            let _ = writeln!(s, "        {}{comma}", j(t));
        }
        let _ = writeln!(s, "      ]");
        let comma = if i + 1 < file.buckets.len() { "," } else { "" };
        let _ = writeln!(s, "    }}{comma}");
    }
    let _ = writeln!(s, "  ]");
    let _ = writeln!(s, "}}");
    s
}

/// Compact JSON of a value.
fn j<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Write `file` to `path` atomically (a temporary file renamed over it);
/// unchanged content is not rewritten.
pub fn write(path: &Path, file: &TuneFile) -> Result<(), ReportError> {
    crate::atomic_write::write(path, render(file).as_bytes()).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The tune data of a `prism tune` run's results (`--json` report form).
pub fn from_results(results: &[crate::tune::tuner::BucketResult], nvcc: &str) -> Loaded {
    Loaded {
        name: "this run".into(),
        nvcc: Some(nvcc.to_string()),
        buckets: results
            .iter()
            .map(|r| BucketTuning {
                workload: r.workload.clone(),
                bucket: r.bucket.clone(),
                arch: r.arch.clone(),
                key: None,
                device: Some(r.device.clone()),
                point: r.point.clone(),
                chosen: r.chosen,
                timed: r
                    .timed
                    .iter()
                    .map(|t| TimedInstance {
                        instance: t.instance.clone(),
                        graph: Some(t.graph.clone()),
                        model_micros: t.model_micros,
                        micros: t.micros,
                        error: t.error.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// What `prism tune` writes next to the lock after a run: the old
/// prism.tune.json's buckets that still belong to `spec`, replaced by this
/// run's. Returns warnings: an old file that does not read is replaced.
pub fn update_after_tune(
    spec: &Spec,
    path: &Path,
    results: &[crate::tune::tuner::BucketResult],
    release: &str,
) -> Result<Vec<String>, ReportError> {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    if path.is_file() {
        match read(path) {
            Ok(old) => files.push(old),
            Err(e) => notes.push(format!("the old {} is replaced: {e}", path.display())),
        }
    }
    files.push(from_results(results, release));
    let data = matched(spec, &files, &mut Vec::new());
    write(path, &to_file(spec, &data, release))?;
    Ok(notes)
}

/// prism.tune.json next to a prism.toml.
pub fn path_for(toml: &Path) -> PathBuf {
    toml.parent()
        .unwrap_or_else(|| Path::new("."))
        .join(TUNE_FILE)
}
