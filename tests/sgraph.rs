//! The sGraph enumeration: what it finds for the bundled workloads, that
//! every term it generates means the program (checked against the CPU
//! reference), that it generates each term once and never a kernel body
//! that reads a loop value after the loop, and that it is deterministic.

mod common;

use prism::frontend;
use prism::ir::Workload;
use prism::search::crosscheck::{CrossCheckOptions, cross_check};
use prism::search::sgraph::{EnumOptions, enumerate, walk_all};
use prism::search::strategies::{Strategy, cost_point, prove, rebuild, search};
use prism::ugraph::{BlockOp, KernelBody, KernelGraph};
use prism::verify::{Node, numeric_check, to_graph};

fn bundled(name: &str) -> Workload {
    frontend::embedded()
        .expect("bundled prism.toml")
        .workload(name)
        .expect("workload")
        .clone()
}

fn fits(w: &Workload) -> impl Fn(&KernelGraph) -> Result<(), String> + Sync + '_ {
    move |g: &KernelGraph| prism::codegen::cuda::fits(w, g)
}

#[test]
fn the_search_finds_the_single_fused_kernels_itself() {
    for name in ["rms_norm", "rmsnorm_mlp", "swiglu", "gated_mlp"] {
        let w = bundled(name);
        let (stats, found) =
            enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
        assert!(!found.is_empty(), "{name}: {stats:?}");
        assert!(
            stats.terms > 0 && stats.instances >= stats.valid,
            "{name}: {stats:?}"
        );
        for f in &found {
            assert_eq!(f.graph.kernels.len(), 1, "{name}");
            // Every kept candidate is proven and cross-checked.
            prove(&w, &f.graph).unwrap_or_else(|e| panic!("{name}: {e}\n{:?}", f.term));
            cross_check(&w, &f.graph, &CrossCheckOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}\n{:?}", f.term));
        }
        // And the search chooses it (searched candidates win ties).
        let (report, graph) = search(&w, &CrossCheckOptions::default());
        let chosen = &report.candidates[report.chosen.expect("a choice")];
        assert!(
            matches!(chosen.strategy, Strategy::Searched(_)),
            "{name}: {:?}",
            chosen.strategy
        );
        assert_eq!(graph.expect("graph").kernels.len(), 1);
    }
}

#[test]
fn the_rms_norm_fold_moves_the_normalization_after_the_matmul() {
    let w = bundled("rms_norm");
    let (_, found) =
        enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
    let best = &found[0];
    // The root multiplies the row factor into the accumulated matmul.
    assert!(best.term[0].starts_with("(mul "), "{:?}", best.term);
    assert!(best.term[0].contains("(matmul x w)"), "{:?}", best.term);
    assert_eq!(best.loops, "w:0 x:1");
    let KernelBody::Block(b) = &best.graph.kernels[0].body else {
        panic!("a block kernel");
    };
    // Two accumulators (x·w and the sum of squares), the norm after them.
    let accums = b
        .ops
        .iter()
        .filter(|o| matches!(o, BlockOp::Accum { .. }))
        .count();
    assert_eq!(accums, 2, "{b:?}");
}

#[test]
fn every_generated_term_means_the_program() {
    // Terms come from the program's saturated e-graph, so each is the
    // program rewritten; the CPU reference checks that at several dims.
    for name in ["rms_norm", "rmsnorm_mlp", "swiglu", "lora", "ntrans"] {
        let w = bundled(name);
        let walked = walk_all(&w, &EnumOptions::default()).expect("walks");
        assert!(!walked.terms.is_empty(), "{name}");
        for (k, (_, t)) in walked.terms.iter().enumerate().step_by(5) {
            let expr = t.expr();
            for j in 0..w.graph.outputs.len() {
                let root = egg::Id::from(t.roots[j]);
                let g = to_graph(&expr, root).expect("a graph");
                let program = prism::verify::numeric::single_output(&w.graph, j).expect("output");
                let check = numeric_check(&program, &g, &w.dims, &[1, 2], 1e-9);
                assert!(
                    check.counterexample.is_none() && check.evaluated > 0,
                    "{name} term {k}: {} disagrees: {:?}",
                    t.sexpr(j),
                    check.counterexample
                );
            }
        }
    }
}

