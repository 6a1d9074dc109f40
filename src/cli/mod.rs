//! The `prism` command line.

pub mod build;
pub mod check;
pub mod explain;

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
}

/// Which prism.toml a command works on, and its text.
pub struct Source {
    pub name: String,
    pub text: String,
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
        Command::Explain { workload, path } => explain::run(workload, path, color),
    }
}
