//! The search as it stands: every strategy is cross-checked, the cheapest
//! verified candidate is chosen, and `prism search` prints the comparison.

use std::process::Command;

use prism::frontend;
use prism::search::crosscheck::CrossCheckOptions;
use prism::search::strategies::{Strategy, search};

#[test]
fn fused_candidates_win_and_every_candidate_is_verified() {
    let bundled = frontend::embedded().expect("bundled prism.toml");
    for name in ["rms_norm", "rmsnorm_mlp", "swiglu", "ntrans"] {
        let w = bundled.workload(name).expect("workload");
        let (report, graph) = search(w, &CrossCheckOptions::default());
        assert!(
            report.candidates.iter().all(|c| c.cross_check.is_ok()),
            "{name}: {:?}",
            report.candidates
        );
        let chosen = &report.candidates[report.chosen.expect("a choice")];
        assert_ne!(chosen.strategy, Strategy::Direct, "{name}");
        let graph = graph.expect("the chosen graph");
        assert_eq!(graph.kernels.len(), chosen.kernels);
        let direct = &report.candidates[0];
        assert_eq!(direct.strategy, Strategy::Direct);
        let (cd, cc) = (
            direct.cost.as_ref().expect("cost"),
            chosen.cost.as_ref().expect("cost"),
        );
        assert!(
            cc.micros < cd.micros && cc.bytes <= cd.bytes,
            "{name}: {cc:?} vs {cd:?}"
        );
    }
}

#[test]
fn the_search_is_deterministic() {
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let w = bundled.workload("rmsnorm_mlp").expect("workload");
    let (a, ga) = search(w, &CrossCheckOptions::default());
    let (b, gb) = search(w, &CrossCheckOptions::default());
    assert_eq!(a.chosen, b.chosen);
    assert_eq!(ga, gb);
    assert_eq!(
        serde_json::to_string(&a.candidates).expect("json"),
        serde_json::to_string(&b.candidates).expect("json")
    );
}

fn prism(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("prism runs")
}