#[test]
fn each_term_is_generated_once_and_loop_values_never_leak_past_the_loop() {
    let w = bundled("rmsnorm_mlp");
    let walked = walk_all(&w, &EnumOptions::default()).expect("walks");
    let mut seen = std::collections::HashSet::new();
    for (lm, t) in &walked.terms {
        let key = format!("{lm:?} {:?}", t.nodes);
        assert!(seen.insert(key), "generated twice: {}", t.sexpr(0));
        // The norm of the un-normalized program (`matmul(x * r, w)`) reads
        // the row factor, known only after the loop over d, inside it: no
        // term walking d does that.
        if lm.get("x") == Some(&Some(1)) {
            for n in &t.nodes {
                if let Node::Matmul([a, _]) = &n.node {
                    let a = &t.nodes[usize::from(*a)].node;
                    assert!(
                        !matches!(a, Node::Binary(..)),
                        "a loop value scaled by a post-loop factor: {}",
                        t.sexpr(0)
                    );
                }
            }
        }
    }
    assert!(
        walked
            .stats
            .pruned
            .contains_key("symmetric (commuted operands)")
    );
}

#[test]
fn the_enumeration_is_deterministic() {
    for name in ["rmsnorm_mlp", "gqa_decode", "ntrans"] {
        let w = bundled(name);
        let run = || {
            let (mut stats, found) =
                enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w))
                    .expect("enumerates");
            stats.seconds = 0.0;
            let graphs: Vec<String> = found
                .iter()
                .map(|f| format!("{:?} {:?}", f.term, f.graph))
                .collect();
            (format!("{stats:?}"), graphs)
        };
        assert_eq!(run(), run(), "{name}");
    }
}

#[test]
fn a_missing_rank_is_an_error_and_a_limit_stops_the_walk() {
    let w = bundled("swiglu");
    let e = rebuild(&w, Strategy::Searched(999), &fits(&w)).expect_err("no such rank");
    assert!(e.contains("rank 999"), "{e}");
    // A walk bound of one term per walk: walks report hitting it.
    let mut opts = EnumOptions::default();
    opts.walk.terms = 1;
    let walked = walk_all(&w, &opts).expect("walks");
    assert!(walked.stats.walks_at_bound > 0, "{:?}", walked.stats);
    // One accumulator per kernel: rms_norm's fold needs two (x·w and the
    // sum of squares), so no term has both.
    let rms = bundled("rms_norm");
    let mut one = EnumOptions::default();
    one.walk.accumulators = 1;
    let walked = walk_all(&rms, &one).expect("walks");
    assert!(
        walked.stats.pruned.contains_key("accumulator limit"),
        "{:?}",
        walked.stats
    );
    for (_, t) in &walked.terms {
        let partials = t
            .nodes
            .iter()
            .filter(|n| {
                matches!(
                    n.state,
                    Some(prism::search::sgraph::states::State::Partial(_))
                )
            })
            .count();
        assert!(partials <= 1, "{}", t.sexpr(0));
    }
    // No template: every instance is pruned for it, nothing is kept.
    let (stats, found) = enumerate(
        &w,
        &cost_point(&w),
        &EnumOptions::default(),
        &|_: &KernelGraph| Err("none".to_string()),
    )
    .expect("enumerates");
    assert!(found.is_empty());
    assert!(
        stats.pruned.contains_key("no code generation template"),
        "{stats:?}"
    );
}

