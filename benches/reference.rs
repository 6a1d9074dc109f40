//! Speed of the CPU reference interpreter on the shapes the later stages
//! check against. Prints a JSON summary; run with
//! `cargo bench --bench reference`.

use std::time::Instant;

use prism::ir::DimBindings;
use prism::reference::{Precision, eval, random_inputs};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let src = "[workload.mm]\ninputs = { x = \"f16[n, k]\", w = \"f16[k, m]\" }\nprogram = \"x @ w\"\ndims = { n = [16], k = [4096], m = [4096] }\ninit = { w = \"1/sqrt(k)\" }\n";
    let mut rows = Vec::new();
    let mut cases: Vec<(String, prism::ir::Workload, DimBindings)> = Vec::new();
    match prism::frontend::parse("bench.toml", src) {
        Ok(mut s) => {
            let w = s.workloads.remove(0);
            let p = w.points[0].clone();
            cases.push(("matmul 16x4096 . 4096x4096".into(), w, p));
        }
        Err(r) => {
            eprintln!("{r}");
            std::process::exit(1);
        }
    }
    let spec = match prism::frontend::embedded() {
        Ok(s) => s,
        Err(r) => {
            eprintln!("{r}");
            std::process::exit(1);
        }
    };
    for (name, point) in [
        ("rms_norm", 4usize),
        ("attention", 1),
        ("gated_mlp", 1),
        ("gqa_decode", 4),
    ] {
        if let Some(w) = spec.workload(name) {
            cases.push((
                format!("{name} {:?}", w.points[point]),
                w.clone(),
                w.points[point].clone(),
            ));
        }
    }
    for (name, w, p) in &cases {
        let inputs = match random_inputs(w, p, 0) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        };
        for precision in [Precision::F64, Precision::Declared] {
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                if let Err(e) = eval(&w.graph, p, &inputs, precision) {
                    eprintln!("{name}: {e}");
                    std::process::exit(1);
                }
                times.push(t.elapsed().as_secs_f64());
            }
            let m = median(times);
            eprintln!("{name:60} {precision:?}: {:.1} ms", m * 1e3);
            rows.push(serde_json::json!({"case": name, "precision": format!("{precision:?}"), "median_s": m}));
        }
    }
    let out = serde_json::json!({
        "bench": "reference-interpreter",
        "threads": rayon::current_num_threads(),
        "rows": rows,
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}
