//! `prism equiv FILE`: is `lhs` equal to `rhs`? A numeric check first (a
//! counterexample is a disproof), then an e-graph proof.

use std::path::PathBuf;

use serde_json::json;

use crate::verify::equiv_file::{self, EquivProblem};
use crate::verify::{Limits, REL_L2_THRESHOLD, Verdict, numeric_check, prove};

/// The end of `prism equiv --help`.
pub const HELP: &str = "\
FILE looks like:

  inputs = { x = \"f32[n, d]\", w = \"f32[d, e]\" }
  dims = { n = \"1..=64\", d = \"1..=4096\", e = \"1..=4096\" }
  lhs = \"rms_norm(x) @ w\"
  rhs = \"(x @ w) * rsqrt(mean(square(x), -1, keepdim=true) + 1e-6)\"
  dtype = \"f32\"   # optional: dtype of inputs written without one (default f16)

lhs and rhs are expressions of the prism.toml program language over the
inputs; both must have the same shape and dtype.

Output and exit code:
  equivalent (N rewrites, M e-nodes)                    exit 0: proven for all dims
  not equivalent: counterexample at n=3 d=5 ...: ...    exit 1: differ numerically
  unknown: <reason>                                     exit 2: no proof, no counterexample
  a bad file: the diagnostics, as `prism check` shows   exit 2
";

/// Exit codes.
pub const EQUIVALENT: i32 = 0;
pub const NOT_EQUIVALENT: i32 = 1;
pub const UNKNOWN: i32 = 2;

/// Seeds of the numeric check.
const SEEDS: [u64; 2] = [1, 2];

pub struct Options {
    pub path: PathBuf,
    pub json: bool,
    pub limits: Limits,
}

fn print_json(v: serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(&v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    );
}

pub fn run(opts: Options, color: bool) -> i32 {
    let name = opts.path.display().to_string();
    let source = match std::fs::read_to_string(&opts.path) {
        Ok(s) => s,
        Err(e) => {
            if opts.json {
                print_json(json!({ "file": name, "result": "error", "error": e.to_string() }));
            }
            eprintln!("error: cannot read {name}: {e}");
            return UNKNOWN;
        }
    };
    let problem = match equiv_file::parse(&name, &source) {
        Ok(p) => p,
        Err(rep) => {
            if opts.json {
                print_json(json!({
                    "file": name,
                    "result": "error",
                    "diagnostics": rep.located(),
                }));
            }
            eprint!("{}", rep.render(color));
            let n = rep.diagnostics.len();
            eprintln!(
                "error: {name} has {n} problem{}",
                if n == 1 { "" } else { "s" }
            );
            return UNKNOWN;
        }
    };
    decide(&problem, &opts)
}

fn decide(p: &EquivProblem, opts: &Options) -> i32 {
    let name = &p.path;
    let (lg, rg) = (p.lhs_graph(), p.rhs_graph());
    let check = numeric_check(&lg, &rg, &p.workload.dims, &SEEDS, REL_L2_THRESHOLD);
    if let Some(ce) = &check.counterexample {
        if opts.json {
            print_json(json!({
                "file": name,
                "result": "not_equivalent",
                "counterexample": ce,
            }));
        } else {
            let c = &ce.comparison;
            let extra = if c.non_finite_mismatches > 0 {
                format!(
                    " ({} elements finite on one side only)",
                    c.non_finite_mismatches
                )
            } else {
                String::new()
            };
            let order: Vec<&str> = p.workload.dims.iter().map(|d| d.name.as_str()).collect();
            println!(
                "not equivalent: counterexample at {} (seed {}): relative L2 error {:.3e}{extra}",
                ce.dims_string_in(&order),
                ce.seed,
                c.rel_l2
            );
        }
        return NOT_EQUIVALENT;
    }
    if check.evaluated == 0 && !opts.json {
        eprintln!("note: no dim point was small enough to check numerically");
    }
    let exprs = p.lhs_expr().and_then(|l| Ok((l, p.rhs_expr()?)));
    let verdict = match exprs {
        Ok((l, r)) => prove(&l, &r, &opts.limits),
        Err(e) => {
            eprintln!("error: {e}");
            return UNKNOWN;
        }
    };
    match verdict {
        Ok(
            v @ Verdict::Equivalent {
                rewrites, nodes, ..
            },
        ) => {
            if opts.json {
                print_json(
                    json!({ "file": name, "result": "equivalent", "proof": v, "numeric": check }),
                );
            } else {
                println!("equivalent ({rewrites} rewrites, {nodes} e-nodes)");
            }
            EQUIVALENT
        }
        Ok(v @ Verdict::Unknown { .. }) => {
            if opts.json {
                print_json(
                    json!({ "file": name, "result": "unknown", "proof": v, "numeric": check }),
                );
            } else if let Verdict::Unknown {
                reason,
                rewrites,
                nodes,
                ..
            } = &v
            {
                let numeric = match &check.worst {
                    Some(w) => format!(
                        "; numerically equal at {} points (relative L2 error ≤ {:.1e})",
                        check.evaluated, w.rel_l2
                    ),
                    None => String::new(),
                };
                println!("unknown: {reason} ({rewrites} rewrites, {nodes} e-nodes){numeric}");
            }
            UNKNOWN
        }
        Err(e) => {
            if opts.json {
                print_json(json!({ "file": name, "result": "error", "error": e.to_string() }));
            }
            eprintln!("error: {e}");
            UNKNOWN
        }
    }
}
