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
        let direct = report
            .candidates
            .iter()
            .find(|c| c.strategy == Strategy::Direct)
            .expect("the direct lowering is a candidate");
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
    assert!(stdout.contains("→ sgraph #0"), "{stdout}");
    assert!(stdout.contains("ok (4 trials)"), "{stdout}");
    // The enumeration's counts and the winning term.
    assert!(stdout.contains("terms →"), "{stdout}");
    assert!(stdout.contains("pruned"), "{stdout}");
    assert!(
        stdout.contains("(mul (silu (matmul x w_gate)) (matmul x w_up))"),
        "{stdout}"
    );
    let json = prism(&["search", "prism.toml", "--workload", "swiglu", "--json"]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v[0]["workload"], "swiglu");
    // Three searched candidates, then the four lowering strategies.
    assert_eq!(v[0]["candidates"].as_array().map(|a| a.len()), Some(7));
    assert!(
        v[0]["sgraph"]["Ok"]["terms"]
            .as_u64()
            .is_some_and(|t| t > 0),
        "{v}"
    );
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
    let g = prism::ugraph::lower::lower(w, &prism::ugraph::lower::LowerOptions::default())
        .expect("lowers");
    cache.put(w, Strategy::Regions, &g).expect("write");
    let print = prism::search::cache::graph_fingerprint(&g);
    assert_eq!(cache.get(w), Some((Strategy::Regions, print)));
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