#[test]
fn mutants_of_a_searched_kernel_are_rejected() {
    use prism::ir::{ReduceOp, UnaryOp};
    use prism::ugraph::AccumKind;
    let w = bundled("rms_norm");
    let (_, found) =
        enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
    let good = found[0].graph.clone();
    type Mutation = Box<dyn Fn(&mut Vec<BlockOp>)>;
    let mutants: Vec<(&str, Mutation)> = vec![
        (
            "sqrt for rsqrt",
            Box::new(|ops| {
                for o in ops.iter_mut() {
                    if let BlockOp::Unary(u @ UnaryOp::Rsqrt, _) = o {
                        *u = UnaryOp::Sqrt;
                    }
                }
            }),
        ),
        (
            "max accumulator for a sum",
            Box::new(|ops| {
                if let Some(BlockOp::Accum { kind, .. }) =
                    ops.iter_mut().find(|o| matches!(o, BlockOp::Accum { .. }))
                {
                    *kind = AccumKind::Max;
                }
            }),
        ),
        (
            "max reduction for the sum of squares",
            Box::new(|ops| {
                for o in ops.iter_mut() {
                    if let BlockOp::Reduce { op, .. } = o {
                        *op = ReduceOp::Max;
                    }
                }
            }),
        ),
        (
            "squares dropped",
            Box::new(|ops| {
                for o in ops.iter_mut() {
                    if let BlockOp::Unary(u @ UnaryOp::Square, _) = o {
                        *u = UnaryOp::Relu;
                    }
                }
            }),
        ),
    ];
    assert!(
        prove(&w, &good).is_ok() && cross_check(&w, &good, &CrossCheckOptions::default()).is_ok()
    );
    for (label, m) in mutants {
        let mut g = good.clone();
        let KernelBody::Block(b) = &mut g.kernels[0].body else {
            panic!("a block kernel");
        };
        let before = b.ops.clone();
        m(&mut b.ops);
        assert_ne!(before, b.ops, "{label}: the mutation changed nothing");
        assert!(prove(&w, &g).is_err(), "{label}: proven");
        assert!(
            cross_check(&w, &g, &CrossCheckOptions::default()).is_err(),
            "{label}: cross-checked"
        );
    }
}

