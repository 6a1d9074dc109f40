//! `prism search`: per workload, the candidates compared, their
//! verification and cost, and the choice.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{find_workload, load_spec};
use crate::search::crosscheck::CrossCheckOptions;
use crate::search::strategies::{SearchReport, search};

pub fn render(r: &SearchReport) -> String {
    let mut s = String::new();
    let point: Vec<String> = r.point.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        s,
        "workload {}  ({} candidates, {:.2} s; cost at {})",
        r.workload,
        r.candidates.len(),
        r.seconds,
        point.join(" ")
    );
    let _ = writeln!(
        s,
        "    {:<12} {:>7} {:>12} {:>10}  {:<16} proof",
        "strategy", "kernels", "bytes", "est. µs", "cross-check"
    );
    match &r.sgraph {
        Ok(e) => {
            let _ = writeln!(
                s,
                "    sgraph ({:.2} s): e-graph {} nodes / {} classes; {} loop maps; {} terms → {} instances; {} cut sets → {} multi-kernel graphs; {} valid{}",
                e.seconds,
                e.egraph_nodes,
                e.egraph_classes,
                e.loop_maps,
                e.terms,
                e.instances,
                e.cut_sets,
                e.cut_graphs,
                e.valid,
                if e.walks_at_bound > 0 {
                    format!(" ({} walks at their bound)", e.walks_at_bound)
                } else {
                    String::new()
                }
            );
            for (why, n) in &e.pruned {
                let _ = writeln!(s, "      pruned {n:>7}  {why}");
            }
        }
        Err(e) => {
            let _ = writeln!(s, "    sgraph: failed: {e}");
        }
    }
    for (i, c) in r.candidates.iter().enumerate() {
        let mark = if r.chosen == Some(i) { "→" } else { " " };
        let (bytes, micros) = match &c.cost {
            Some(k) => (k.bytes.to_string(), format!("{:.1}", k.micros)),
            None => ("-".into(), "-".into()),
        };
        let check = match &c.cross_check {
            Ok(n) => format!("ok ({n} trials)"),
            Err(e) => format!("FAILED: {e}"),
        };
        let proof = match &c.proof {
            Ok(n) => format!("proven ({n} rewrites)"),
            Err(e) => {
                let first = e.lines().next().unwrap_or("");
                let short: String = first.chars().take(60).collect();
                short
            }
        };
        let name = match c.strategy {
            crate::search::strategies::Strategy::Searched(k) => format!("sgraph #{k}"),
            other => other.name().to_string(),
        };
        let _ = writeln!(
            s,
            "  {mark} {:<12} {:>7} {:>12} {:>10}  {check:<16} {proof}",
            name, c.kernels, bytes, micros
        );
        if let Some((terms, loops)) = &c.term {
            for t in terms {
                let _ = writeln!(s, "        {t}   [{loops}]");
            }
        }
    }
    s
}

pub fn run(path: Option<PathBuf>, workload: Option<String>, json: bool, color: bool) -> i32 {
    let spec = match load_spec(path, color) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let selected: Vec<&crate::ir::Workload> = match &workload {
        Some(name) => match find_workload(&spec, name) {
            Ok(w) => vec![w],
            Err(code) => return code,
        },
        None => spec.workloads.iter().collect(),
    };
    let mut reports = Vec::new();
    let mut failed = false;
    for w in selected {
        let (report, _) = search(w, &CrossCheckOptions::default());
        failed |= report.chosen.is_none();
        if !json {
            print!("{}", render(&report));
        }
        reports.push(report);
    }
    if json {
        match serde_json::to_string_pretty(&reports) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        }
    }
    i32::from(failed)
}