/// Flash-decoding candidates: the search picks them for the attention
/// workloads, and every planted bug in the partial kernel or the combine is
/// rejected by the proof *and* by the cross-check.
#[test]
fn flash_attention_is_chosen_and_its_mutants_are_rejected() {
    use prism::ir::{BinaryOp, ReduceOp, UnaryOp};
    use prism::search::crosscheck::cross_check;
    use prism::search::strategies::prove;
    use prism::ugraph::lower::lower;
    use prism::ugraph::{AccumKind, BlockOp, ValueId};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    for name in ["attention", "gqa_decode"] {
        let w = bundled.workload(name).expect("workload");
        let (report, graph) = search(w, &CrossCheckOptions::default());
        // The enumeration finds flash decoding itself (a split kernel and
        // its combine) and wins the tie with the hand-written strategy,
        // which is proven too.
        let chosen = report.chosen.map(|i| report.candidates[i].strategy);
        assert!(
            matches!(chosen, Some(Strategy::Searched(_))),
            "{name}: {report:?}"
        );
        assert_eq!(graph.expect("a graph").kernels.len(), 2, "{name}");
        let flash = report
            .candidates
            .iter()
            .find(|c| c.strategy == Strategy::Flash)
            .expect("the flash strategy is a candidate");
        assert!(flash.proof.is_ok() && flash.cross_check.is_ok(), "{name}");
    }
    const fn v(i: usize) -> ValueId {
        ValueId(i)
    }
    fn acc(kind: AccumKind, input: ValueId) -> BlockOp {
        BlockOp::Accum { kind, input }
    }
    fn rescaled(input: ValueId) -> BlockOp {
        acc(AccumKind::RescaledSum { max: v(2) }, input)
    }
    type Mutation = Box<dyn Fn(&mut prism::ugraph::KernelGraph)>;
    let partial = |f: Box<dyn Fn(&mut prism::ugraph::BlockGraph)>| -> Mutation {
        Box::new(move |g| f(block_mut(g, 0)))
    };
    let combine = |f: Box<dyn Fn(&mut prism::ugraph::BlockGraph)>| -> Mutation {
        Box::new(move |g| f(block_mut(g, 1)))
    };
    // attention's partial kernel: 0 q, 1 kt, 2 s = q@kt, 3 rowmax, 4 max acc,
    // 5 running, 6 s - m, 7 p = exp, 8 rowsum, 9 l, 10 v, 11 p@v, 12 o.
    // The combine: 0 m_j, 1 max over the split, 2 max acc, 3 running,
    // 4 m_j - M, 5 weight, 6 o_j, 7, 8 o_j * w, 9 O, 10 l_j, 11, 12, 13 L, 14 O / L.
    let mutants: Vec<(&str, Mutation)> = vec![
        (
            "o summed without rescaling",
            partial(Box::new(move |b| b.ops[12] = acc(AccumKind::Sum, v(11)))),
        ),
        (
            "l summed without rescaling",
            partial(Box::new(move |b| b.ops[9] = acc(AccumKind::Sum, v(8)))),
        ),
        (
            "p = exp(s), no max subtracted",
            partial(Box::new(move |b| {
                b.ops[7] = BlockOp::Unary(UnaryOp::Exp, v(2))
            })),
        ),
        (
            "shifted by the tile's max, not the running max",
            partial(Box::new(move |b| {
                b.ops[6] = BlockOp::Binary(BinaryOp::Sub, v(2), v(3))
            })),
        ),
        (
            "p . k instead of p . v",
            partial(Box::new(move |b| b.inputs[2].tensor = b.inputs[1].tensor)),
        ),
        (
            "row sum over the rows",
            partial(Box::new(move |b| {
                b.ops[8] = BlockOp::Reduce {
                    op: ReduceOp::Sum,
                    input: v(7),
                    axis: 2,
                    count: None,
                }
            })),
        ),
        (
            "scores squared",
            partial(Box::new(move |b| {
                b.ops[6] = BlockOp::Binary(BinaryOp::Mul, v(2), v(5))
            })),
        ),
        (
            "combine: unweighted partial outputs",
            combine(Box::new(move |b| b.ops[9] = rescaled(v(7)))),
        ),
        (
            "combine: sum for the max accumulator",
            combine(Box::new(move |b| b.ops[2] = acc(AccumKind::Sum, v(1)))),
        ),
        (
            "combine: no division by L",
            combine(Box::new(move |b| b.outputs[0].value = v(9))),
        ),
        (
            "combine: o weighted twice",
            combine(Box::new(move |b| {
                b.ops[12] = BlockOp::Binary(BinaryOp::Mul, v(11), v(11))
            })),
        ),
    ];
    let w = bundled.workload("attention").expect("attention");
    let fresh = || lower(w, &Strategy::Flash.options().expect("a lowering")).expect("lowers");
    let g = fresh();
    assert_eq!(g.kernels.len(), 2);
    assert!(prove(w, &g).is_ok());
    assert!(cross_check(w, &g, &CrossCheckOptions::default()).is_ok());
    for (label, mutate) in &mutants {
        let mut g = fresh();
        mutate(&mut g);
        assert!(prove(w, &g).is_err(), "`{label}` was proven equivalent");
        assert!(
            cross_check(w, &g, &CrossCheckOptions::default()).is_err(),
            "`{label}` passed the cross-check"
        );
    }
    // The proof reads the partials with one split, where every combine
    // weight is exp(m - m) = 1: bugs in the weights' maxima are the
    // cross-check's to catch (its split trial gives every split several
    // key tiles).
    let blind: Vec<(&str, Mutation)> = vec![
        (
            "combine: maxima read from l",
            combine(Box::new(move |b| b.inputs[0].tensor = b.inputs[2].tensor)),
        ),
        (
            "combine: weights exp(M - m) (sign flipped)",
            combine(Box::new(move |b| {
                b.ops[4] = BlockOp::Binary(BinaryOp::Sub, v(3), v(1))
            })),
        ),
    ];
    for (label, mutate) in &blind {
        let mut g = fresh();
        mutate(&mut g);
        assert!(
            cross_check(w, &g, &CrossCheckOptions::default()).is_err(),
            "`{label}` passed the cross-check"
        );
    }
}