/// The enumeration finds flash decoding itself: online-softmax loop
/// states give one kernel with a running maximum and rescaled sums, and its
/// split form (a partial kernel per split, then a combine) fits the
/// attention template. Proven and cross-checked.
#[test]
fn the_search_finds_flash_decoding_with_a_split_and_a_combine() {
    use prism::ugraph::AccumKind;
    for name in ["attention", "gqa_decode"] {
        let w = bundled(name);
        let (stats, found) =
            enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
        assert!(!found.is_empty(), "{name}: {stats:?}");
        // The cheapest is one kernel's split form; kernel cuts (a separate
        // softmax, ...) rank after it.
        assert_eq!(found[0].graph.kernels.len(), 2, "{name}");
        let mut proven = 0;
        for f in found.iter().filter(|f| !f.loops.contains(" | ")) {
            assert_eq!(f.graph.kernels.len(), 2, "{name}");
            assert!(f.term[0].contains("(exp (sub "), "{name}: {:?}", f.term);
            let KernelBody::Block(partial) = &f.graph.kernels[0].body else {
                panic!("a block kernel");
            };
            let KernelBody::Block(combine) = &f.graph.kernels[1].body else {
                panic!("a block kernel");
            };
            let fl = partial.forloop.as_ref().expect("a loop");
            assert_eq!(fl.split, Some(0), "{name}: split over grid x");
            let rescaled = |b: &prism::ugraph::BlockGraph| {
                b.ops
                    .iter()
                    .filter(|o| {
                        matches!(
                            o,
                            BlockOp::Accum {
                                kind: AccumKind::RescaledSum { .. },
                                ..
                            }
                        )
                    })
                    .count()
            };
            // The output and the row sum, in both kernels.
            assert_eq!(rescaled(partial), 2, "{name}");
            assert_eq!(rescaled(combine), 2, "{name}");
            cross_check(&w, &f.graph, &CrossCheckOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            proven += usize::from(prove(&w, &f.graph).is_ok());
        }
        assert!(proven > 0, "{name}: none proven");
    }
}

/// Rewrites like `exp(a - b) = exp(a) / exp(b)` are exact but overflow:
/// no generated term exponentiates the raw scores or the row maximum.
#[test]
fn no_term_exponentiates_what_the_program_does_not() {
    for name in ["attention", "qk_norm_attention", "swiglu"] {
        let w = bundled(name);
        let walked = walk_all(&w, &EnumOptions::default()).expect("walks");
        for (_, t) in &walked.terms {
            for j in 0..t.roots.len() {
                let s = t.sexpr(j);
                for bad in ["(exp (matmul", "(exp (max", "(exp (recip"] {
                    assert!(!s.contains(bad), "{name}: {s}");
                }
            }
        }
        assert!(!walked.terms.is_empty(), "{name}");
    }
}

/// The split form of any loop kernel (split-K for the norm-folded matmul)
/// is a valid two-kernel μGraph with the same meaning: proven and
/// cross-checked, though no code generation template takes split matmuls
/// yet.
#[test]
fn split_forms_of_loop_kernels_are_proven_and_cross_checked() {
    use prism::search::sgraph::instantiate::instances;
    for name in ["rms_norm", "swiglu"] {
        let w = bundled(name);
        let walked = walk_all(&w, &EnumOptions::default()).expect("walks");
        let split: Vec<KernelGraph> = walked
            .terms
            .iter()
            .flat_map(|(lm, t)| instances(&w, t, lm))
            .filter_map(Result::ok)
            .filter(|g| g.kernels.len() == 2)
            .take(3)
            .collect();
        assert!(!split.is_empty(), "{name}: no split forms");
        for g in &split {
            let KernelBody::Block(b) = &g.kernels[0].body else {
                panic!("a block kernel");
            };
            assert_eq!(b.forloop.as_ref().and_then(|f| f.split), Some(0));
            prove(&w, g).unwrap_or_else(|e| panic!("{name}: {e}"));
            cross_check(&w, g, &CrossCheckOptions::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // And the code generator refuses it rather than emit it wrong.
            assert!(prism::codegen::cuda::fits(&w, g).is_err(), "{name}");
        }
        // The combine rules: with one split any combine is the identity, so
        // the proof checks that partial sums are accumulated by sums; the
        // mutant reads the same as the original with one split.
        use prism::ugraph::AccumKind;
        let g = &split[0];
        let mut acc_max = g.clone();
        let KernelBody::Block(c) = &mut acc_max.kernels[1].body else {
            panic!("a block kernel");
        };
        for o in c.ops.iter_mut() {
            if let BlockOp::Accum { kind, .. } = o {
                *kind = AccumKind::Max;
            }
        }
        let why = prove(&w, &acc_max).expect_err("partial sums accumulated by a max");
        assert!(why.contains("not accumulated as Sum"), "{name}: {why}");
        assert!(cross_check(&w, &acc_max, &CrossCheckOptions::default()).is_err());
    }
}

/// A planted bug in the searched split kernels is caught by both checks.
#[test]
fn mutants_of_the_searched_combine_are_rejected() {
    use prism::ugraph::AccumKind;
    let w = bundled("attention");
    let (_, found) =
        enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
    let good = found[0].graph.clone();
    assert!(prove(&w, &good).is_ok());
    type Mutation = Box<dyn Fn(&mut prism::ugraph::BlockGraph)>;
    let mutants: Vec<(&str, usize, Mutation)> = vec![
        (
            "combine sums without the split weights",
            1,
            Box::new(|b| {
                for o in b.ops.iter_mut() {
                    if let BlockOp::Accum { kind, .. } = o
                        && matches!(kind, AccumKind::RescaledSum { .. })
                    {
                        *kind = AccumKind::Sum;
                    }
                }
            }),
        ),
        (
            "partial sums without rescaling",
            0,
            Box::new(|b| {
                for o in b.ops.iter_mut() {
                    if let BlockOp::Accum { kind, .. } = o
                        && matches!(kind, AccumKind::RescaledSum { .. })
                    {
                        *kind = AccumKind::Sum;
                    }
                }
            }),
        ),
        (
            "combine takes the first split's maximum only",
            1,
            Box::new(|b| {
                for o in b.ops.iter_mut() {
                    if let BlockOp::Accum { kind, .. } = o
                        && *kind == AccumKind::Max
                    {
                        *kind = AccumKind::Sum;
                    }
                }
            }),
        ),
    ];
    for (label, k, m) in mutants {
        let mut g = good.clone();
        let KernelBody::Block(b) = &mut g.kernels[k].body else {
            panic!("a block kernel");
        };
        let before = b.clone();
        m(b);
        assert_ne!(&before, b, "{label}: the mutation changed nothing");
        assert!(prove(&w, &g).is_err(), "{label}: proven");
        assert!(
            cross_check(&w, &g, &CrossCheckOptions::default()).is_err(),
            "{label}: cross-checked"
        );
    }
}

/// LoRA (rank 16): the enumeration's best is one kernel, x·W and the side
/// product x·A summed from the same tiles of x, (x·A)·B added after the
/// loop; proven, cross-checked and chosen.
#[test]
fn lora_is_one_searched_kernel() {
    let w = bundled("lora");
    let (_, found) =
        enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
    let best = &found[0];
    assert_eq!(best.graph.kernels.len(), 1, "{:?}", best.term);
    assert!(!best.loops.contains(" | "), "{}", best.loops);
    assert_eq!(best.term, ["(add (matmul x w) (matmul (matmul x a) b))"]);
    prove(&w, &best.graph).unwrap_or_else(|e| panic!("{e}"));
    cross_check(&w, &best.graph, &CrossCheckOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let (report, graph) = search(&w, &CrossCheckOptions::default());
    let chosen = &report.candidates[report.chosen.expect("a choice")];
    assert!(matches!(chosen.strategy, Strategy::Searched(_)));
    assert_eq!(graph.expect("graph").kernels.len(), 1);
}

/// Kernel cuts: the programs no single kernel computes (a norm whose row
/// factor every element needs, a LoRA product of rank 32 feeding another
/// matmul, a normalized query feeding attention) are cut into pieces, each
/// found by the enumeration; the stitched graphs are chosen by the search,
/// proven and cross-checked. With cuts off, none of them has a searched
/// graph.
#[test]
fn kernel_cuts_give_the_multi_kernel_programs_their_searched_graphs() {
    for (w, kernels) in [(common::wide_lora(), 3), (bundled("qk_norm_attention"), 3)] {
        let name = w.name.clone();
        let name = name.as_str();
        let (stats, found) =
            enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
        assert!(
            stats.cut_sets > 0 && stats.cut_graphs > 0,
            "{name}: {stats:?}"
        );
        let best = &found[0];
        assert!(best.loops.contains(" | "), "{name}: {}", best.loops);
        assert_eq!(best.graph.kernels.len(), kernels, "{name}");
        prove(&w, &best.graph).unwrap_or_else(|e| panic!("{name}: {e}"));
        cross_check(&w, &best.graph, &CrossCheckOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (report, _) = search(&w, &CrossCheckOptions::default());
        let chosen = &report.candidates[report.chosen.expect("a choice")];
        assert!(
            matches!(chosen.strategy, Strategy::Searched(_)),
            "{name}: {:?}",
            chosen.strategy
        );
        // Without cuts the enumeration finds no graph for these.
        let no_cuts = EnumOptions {
            cuts: 0,
            ..EnumOptions::default()
        };
        let (stats, found) =
            enumerate(&w, &cost_point(&w), &no_cuts, &fits(&w)).expect("enumerates");
        assert_eq!(stats.cut_sets, 0);
        assert!(found.iter().all(|f| !f.loops.contains(" | ")), "{name}");
        if name != "qk_norm_attention" {
            assert!(
                found.is_empty(),
                "{name}: {:?}",
                found.first().map(|f| &f.term)
            );
        }
    }
}

/// A workload of successive row reductions over rows of length `d`: the
/// inputs `h` and, with `three`, `x` and `alpha`.
fn rows_workload(d: u32, three: bool) -> Workload {
    let (inputs, program) = if three {
        (
            format!("h = \"f16[n, {d}]\", x = \"f16[n, {d}]\", alpha = \"f16[n, {d}]\""),
            "rms_norm(x + alpha * (rms_norm(h) + x))",
        )
    } else {
        (format!("h = \"f16[n, {d}]\""), "rms_norm(h + rms_norm(h))")
    };
    let src = format!(
        "[workload.nt]\n\
         inputs = {{ {inputs} }}\n\
         program = \"{program}\"\n\
         dims = {{ n = \"1..=64\" }}\n"
    );
    prism::frontend::parse("rows.toml", &src)
        .expect("parses")
        .workload("nt")
        .expect("workload")
        .clone()
}

/// nGPT's residual update: two row norms, one after the other, in one
/// kernel without a for-loop (each block holds its row in registers).
#[test]
fn successive_row_reductions_are_one_row_resident_kernel() {
    for (w, guard) in [
        (bundled("ntrans"), false),
        // 128 elements over 256 threads: every pass is guarded.
        (rows_workload(128, true), true),
    ] {
        let (stats, found) =
            enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
        let best = found.first().unwrap_or_else(|| panic!("{stats:?}"));
        assert_eq!(best.loops, "no loop");
        assert_eq!(best.graph.kernels.len(), 1);
        let KernelBody::Block(b) = &best.graph.kernels[0].body else {
            panic!("a block kernel");
        };
        assert!(b.forloop.is_none());
        let reductions = b
            .ops
            .iter()
            .filter(|o| matches!(o, BlockOp::Reduce { .. }))
            .count();
        assert_eq!(reductions, 2, "{:?}", best.term);
        // Instances that reduce over a grid-cut axis never reach the list.
        assert!(
            stats.pruned.keys().any(|k| k.starts_with("partition")),
            "{stats:?}"
        );
        for f in &found {
            prism::search::partition::check(&f.graph).expect("partition rules");
        }
        // The search proves, cross-checks and chooses it.
        let (report, graph) = search(&w, &CrossCheckOptions::default());
        let chosen = &report.candidates[report.chosen.expect("a choice")];
        assert!(
            matches!(chosen.strategy, Strategy::Searched(0)),
            "{report:?}"
        );
        let graph = graph.expect("graph");
        assert_eq!(graph.kernels.len(), 1);
        let kernels = prism::codegen::cuda::generate_graph(&w, &graph).expect("generates");
        let src = &kernels.source;
        assert_eq!(
            src.matches("prism::block_reduce<prism::SumOp, 256>")
                .count(),
            2
        );
        assert_eq!(src.contains("if (li < tile_elems)"), guard, "{src}");
    }
}

/// A row longer than the registers hold (32 elements per thread) is not
/// row-resident: the search falls back to kernels with for-loops.
#[test]
fn a_row_too_long_for_the_registers_is_not_row_resident() {
    let w = rows_workload(9_000, false);
    let (stats, found) =
        enumerate(&w, &cost_point(&w), &EnumOptions::default(), &fits(&w)).expect("enumerates");
    assert!(
        stats.pruned.contains_key("no code generation template"),
        "{stats:?}"
    );
    let best = found.first().unwrap_or_else(|| panic!("{stats:?}"));
    assert!(best.graph.kernels.len() > 1, "{:?}", best.term);
    cross_check(&w, &best.graph, &CrossCheckOptions::default()).expect("cross-checked");
}

/// Cut points: broadcast operands (row statistics), computed matmul
/// operands and matmul products; never an input or an output.
#[test]
fn cut_candidates_are_the_places_a_kernel_cannot_go_on() {
    use prism::search::sgraph::cuts::candidates;
    let w = bundled("lora");
    let g = &w.graph;
    let names: Vec<String> = candidates(g).iter().map(|n| g.describe(*n)).collect();
    // x @ a, (x @ a) @ b and x @ w; the output (their sum) is not a cut.
    assert_eq!(names.len(), 3, "{names:?}");
    let outputs: Vec<_> = g.outputs.iter().map(|o| o.node).collect();
    for n in candidates(g) {
        assert!(!outputs.contains(&n));
        assert!(!matches!(g.node(n).op, prism::ir::Op::Input(_)));
    }
    let ntrans = bundled("ntrans");
    let c = candidates(&ntrans.graph);
    // The two norms' row factors (rsqrt of the mean square).
    let factors = c
        .iter()
        .filter(|n| {
            ntrans
                .graph
                .node(**n)
                .shape
                .last()
                .is_some_and(|d| d.is_one())
        })
        .count();
    assert_eq!(factors, 2, "{c:?}");
}
