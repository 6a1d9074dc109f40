//! `prism bench`: time the kernels a build would embed on this machine's
//! GPU (`crate::bench`), print a table, optionally write the JSON report.

use std::path::{Path, PathBuf};

use crate::bench::{DEFAULT_REPS, Options, Progress, Report, Row};

/// The options of `prism bench`.
pub struct Args {
    pub path: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub workloads: Vec<String>,
    pub reps: usize,
}

fn toml_path(path: Option<PathBuf>) -> Result<PathBuf, String> {
    match path {
        Some(p) => Ok(p),
        None if Path::new("prism.toml").is_file() => Ok(PathBuf::from("prism.toml")),
        None => Err(
            "no prism.toml here\nhint: pass the prism.toml to bench, e.g. `prism bench path/to/prism.toml` (its prism.lock is read from next to it)"
                .into(),
        ),
    }
}

/// A progress bar on stderr.
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn phase(&self, what: &str) {
        self.0.set_message(what.to_string());
        self.0.tick();
    }
    fn rows(&self, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(0);
    }
    fn row(&self, row: &Row) {
        self.0
            .set_message(format!("{} {}", row.workload, dims_label(&row.dims)));
        self.0.inc(1);
    }
    fn warn(&self, message: &str) {
        self.0.suspend(|| eprintln!("warning: {message}"));
    }
}

/// `d=1024 n=8`.
pub fn dims_label(dims: &std::collections::BTreeMap<String, i64>) -> String {
    dims.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn run(a: Args, color: bool) -> i32 {
    let toml = match toml_path(a.path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let spec = match crate::frontend::load(&toml) {
        Ok(s) => s,
        Err(crate::Error::Invalid(r)) => {
            eprint!("{}", r.render(color));
            return 1;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let o = Options {
        work_dir: crate::bench::default_work_dir(&toml),
        toml,
        workloads: a.workloads,
        reps: a.reps,
        warmup: crate::bench::WARMUP,
    };
    if let Err(e) = crate::bench::preflight(&spec, &o) {
        eprintln!("error: {e}");
        return 1;
    }
    if o.reps < DEFAULT_REPS {
        eprintln!(
            "note: --reps {} is below {DEFAULT_REPS}, the count do_bench-style numbers are compared at; the times are noisier",
            o.reps
        );
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} points {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = Bar(bar);
    let report = match crate::bench::run(&spec, &o, &progress) {
        Ok(r) => r,
        Err(e) => {
            progress.0.abandon();
            eprintln!("error: {e}");
            return 1;
        }
    };
    progress.0.finish_and_clear();
    print!("{}", table(&report));
    if let Some(path) = &a.json {
        let text = match serde_json::to_string_pretty(&report) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot serialize the report: {e}");
                return 1;
            }
        };
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write {}: {e}", path.display());
            return 1;
        }
        println!("wrote {}", path.display());
    }
    if report.failed() {
        let n = report.rows.iter().filter(|r| r.error.is_some()).count();
        eprintln!("error: {n} of {} rows failed", report.rows.len());
        1
    } else {
        0
    }
}

fn us(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// The table: one line per row (columns as wide as their longest
/// entry), then the device and its floors.
pub fn table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let lines: Vec<[String; 10]> = r
        .rows
        .iter()
        .map(|row| {
            let check = match (&row.error, row.checked) {
                (Some(e), _) => format!("FAILED: {e}"),
                (None, crate::bench::Checked::Cpu) => {
                    format!("cpu {:.1e}", row.max_error.unwrap_or(f64::NAN))
                }
                (None, crate::bench::Checked::Finite) => "finite".into(),
            };
            let source = match row.source {
                crate::bench::ChoiceSource::Measured => "",
                crate::bench::ChoiceSource::Model => " (model)",
            };
            [
                row.workload.clone(),
                dims_label(&row.dims),
                format!("{}{source}", row.variant),
                us(row.median_us),
                format!("{:.2}", row.roofline_us),
                format!("{:.2}", row.limit_us),
                row.over_limit
                    .map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
                row.read_floor_us
                    .map_or_else(|| "-".into(), |x| format!("{x:.2}")),
                row.over_read_floor
                    .map_or_else(|| "-".into(), |x| format!("{x:.2}x")),
                check,
            ]
        })
        .collect();
    let head = [
        "workload", "dims", "variant", "µs", "roofline", "limit", "×limit", "read", "×read",
        "check",
    ];
    let width = |i: usize| {
        lines
            .iter()
            .map(|l| l[i].chars().count())
            .chain([head[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let w: Vec<usize> = (0..10).map(width).collect();
    let mut print = |c: [&str; 10]| {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}  {:>w4$}  {:>w5$}  {:>w6$}  {:>w7$}  {:>w8$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            c[6],
            c[7],
            c[8],
            c[9],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4],
            w5 = w[5],
            w6 = w[6],
            w7 = w[7],
            w8 = w[8],
        );
    };
    print(head);
    for l in &lines {
        print(std::array::from_fn(|i| l[i].as_str()));
    }
    let _ = writeln!(
        out,
        "\n{} ({}, {} SMs), nvcc {}: copy {:.2} TB/s, mma.sync {:.0} TFLOP/s, launch floor {:.2} µs; median of {} after {} warm-up, {} MiB zeroed before each; read = a bare read of the row's bytes under the same flush",
        r.device,
        r.arch,
        r.sms.map_or_else(|| "?".into(), |s| s.to_string()),
        r.nvcc,
        r.copy_bytes_per_s / 1e12,
        r.mma_flops_per_s / 1e12,
        r.launch_floor_us,
        r.reps,
        r.warmup,
        r.flush_bytes >> 20
    );
    out
}