/// The partition rules: a block that reads `y` through the transposed grid
/// map computes `x[i, j] + y[j, i]`. Its tiles fit and its unpartitioned
/// meaning is `x + y`, so only the partition check can refuse it in the
/// proof; the cross-check refuses it too. A reduction over an axis the grid
/// cuts is refused the same way.
#[test]
fn the_proof_checks_which_grid_dim_cuts_each_axis() {
    use prism::search::crosscheck::cross_check;
    use prism::search::strategies::prove;
    use prism::ugraph::lower::{LowerOptions, lower};
    let toml = r#"
[workload.add]
inputs = { x = "f32[n, n]", y = "f32[n, n]" }
program = "x + y"
dims = { n = [8, 24] }

[workload.norm]
inputs = { x = "f32[n, d]" }
program = "rms_norm(x)"
dims = { n = [8, 24], d = [16, 40] }
"#;
    let spec = frontend::parse("p.toml", toml).expect("parses");
    let add = spec.workload("add").expect("add");
    let mut g = lower(add, &LowerOptions::default()).expect("lowers");
    {
        let b = block_mut(&mut g, 0);
        // One grid dim over both axes, one element per block, so the tile
        // shapes match whichever way the maps go.
        assert_eq!(b.grid.len(), 1, "{b:?}");
        assert_eq!(b.grid[0].extents.len(), 2, "{b:?}");
        b.grid[0].tile = 1;
    }
    assert!(prove(add, &g).is_ok(), "the unmutated graph is proven");
    assert!(cross_check(add, &g, &CrossCheckOptions::default()).is_ok());
    let mut t = g.clone();
    {
        let b = block_mut(&mut t, 0);
        let y = b
            .inputs
            .iter()
            .position(|m| m.tensor.0 == 1)
            .expect("y is read");
        b.inputs[y].imap[0] = Some(vec![1, 0]);
    }
    let why = prove(add, &t).expect_err("the transposed map is not proven");
    assert!(why.starts_with("partition:"), "{why}");
    assert!(cross_check(add, &t, &CrossCheckOptions::default()).is_err());
    // A row norm in one kernel whose normalized axis a grid dim cuts: each
    // block would normalize by the mean of its own part of the row. The
    // same kernel with whole rows is proven.
    use prism::ir::{BinaryOp, ReduceOp, ScalarExpr, UnaryOp};
    use prism::ugraph::{
        BlockGraph, BlockOp, BlockOutput, GridDim, Kernel, KernelBody, KernelGraph, LaunchParams,
        TensorId, TileMap, ValueId, workload_tensors,
    };
    let norm = spec.workload("norm").expect("norm");
    let shape = norm.graph.inputs[0].shape.clone();
    let row_kernel = |cut: bool| {
        let mut grid = vec![GridDim {
            extents: vec![shape[0].clone()],
            tile: 1,
        }];
        let mut imap = vec![Some(vec![0])];
        if cut {
            grid.push(GridDim {
                extents: vec![shape[1].clone()],
                tile: 16,
            });
            imap.push(Some(vec![1]));
        }
        let map = |tensor: usize| TileMap {
            tensor: TensorId(tensor),
            view: shape.clone(),
            imap: imap.clone(),
            fmap: None,
        };
        let v = ValueId;
        KernelGraph {
            tensors: workload_tensors(norm),
            kernels: vec![Kernel {
                name: "norm_k0".into(),
                body: KernelBody::Block(BlockGraph {
                    grid,
                    forloop: None,
                    inputs: vec![map(0)],
                    ops: vec![
                        BlockOp::Input(0),
                        BlockOp::Unary(UnaryOp::Square, v(0)),
                        BlockOp::Reduce {
                            op: ReduceOp::Mean,
                            input: v(1),
                            axis: 1,
                            count: Some(shape[1].clone()),
                        },
                        BlockOp::Const(ScalarExpr::lit(1e-6)),
                        BlockOp::Binary(BinaryOp::Add, v(2), v(3)),
                        BlockOp::Unary(UnaryOp::Rsqrt, v(4)),
                        BlockOp::Binary(BinaryOp::Mul, v(0), v(5)),
                    ],
                    outputs: vec![BlockOutput {
                        value: v(6),
                        map: map(1),
                    }],
                    params: LaunchParams::default(),
                }),
            }],
        }
    };
    let whole = row_kernel(false);
    prove(norm, &whole).unwrap_or_else(|e| panic!("whole rows: {e}"));
    assert!(cross_check(norm, &whole, &CrossCheckOptions::default()).is_ok());
    let cut = row_kernel(true);
    let why = prove(norm, &cut).expect_err("a norm over part of a row is not proven");
    assert!(
        why.contains("a reduction over an axis cut by grid y"),
        "{why}"
    );
    assert!(cross_check(norm, &cut, &CrossCheckOptions::default()).is_err());
}
