//! `prism explain W`: the μGraph chosen for a workload, in readable form,
//! and why it was chosen.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::resolve_source;
use crate::ir::{Op, Workload};
use crate::ugraph::lower::{LowerOptions, lower};
use crate::ugraph::{display, fused};

/// Why the μGraph looks the way it does (until the search exists, the
/// direct lowering and the hand-built fusions it applied).
pub fn reasons(w: &Workload) -> Vec<String> {
    let g = &w.graph;
    let mut out = vec![
        "no search yet: the direct lowering (one kernel per operator, constants inlined)"
            .to_string(),
    ];
    for (i, n) in g.nodes.iter().enumerate() {
        if let Op::Matmul(a, b) = &n.op
            && let Some(m) = fused::match_rms_norm(g, *a, *b)
        {
            out.push(format!(
                "%{i} = matmul(rms_norm(%{}), %{}) fused into one kernel: the row norm is computed per block and applied after the matmul",
                m.x.0, b.0
            ));
        }
    }
    out
}

/// The text `prism explain` prints for one workload.
pub fn explain(w: &Workload) -> Result<String, String> {
    let graph = lower(w, &LowerOptions::default()).map_err(|e| e.to_string())?;
    let mut s = String::new();
    let _ = writeln!(s, "workload {}: {} kernel(s)", w.name, graph.kernels.len());
    for r in reasons(w) {
        let _ = writeln!(s, "  why: {r}");
    }
    let _ = writeln!(s);
    s.push_str(&display::describe(&graph));
    Ok(s)
}

pub fn run(workload: String, path: Option<PathBuf>, color: bool) -> i32 {
    let source = match resolve_source(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let spec = match crate::frontend::parse(&source.name, &source.text) {
        Ok(s) => s,
        Err(rep) => {
            eprint!("{}", rep.render(color));
            return 1;
        }
    };
    let Some(w) = spec.workload(&workload) else {
        let names: Vec<&str> = spec.workloads.iter().map(|w| w.name.as_str()).collect();
        eprintln!(
            "error: {} has no workload `{workload}`\nhint: its workloads are: {}",
            spec.source_name,
            names.join(", ")
        );
        return 1;
    };
    match explain(w) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
