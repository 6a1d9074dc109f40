//! The analytic cost model: exact traffic and tensor flops of known graphs,
//! idle SMs when the grid is small, and hardware that scales the estimate.

use prism::frontend;
use prism::ir::DimBindings;
use prism::ir::hardware::built_in;
use prism::search::crosscheck::CrossCheckOptions;
use prism::search::strategies::search;
use prism::tune::cost::estimate;

fn chosen(name: &str) -> (prism::Workload, prism::ugraph::KernelGraph) {
    let spec = frontend::embedded().expect("bundled prism.toml");
    let w = spec.workload(name).expect("workload").clone();
    let (_, g) = search(&w, &CrossCheckOptions::default());
    (w, g.expect("a graph"))
}

fn point(pairs: &[(&str, i64)]) -> DimBindings {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn h100() -> prism::ir::hardware::Hardware {
    built_in()
        .into_iter()
        .find(|(n, _)| n == "sm_90a")
        .expect("sm_90a")
        .1
}

#[test]
fn traffic_and_flops_of_known_graphs_are_exact() {
    // rms_norm folded into x @ w: one kernel, 2·n·d·d tensor flops, and it
    // moves x, w and the output once.
    let (_, g) = chosen("rms_norm");
    let (n, d) = (16u64, 4096u64);
    let e = estimate(&g, &point(&[("n", 16), ("d", 4096)]), &h100());
    assert_eq!(e.kernels.len(), 1);
    assert_eq!(e.kernels[0].flops, 2 * n * d * d);
    assert_eq!(e.kernels[0].bytes, 2 * (n * d + d * d + n * d));
    // Flash decoding: q·kᵀ and p·v over every key, split or not (the
    // bundled attention folds the heads into the sequences: b·h·s query
    // rows, each over h·kv keys).
    let (_, g) = chosen("attention");
    let p = point(&[("b", 4), ("h", 8), ("s", 1), ("kv", 1024), ("dh", 128)]);
    let e = estimate(&g, &p, &h100());
    let (rows, keys) = (4 * 8, 8 * 1024);
    let flops: u64 = e.kernels.iter().map(|k| k.flops).sum();
    assert_eq!(flops, 2 * 2 * rows * keys * 128);
    assert_eq!(e.kernels.len(), 2);
    assert!(e.micros > 2.0 * h100().launch_us);
}

#[test]
fn a_grid_smaller_than_the_gpu_leaves_bandwidth_unused() {
    let (_, g) = chosen("rms_norm");
    let p = point(&[("n", 1), ("d", 4096)]);
    let hw = h100();
    let e = estimate(&g, &p, &hw);
    let k = &e.kernels[0];
    assert!(k.blocks < u64::from(hw.sms), "{k:?}");
    assert!(k.waves < 1.0);
    // Few blocks keep too few bytes in flight: well above its bytes at
    // full bandwidth.
    let full = k.bytes as f64 / (hw.dram_gbps * 1e3);
    assert!(k.micros - hw.launch_us > 1.5 * full, "{k:?} vs {full}");
    // The same graph with narrow, deep tiles (more blocks, more in
    // flight): estimated faster.
    let c = prism::tune::tiles::by_name("t16x16x256w118s3").expect("config");
    let t = prism::tune::tiles::with_tiles(&g, c).expect("a tile variant");
    let f = estimate(&t, &p, &hw);
    assert!(f.kernels[0].blocks > k.blocks);
    assert!(f.micros < e.micros, "{} vs {}", f.micros, e.micros);
    // Memory-bound: more bandwidth, less time (for the variant that keeps
    // enough in flight); more tensor throughput alone changes nothing.
    let mut h200 = hw.clone();
    h200.dram_gbps = 4800.0;
    assert!(estimate(&t, &p, &h200).micros < f.micros);
    let mut faster_tc = hw.clone();
    faster_tc.tensor_tflops *= 2.0;
    assert_eq!(estimate(&g, &p, &faster_tc).micros, e.micros);
}

/// Split-K across blocks: the blocks multiply by the split count, the
/// flops do not change, the workspace's partial sums (written and read,
/// f32) join the bytes, and the combine adds a round trip; and the launch
/// plan of the generated kernel agrees (grid, counters, workspace).
#[test]
fn split_k_multiplies_blocks_and_adds_the_workspace() {
    let (w, g) = chosen("rms_norm");
    let p = point(&[("n", 8), ("d", 4096)]);
    let hw = h100();
    let one = prism::tune::tiles::by_name("t16x64x128w142s4").expect("config");
    let four = prism::tune::tiles::by_name("t16x64x128w142s4k4").expect("config");
    let (a, b) = (
        prism::tune::tiles::with_tiles(&g, one).expect("a tile variant"),
        prism::tune::tiles::with_tiles(&g, four).expect("a split-K variant"),
    );
    let (ea, eb) = (estimate(&a, &p, &hw), estimate(&b, &p, &hw));
    let last = |e: &prism::tune::cost::Estimate| e.kernels.last().cloned().expect("kernels");
    let (ka, kb) = (last(&ea), last(&eb));
    assert_eq!(kb.blocks, 4 * ka.blocks, "{ka:?} {kb:?}");
    assert_eq!(kb.flops, ka.flops);
    // 4 splits × 8 × 4096 f32 partial sums, written and read.
    assert_eq!(kb.bytes, ka.bytes + 4 * 8 * 4096 * 4 * 2);
    // The plan: z ends with the split factor, one counter per output tile,
    // the workspace holds every split's partial sums of the output: the
    // output's elements times the splits (the memory target's bound).
    let k = prism::codegen::cuda::generate_graph(&w, &b).expect("emit");
    let l = k.variants[0]
        .launches
        .iter()
        .find(|l| l.splits() == 4)
        .expect("a split-K launch");
    let grid = l.grid_at(&p).expect("grid");
    assert_eq!(grid, [4096 / 64, 1, 4]);
    assert_eq!(l.counters(grid), 4096 / 64);
    assert_eq!(l.workspace_at(&p).expect("workspace"), 4 * 8 * 4096);
    // Without split-K: no counters, no workspace.
    let k = prism::codegen::cuda::generate_graph(&w, &a).expect("emit");
    assert!(k.variants[0].launches.iter().all(|l| l.split_k.is_none()
        && l.splits() == 1
        && l.workspace_at(&p) == Ok(0)
        && l.counters(l.grid_at(&p).expect("grid")) == 0));
}

#[test]
fn compute_bound_graphs_follow_the_tensor_rate() {
    // gated_mlp at n = 2048: 2·3·n·d·f flops dominate its bytes.
    let (w, g) = chosen("gated_mlp");
    let p = w
        .points
        .iter()
        .max_by_key(|p| p["n"])
        .expect("points")
        .clone();
    // Memory and L2 made ample, so the tensor rate is what binds: twice
    // the rate, about half the time.
    let mut hw = h100();
    hw.dram_gbps *= 100.0;
    let e = estimate(&g, &p, &hw);
    let mut faster_tc = hw.clone();
    faster_tc.tensor_tflops *= 2.0;
    let f = estimate(&g, &p, &faster_tc);
    let launches = hw.launch_us * e.kernels.len() as f64;
    let ratio = (f.micros - launches) / (e.micros - launches);
    assert!(
        (0.45..0.55).contains(&ratio),
        "{} vs {}",
        f.micros,
        e.micros
    );
    // At nominal bandwidth the operand traffic of its tiles through L2
    // is part of the estimate: never below the compute time.
    let nominal = estimate(&g, &p, &h100());
    assert!(nominal.micros >= e.micros);
}

/// A flash combine fused into its partial costs one round trip in place
/// of a launch; everything else about the two kernels is estimated alike.
#[test]
fn a_fused_flash_combine_costs_a_round_trip_instead_of_a_launch() {
    let (_, g) = chosen("gqa_decode");
    let p = point(&[("b", 1), ("kv", 1024)]);
    let hw = h100();
    let fused = prism::tune::instances::with_fused_combine(&g).expect("16-row partials");
    let (plain, f) = (estimate(&g, &p, &hw), estimate(&fused, &p, &hw));
    assert_eq!(plain.kernels.len(), 2);
    assert_eq!(f.kernels.len(), 2);
    assert_eq!(f.kernels[0], plain.kernels[0]);
    assert_eq!(f.kernels[1].bytes, plain.kernels[1].bytes);
    let saved = plain.micros - f.micros;
    assert!(
        (saved - (hw.launch_us - prism::tune::cost::SPLIT_K_COMBINE_US)).abs() < 1e-9,
        "{plain:?} {f:?}"
    );
}
