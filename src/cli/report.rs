//! `prism report`: write the report page of a prism.toml (what every build
//! writes to `<target>/prism/report.html`), with tune data and measured
//! roofs when given.

use std::path::{Path, PathBuf};

use crate::report::{Options, make, tune_data};

/// The options of `prism report`.
pub struct Args {
    pub path: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub tune: Vec<PathBuf>,
    pub bench: Option<PathBuf>,
    pub save_tune: Option<PathBuf>,
}

/// `$CARGO_TARGET_DIR`, else `target`: where builds keep the search cache.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

pub fn run(a: Args, color: bool) -> i32 {
    let toml: Option<PathBuf> = match &a.path {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("prism.toml")).filter(|p| p.is_file()),
    };
    let spec = match super::load_spec(toml.clone(), color) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let target = target_dir();
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| target.join("prism").join(crate::report::REPORT_FILE));
    let opts = Options {
        tune: a.tune.clone(),
        bench: a.bench.clone(),
        cache: Some(target.join("prism").join("search")),
        search: true,
    };
    let made = match make(&spec, toml.as_deref(), &opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    for w in &made.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &a.save_tune {
        let release = made
            .report
            .nvcc
            .clone()
            .unwrap_or_else(|| "unknown".to_string());
        let file = tune_data::to_file(&spec, &made.tune, &release);
        if let Err(e) = tune_data::write(path, &file) {
            eprintln!("error: {e}");
            return 1;
        }
        eprintln!("wrote {} ({} buckets)", path.display(), file.buckets.len());
    }
    if let Err(e) = crate::report::write(&out, &made.html) {
        eprintln!("error: {e}");
        return 1;
    }
    let (agree, compared) = made.report.agreement();
    if compared > 0 {
        eprintln!(
            "tune data agrees with the build's choice in {agree} of {compared} buckets ({})",
            made.report.arch
        );
    }
    println!("{}", display(&out));
    0
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