#[test]
fn prism_search_prints_the_comparison() {
    let out = prism(&["search", "prism.toml", "--workload", "swiglu"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("workload swiglu"), "{stdout}");
    assert!(stdout.contains("→ regions"), "{stdout}");
    assert!(stdout.contains("ok (4 trials)"), "{stdout}");
    let json = prism(&["search", "prism.toml", "--workload", "swiglu", "--json"]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v[0]["workload"], "swiglu");
    assert_eq!(v[0]["candidates"].as_array().map(|a| a.len()), Some(4));
}

#[test]
fn prism_search_names_the_workloads_when_one_is_unknown() {
    let out = prism(&["search", "prism.toml", "--workload", "swigloo"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no workload `swigloo`") && stderr.contains("swiglu"),
        "{stderr}"
    );
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("prism-search-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn the_cache_round_trips_and_treats_bad_entries_as_misses() {
    use prism::search::cache::{Cache, key};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let w = bundled.workload("swiglu").expect("swiglu");
    let cache = Cache::new(temp_dir("cache"));
    assert_eq!(cache.get(w), None);
    cache.put(w, Strategy::Regions).expect("write");
    assert_eq!(cache.get(w), Some(Strategy::Regions));
    let entry = std::fs::read_dir(cache.dir())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("an entry");
    // A truncated entry and an entry of another format version are misses.
    std::fs::write(&entry, "{\"version\": 1, \"strat").expect("corrupt");
    assert_eq!(cache.get(w), None);
    std::fs::write(
        &entry,
        "{\"version\": 999, \"prism\": \"0.1.0\", \"workload\": \"swiglu\", \"strategy\": \"Regions\"}",
    )
    .expect("rewrite");
    assert_eq!(cache.get(w), None);
    // The key follows the program.
    let other = bundled.workload("gated_mlp").expect("gated_mlp");
    assert_ne!(key(w), key(other));
    assert_eq!(key(w), key(w));
}

#[test]
fn a_build_records_its_choices_under_the_target_folder() {
    use prism::search::cache::Cache;
    let target = temp_dir("target");
    std::fs::write(
        target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .expect("tag");
    let out = target.join("debug/build/x-1/out");
    std::fs::create_dir_all(&out).expect("out dir");
    let cache = Cache::for_out_dir(&out).expect("finds the target folder");
    assert_eq!(cache.dir(), target.join("prism/search"));
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let w = bundled.workload("rms_norm").expect("rms_norm");
    let first =
        prism::codegen::generate_cached(w, &bundled.target, Some(&cache)).expect("generates");
    assert!(cache.get(w).is_some(), "the choice was not recorded");
    let second =
        prism::codegen::generate_cached(w, &bundled.target, Some(&cache)).expect("generates");
    assert_eq!(first, second, "a cached build differs from a searched one");
}

fn block_mut(g: &mut prism::ugraph::KernelGraph, k: usize) -> &mut prism::ugraph::BlockGraph {
    match &mut g.kernels[k].body {
        prism::ugraph::KernelBody::Block(b) => b,
        prism::ugraph::KernelBody::Predefined(_) => panic!("kernel {k} is predefined"),
    }
}

/// The proof covers a candidate's algebra, the cross-check its maps: an
/// algebraic mutant is not proven, a map mutant is proven but fails the
/// cross-check. Neither can be chosen.
#[test]
fn proofs_reject_algebraic_mutants_and_the_cross_check_rejects_map_mutants() {
    use prism::ir::{BinaryOp, ScalarExpr, UnaryOp};
    use prism::search::crosscheck::cross_check;
    use prism::search::strategies::prove;
    use prism::ugraph::lower::{LowerOptions, lower};
    use prism::ugraph::{BlockOp, ValueId};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let w = bundled.workload("rmsnorm_mlp").expect("rmsnorm_mlp");
    let fresh = || lower(w, &LowerOptions::default()).expect("lowers");
    assert!(prove(w, &fresh()).is_ok());
    type Mutation = Box<dyn Fn(&mut prism::ugraph::BlockGraph)>;
    let algebraic: Vec<(&str, Mutation)> = vec![
        (
            "sqrt for rsqrt",
            Box::new(|b| b.ops[9] = BlockOp::Unary(UnaryOp::Sqrt, ValueId(8))),
        ),
        (
            "eps 1",
            Box::new(|b| b.ops[7] = BlockOp::Const(ScalarExpr::lit(1.0))),
        ),
        (
            "norm on one side",
            Box::new(|b| b.ops[14] = BlockOp::Binary(BinaryOp::Mul, ValueId(13), ValueId(8))),
        ),
        (
            "sum for product",
            Box::new(|b| b.ops[15] = BlockOp::Binary(BinaryOp::Add, ValueId(10), ValueId(14))),
        ),
        (
            "second matmul reads w_up",
            Box::new(|b| b.inputs[2].tensor = b.inputs[1].tensor),
        ),
    ];
    for (label, mutate) in &algebraic {
        let mut g = fresh();
        mutate(block_mut(&mut g, 0));
        assert!(prove(w, &g).is_err(), "`{label}` was proven equivalent");
        assert!(
            cross_check(w, &g, &CrossCheckOptions::default()).is_err(),
            "`{label}` passed the cross-check"
        );
    }
    // Rows of x replicated across the grid: right algebra, wrong map. The
    // proof checks the block graph's structure first (the tiles no longer
    // fit the output), and the cross-check runs it.
    let mut g = fresh();
    block_mut(&mut g, 0).inputs[0].imap[1] = None;
    let why = prove(w, &g).expect_err("an ill-formed block graph is not proven");
    assert!(why.contains("tile"), "{why}");
    assert!(cross_check(w, &g, &CrossCheckOptions::default()).is_err());
}
