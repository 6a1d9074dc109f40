//! `prism build`: run the whole build path outside cargo — front end, code
//! generation, nvcc, the Rust module — into a folder, and list what it made.

use std::path::PathBuf;

use crate::build::Build;

/// Where `prism build` writes without `--out`.
pub const DEFAULT_OUT: &str = "target/prism/build";

pub fn run(path: Option<PathBuf>, out: Option<PathBuf>, archs: Vec<String>) -> i32 {
    let out = out.unwrap_or_else(|| PathBuf::from(DEFAULT_OUT));
    let toml = match path {
        Some(p) => p,
        None if PathBuf::from("prism.toml").is_file() => PathBuf::from("prism.toml"),
        None => {
            // The bundled file: written next to the output so the build reads
            // it like any other.
            let p = out.join("bundled-prism.toml");
            let written = std::fs::create_dir_all(&out)
                .and_then(|()| std::fs::write(&p, crate::frontend::EMBEDDED_PRISM_TOML));
            if let Err(e) = written {
                eprintln!(
                    "error: cannot write {}: {e}\nhint: pass --out with a writable folder",
                    p.display()
                );
                return 1;
            }
            p
        }
    };
    let mut build = Build::from_toml(&toml).out_dir(&out).emit_directives(false);
    for a in archs {
        build = build.arch(a);
    }
    match build.try_run() {
        Ok(o) => {
            for w in &o.warnings {
                eprintln!("warning: {w}");
            }
            let archs: Vec<String> = o.archs.iter().map(|a| a.to_string()).collect();
            println!(
                "{}: {} workloads for {}",
                toml.display(),
                o.workloads.len(),
                archs.join(", ")
            );
            for w in &o.workloads {
                let fatbin = w
                    .fatbin_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(no fatbin: DOCS_RS)".into());
                println!("  {:<20} {:>3} kernels  {}", w.name, w.kernels, fatbin);
            }
            println!("module {}", o.module_path.display());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
