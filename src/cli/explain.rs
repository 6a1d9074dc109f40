//! `prism explain W`: the μGraph chosen for a workload, in readable form,
//! and why it was chosen.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{find_workload, load_spec};
use crate::ir::{Op, Workload};
use crate::search::crosscheck::CrossCheckOptions;
use crate::search::strategies::{SearchReport, choose};
use crate::ugraph::{display, fused};

fn label(c: &crate::search::strategies::CandidateReport) -> String {
    match c.strategy {
        crate::search::strategies::Strategy::Searched(k) => format!("sgraph #{k}"),
        s => s.name().to_string(),
    }
}

/// Why the chosen μGraph looks the way it does: the search's choice among
/// its candidates, and the hand-built fusions that choice applied.
pub fn reasons(w: &Workload, report: &SearchReport) -> Vec<String> {
    let mut out = Vec::new();
    let Some(chosen) = report.chosen.map(|i| &report.candidates[i]) else {
        out.push(
            "no candidate was both proven and cross-checked: the direct lowering (one kernel per operator)"
                .to_string(),
        );
        return out;
    };
    let others: Vec<String> = report
        .candidates
        .iter()
        .filter(|c| c.strategy != chosen.strategy)
        .map(|c| match &c.cost {
            Some(k) => format!("{} {} kernel(s) ~{:.1} µs", label(c), k.kernels, k.micros),
            None => format!("{} (not lowered)", label(c)),
        })
        .collect();
    let micros = chosen.cost.as_ref().map_or(0.0, |k| k.micros);
    out.push(format!(
        "the search chose `{}`: the cheapest candidate proven equivalent and cross-checked (~{micros:.1} µs estimated; {})",
        label(chosen),
        others.join(", ")
    ));
    if let Some((terms, loops)) = &chosen.term {
        let rewrites = chosen.proof.as_ref().map_or(0, |r| *r);
        let pieces: Vec<&str> = loops.split(" | ").collect();
        let split = if chosen.kernels > pieces.len() {
            " (a for-loop split over several blocks writes partial results that a combine kernel merges)"
        } else {
            ""
        };
        if pieces.len() == 1 {
            out.push(format!(
                "the sGraph enumeration fused the program into one kernel{split}, found in the program's saturated e-graph and proven equal to the program in {rewrites} rewrites"
            ));
        } else {
            out.push(format!(
                "the sGraph enumeration cut the program into {} pieces, each a kernel found in its own saturated e-graph, the cut values going through global memory{split}; proven equal to the program in {rewrites} rewrites",
                pieces.len()
            ));
        }
        for (k, t) in terms.iter().enumerate() {
            let piece = k.min(pieces.len() - 1);
            let walk = pieces.get(piece).copied().unwrap_or("no loop");
            let what = if pieces.len() == 1 {
                "it computes".to_string()
            } else {
                format!("piece {piece} computes")
            };
            if walk == "no loop" {
                out.push(format!("{what} {t} with no for-loop"));
            } else {
                out.push(format!("{what} {t} with its for-loop walking {walk}"));
            }
        }
    }
    if chosen.strategy.options().is_some_and(|o| o.fuse_rms_matmul) {
        let g = &w.graph;
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
    }
    out
}

/// The text `prism explain` prints for one workload: the graph the build
/// uses ([`choose`]).
pub fn explain(w: &Workload) -> Result<String, String> {
    let (report, graph) = choose(w, &CrossCheckOptions::default()).map_err(|e| e.to_string())?;
    let mut s = String::new();
    let _ = writeln!(s, "workload {}: {} kernel(s)", w.name, graph.kernels.len());
    for r in reasons(w, &report) {
        let _ = writeln!(s, "  why: {r}");
    }
    let _ = writeln!(s);
    s.push_str(&display::describe(&graph));
    Ok(s)
}

pub fn run(workload: String, path: Option<PathBuf>, color: bool) -> i32 {
    let spec = match load_spec(path, color) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let w = match find_workload(&spec, &workload) {
        Ok(w) => w,
        Err(code) => return code,
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
