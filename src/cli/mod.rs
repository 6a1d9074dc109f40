//! The `prism` command line.

pub mod bench;
pub mod build;
pub mod check;
pub mod equiv;
pub mod explain;
pub mod report;
pub mod search;
pub mod tune;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// prism: an ahead-of-time symbolic superoptimizer for GPU tensor programs.
///
/// prism reads the workloads declared in a prism.toml (tensor programs and
/// their shape ranges) and turns them into fused, tuned GPU kernels.
#[derive(Parser, Debug)]
#[command(name = "prism", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and validate a prism.toml, and print each workload's operators
    /// with their inferred shapes.
    ///
    /// Without PATH, checks ./prism.toml if there is one, else the bundled
    /// default. Exits 0 when the file is valid, 1 when it is not (each problem
    /// is shown at its line and column with a hint).
    Check {
        /// The prism.toml to check.
        path: Option<PathBuf>,
        /// Print a JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare the candidate μGraphs of each workload: kernels, estimated
    /// global-memory traffic and cost, and the numeric cross-check against
    /// the reference interpreter; marks the one chosen (→).
    ///
    /// Exits 1 when some workload has no verified candidate.
    Search {
        /// The prism.toml (default ./prism.toml, else the bundled one).
        path: Option<PathBuf>,
        /// Only this workload.
        #[arg(long)]
        workload: Option<String>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Show the μGraph chosen for a workload: its tensors, and per kernel
    /// the grid, loop, maps, launch parameters and block operators with
    /// their tile shapes, and why it was chosen.
    Explain {
        /// The workload's name.
        workload: String,
        /// The prism.toml (default ./prism.toml, else the bundled one).
        path: Option<PathBuf>,
    },
    /// Generate, compile and wrap the kernels of a prism.toml, as a
    /// downstream build.rs does through `prism::Build`, into a folder: one
    /// `.cu` and one fatbin per workload and the Rust module.
    ///
    /// Without PATH, builds ./prism.toml if there is one, else the bundled
    /// default. Needs nvcc (see NVCC / CUDA_HOME); no GPU.
    Build {
        /// The prism.toml to build.
        path: Option<PathBuf>,
        /// Output folder (default target/prism/build).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Architectures to build for instead of `[target] arch`, e.g.
        /// `--arch sm_90a --arch 86`.
        #[arg(long = "arch")]
        archs: Vec<String>,
    },
    /// Tune the workloads of a prism.toml on this machine's GPUs and write
    /// prism.lock next to it.
    ///
    /// Per workload and shape bucket, the cost model ranks the verified
    /// instances (the search's candidates with their split factors set),
    /// the best `--top-k` are compiled with nvcc, checked against the
    /// reference on the GPU and timed (CUDA events, L2 flushed, median),
    /// and the fastest correct one is recorded. Architectures of `[target]
    /// arch` without a GPU here get the cost model's choice. Prints a table
    /// (chosen kernel, time, the model's choice, % of the roofline floor).
    ///
    /// With --check: no GPU needed; exits 1 when the lock is missing,
    /// incomplete or stale for this prism.toml, prism and nvcc (for CI).
    Tune {
        /// The prism.toml (default ./prism.toml).
        path: Option<PathBuf>,
        /// Only check the lock; tune nothing.
        #[arg(long)]
        check: bool,
        /// No GPU: record the cost model's choice for every entry a GPU has
        /// not measured (marked `source = "model"`).
        #[arg(long, conflicts_with = "check")]
        model: bool,
        /// Only these workloads (repeatable); other entries are kept.
        #[arg(long = "workload")]
        workloads: Vec<String>,
        /// Instances timed per bucket (the cost model's best).
        #[arg(long, default_value_t = 10)]
        top_k: usize,
        /// Timed launches per instance (half for slow ones).
        #[arg(long, default_value_t = 30)]
        reps: usize,
        /// Also write the full report (every timed instance) as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Time, on this machine's GPU, the kernels a build of a prism.toml
    /// would embed, next to the device's floors.
    ///
    /// Per workload, the build's choices (prism.lock's, else the cost
    /// model's) are compiled for the GPU's arch; per declared point (the
    /// largest point when none are declared) the variant the generated
    /// runtime dispatches to is checked (against the CPU reference when
    /// cheap, else for finite outputs) and timed as triton's do_bench does:
    /// 10 warm-up launches, then --reps launches, each after zeroing a 256
    /// MiB buffer, between CUDA events. The floors are measured in the same
    /// run: a 1 GiB device copy, an mma.sync probe, an empty kernel; each
    /// row gets roofline = max(bytes / copy bandwidth, flops / mma peak) and
    /// limit = roofline + launch floor. Prints a table; exits 1 when a row
    /// fails its check or cannot run, or without an NVIDIA GPU and driver.
    Bench {
        /// The prism.toml (default ./prism.toml); its prism.lock is read
        /// from next to it.
        path: Option<PathBuf>,
        /// Also write the report (device, floors, every row) as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Only these workloads (repeatable).
        #[arg(long = "workload")]
        workloads: Vec<String>,
        /// Timed launches per point (below 100 only for quick looks).
        #[arg(long, default_value_t = crate::bench::DEFAULT_REPS)]
        reps: usize,
    },
    /// Write the report page of a prism.toml: per workload the chosen
    /// μGraph as a diagram, the search funnel, the tuning landscape and a
    /// roofline of every kernel (what every build writes to
    /// `<target>/prism/report.html`). Prints the page's path.
    ///
    /// One self-contained HTML file (inline CSS and SVG, nothing fetched).
    /// Runs the search's proofs and cross-checks for workloads whose funnel
    /// is not cached yet, and caches them under
    /// `$CARGO_TARGET_DIR/prism/search` (else `target/prism/search`), where
    /// builds find them.
    Report {
        /// The prism.toml (default ./prism.toml, else the bundled one); its
        /// prism.lock and prism.tune.json are read from next to it.
        path: Option<PathBuf>,
        /// Where to write the page (default
        /// `$CARGO_TARGET_DIR/prism/report.html`, else
        /// `target/prism/report.html`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Tune data instead of the prism.tune.json next to the prism.toml:
        /// a `prism tune --json` report or a prism.tune.json (repeatable;
        /// later files win per bucket).
        #[arg(long = "tune")]
        tune: Vec<PathBuf>,
        /// A `prism bench --json` report: its measured copy bandwidth and
        /// mma peak become the roofline's roofs (else the hardware
        /// description's, labelled "spec").
        #[arg(long)]
        bench: Option<PathBuf>,
        /// Also write the tune data used, as prism.tune.json (keyed to this
        /// prism.toml; what builds read from next to it).
        #[arg(long)]
        save_tune: Option<PathBuf>,
    },
    /// Decide whether two tensor programs are equal: `lhs` and `rhs` of an
    /// equivalence file. Exit codes: 0 equivalent, 1 not equivalent, 2
    /// unknown or a bad file.
    ///
    /// First evaluates both sides in f64 on random inputs at small dims (a
    /// difference is a counterexample), then tries to prove them equal for
    /// every dim value with e-graph rewriting (sound algebraic rules).
    #[command(after_long_help = equiv::HELP)]
    Equiv {
        /// The equivalence file.
        path: PathBuf,
        /// Print a JSON document on stdout instead of text.
        #[arg(long)]
        json: bool,
        /// Largest e-graph (e-nodes) of the proof search.
        #[arg(long, default_value_t = crate::verify::Limits::default().nodes)]
        node_limit: usize,
        /// Most rewrite iterations of the proof search.
        #[arg(long, default_value_t = crate::verify::Limits::default().iterations)]
        iter_limit: usize,
    },
}

/// Which prism.toml a command works on, and its text.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// The validated spec a command works on (see [`resolve_source`]), or,
/// after printing why there is none, the exit code.
pub fn load_spec(path: Option<PathBuf>, color: bool) -> Result<crate::ir::Spec, i32> {
    let source = resolve_source(path).map_err(|e| {
        eprintln!("error: {e}");
        1
    })?;
    crate::frontend::parse(&source.name, &source.text).map_err(|rep| {
        eprint!("{}", rep.render(color));
        1
    })
}

/// Workload `name` of `spec`, or, after naming the workloads there are, the
/// exit code.
pub fn find_workload<'a>(
    spec: &'a crate::ir::Spec,
    name: &str,
) -> Result<&'a crate::ir::Workload, i32> {
    spec.workload(name).ok_or_else(|| {
        let names: Vec<&str> = spec.workloads.iter().map(|w| w.name.as_str()).collect();
        eprintln!(
            "error: {} has no workload `{name}`\nhint: its workloads are: {}",
            spec.source_name,
            names.join(", ")
        );
        1
    })
}

