//! Builds the bundled prism.toml's kernels into the module `kernels`
//! (`OUT_DIR/kernels.rs`), from the committed tuned prism.lock beside it, and
//! writes `OUT_DIR/points.rs`: the declared points and the tolerance of the
//! two workloads the example runs, so that the binary follows prism.toml.

use std::fmt::Write as _;
use std::path::Path;

const TOML: &str = "../../prism.toml";
/// The workloads the example runs, with the Rust name of their enum variant.
const WORKLOADS: &[(&str, &str)] = &[("rms_norm", "RmsNorm"), ("swiglu", "Swiglu")];

fn main() {
    prism::build::Build::from_toml(TOML)
        .module_name("kernels")
        // candle-core's `cuda` feature builds cudarc with `dynamic-linking`.
        .driver_linking(prism::build::DriverLinking::Linked)
        .run();
    if let Err(e) = write_points() {
        println!("cargo::error={e}");
        std::process::exit(1);
    }
}

fn write_points() -> Result<(), String> {
    let spec = prism::frontend::load(Path::new(TOML)).map_err(|e| format!("{TOML}: {e}"))?;
    let mut text = String::from(
        "/// The declared points of the workloads the example runs, from prism.toml.\n\
         const POINTS: &[Point] = &[\n",
    );
    for (name, variant) in WORKLOADS {
        let w = spec
            .workload(name)
            .ok_or_else(|| format!("{TOML} has no workload `{name}`"))?;
        for p in &w.points {
            let dim = |d: &str| {
                p.get(d)
                    .copied()
                    .ok_or_else(|| format!("a point of `{name}` in {TOML} has no `{d}`"))
            };
            let _ = writeln!(
                text,
                "    Point {{ workload: Workload::{variant}, n: {}, d: {}, tolerance: {:?} }},",
                dim("n")?,
                dim("d")?,
                w.tolerance
            );
        }
    }
    text.push_str("];\n");
    let out = std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?;
    let path = Path::new(&out).join("points.rs");
    std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
}
