//! `prism check`: validate a prism.toml and show what it declares.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::resolve_source;
use crate::diagnostics::LocatedDiagnostic;
use crate::ir::{DimDecl, Graph, Spec, Target, Workload, type_string};

#[derive(Serialize)]
pub struct CheckReport {
    pub file: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub workloads: Vec<WorkloadReport>,
    pub diagnostics: Vec<LocatedDiagnostic>,
}

#[derive(Serialize)]
pub struct WorkloadReport {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub dims: Vec<DimDecl>,
    pub inputs: Vec<NamedType>,
    pub ops: Vec<OpReport>,
    pub outputs: Vec<NamedType>,
    pub points: usize,
    pub tolerance: f64,
}

#[derive(Serialize)]
pub struct NamedType {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

#[derive(Serialize)]
pub struct OpReport {
    pub id: String,
    pub op: String,
    #[serde(rename = "type")]
    pub ty: String,
}

fn ops(graph: &Graph) -> Vec<OpReport> {
    (0..graph.nodes.len())
        .map(|i| {
            let id = crate::ir::NodeId(i);
            let n = graph.node(id);
            OpReport {
                id: id.to_string(),
                op: graph.describe(id),
                ty: type_string(n.dtype, &n.shape),
            }
        })
        .collect()
}

pub fn workload_report(w: &Workload) -> WorkloadReport {
    let g = &w.graph;
    WorkloadReport {
        name: w.name.clone(),
        description: w.description.clone(),
        dims: w.dims.clone(),
        inputs: g
            .inputs
            .iter()
            .map(|i| NamedType {
                name: i.name.clone(),
                ty: type_string(i.dtype, &i.shape),
            })
            .collect(),
        ops: ops(g),
        outputs: g
            .outputs
            .iter()
            .map(|o| {
                let n = g.node(o.node);
                NamedType {
                    name: o.name.clone(),
                    ty: format!("{} = {}", type_string(n.dtype, &n.shape), o.node),
                }
            })
            .collect(),
        points: w.points.len(),
        tolerance: w.tolerance,
    }
}

pub fn report(spec: &Spec) -> CheckReport {
    CheckReport {
        file: spec.source_name.clone(),
        ok: true,
        target: Some(spec.target.clone()),
        workloads: spec.workloads.iter().map(workload_report).collect(),
        diagnostics: vec![],
    }
}

/// Human-readable listing of a valid spec.
pub fn render(spec: &Spec) -> String {
    let mut s = String::new();
    let archs: Vec<String> = spec.target.archs.iter().map(|a| a.to_string()).collect();
    let _ = writeln!(
        s,
        "{}: {} workloads, target {} ({} by default)\n",
        spec.source_name,
        spec.workloads.len(),
        archs.join(", "),
        spec.target.dtype
    );
    for w in &spec.workloads {
        let r = workload_report(w);
        let _ = writeln!(s, "workload {}", r.name);
        if let Some(d) = &r.description {
            let _ = writeln!(s, "  {d}");
        }
        let dims: Vec<String> = r
            .dims
            .iter()
            .map(|d| format!("{} ∈ {}", d.name, d.values))
            .collect();
        let _ = writeln!(s, "  dims     {}", dims.join(", "));
        let _ = writeln!(s, "  points   {}   tolerance {:e}", r.points, r.tolerance);
        for op in &r.ops {
            let _ = writeln!(s, "  {:>4} = {:<36} {}", op.id, op.op, op.ty);
        }
        for o in &r.outputs {
            let _ = writeln!(s, "  output {} : {}", o.name, o.ty);
        }
        s.push('\n');
    }
    s
}

pub fn run(path: Option<PathBuf>, json: bool, color: bool) -> i32 {
    let source = match resolve_source(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    match crate::frontend::parse(&source.name, &source.text) {
        Ok(spec) => {
            if json {
                println!("{}", to_json(&report(&spec)));
            } else {
                print!("{}", render(&spec));
                eprintln!("ok: {} is valid", spec.source_name);
            }
            0
        }
        Err(rep) => {
            if json {
                let r = CheckReport {
                    file: source.name.clone(),
                    ok: false,
                    target: None,
                    workloads: vec![],
                    diagnostics: rep.located(),
                };
                println!("{}", to_json(&r));
            }
            eprint!("{}", rep.render(color));
            let n = rep.diagnostics.len();
            eprintln!(
                "error: {} has {n} problem{}",
                source.name,
                if n == 1 { "" } else { "s" }
            );
            1
        }
    }
}

pub fn to_json(r: &CheckReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