/// `path`, else ./prism.toml, else the bundled file.
pub fn resolve_source(path: Option<PathBuf>) -> Result<Source, crate::Error> {
    let path = match path {
        Some(p) => Some(p),
        None => {
            let local = PathBuf::from("prism.toml");
            local.is_file().then_some(local)
        }
    };
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(&p).map_err(|e| crate::Error::Read {
                path: p.clone(),
                source: e,
            })?;
            Ok(Source {
                name: p.display().to_string(),
                text,
            })
        }
        None => Ok(Source {
            name: crate::frontend::EMBEDDED_NAME.to_string(),
            text: crate::frontend::EMBEDDED_PRISM_TOML.to_string(),
        }),
    }
}

/// Run the command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    match cli.command {
        Command::Check { path, json } => check::run(path, json, color),
        Command::Build { path, out, archs } => build::run(path, out, archs),
        Command::Equiv {
            path,
            json,
            node_limit,
            iter_limit,
        } => {
            let limits = crate::verify::Limits {
                nodes: node_limit,
                iterations: iter_limit,
                ..Default::default()
            };
            equiv::run(equiv::Options { path, json, limits }, color)
        }
        Command::Tune {
            path,
            check,
            model,
            workloads,
            top_k,
            reps,
            json,
        } => tune::run(
            tune::Options {
                path,
                check,
                model,
                workloads,
                top_k,
                reps,
                json,
            },
            color,
        ),
        Command::Bench {
            path,
            json,
            workloads,
            reps,
        } => bench::run(
            bench::Args {
                path,
                json,
                workloads,
                reps,
            },
            color,
        ),
        Command::Explain { workload, path } => explain::run(workload, path, color),
        Command::Report {
            path,
            out,
            tune,
            bench,
            save_tune,
        } => report::run(
            report::Args {
                path,
                out,
                tune,
                bench,
                save_tune,
            },
            color,
        ),
        Command::Search {
            path,
            workload,
            json,
        } => search::run(path, workload, json, color),
    }
}
