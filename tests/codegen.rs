//! Generated CUDA for every bundled workload and every workload of
//! tests/data/ops.toml compiles with nvcc for sm_90a and sm_80, and ptxas
//! reports no spills and no local memory (stack frame) in any kernel.
//!
//! Needs nvcc (scripts/install-nvcc.sh). Without it the test reports that it
//! did not run; with `PRISM_REQUIRE_NVCC=1` (as in CI) a missing nvcc fails.

mod common;

use std::path::Path;
use std::process::Command;

use prism::codegen::{self, WorkloadKernels};
use prism::frontend;
use prism::ir::Spec;

fn compile_all(spec: &Spec, dir: &Path, nvcc: &Path) {
    prism::device_library::write_to(&dir.join("include")).expect("device library");
    for w in &spec.workloads {
        let k = codegen::generate(w, &spec.target).unwrap_or_else(|e| panic!("{e}"));
        compile(&k, &w.name, dir, nvcc, &["sm_90a", "sm_80"]);
    }
}

/// Compile `k.source` to `dir/<name>.cu` for each of `archs` and check
/// ptxas's report: every kernel of every variant, none using local memory.
/// The device library must be in `dir/include`.
fn compile(k: &WorkloadKernels, name: &str, dir: &Path, nvcc: &Path, archs: &[&str]) {
    let cu = dir.join(format!("{name}.cu"));
    std::fs::write(&cu, &k.source).expect("write .cu");
    for arch in archs {
        let out = Command::new(nvcc)
            .args(["-cubin", "-O3", "-std=c++17", "-Xptxas", "-v"])
            .arg(format!("-arch={arch}"))
            .arg("-I")
            .arg(dir.join("include"))
            .arg("-o")
            .arg(dir.join(format!("{name}_{arch}.cubin")))
            .arg(&cu)
            .output()
            .expect("run nvcc");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "nvcc failed on {} for {arch}:\n{stderr}",
            cu.display()
        );
        let report = prism::nvcc::parse_ptxas_report(&stderr);
        let symbols: Vec<&str> = k
            .variants
            .iter()
            .flat_map(|v| &v.launches)
            .map(|l| l.symbol.as_str())
            .collect();
        for s in &symbols {
            assert!(
                report
                    .iter()
                    .any(|r| r.function == *s && r.registers.is_some()),
                "{arch}: ptxas reported nothing for kernel {s}:\n{stderr}"
            );
        }
        for u in &report {
            assert!(
                !u.uses_local_memory(),
                "{arch} {}: {:?} registers, {} bytes stack, {}/{} bytes spilled",
                u.function,
                u.registers,
                u.stack_frame_bytes,
                u.spill_store_bytes,
                u.spill_load_bytes
            );
        }
    }
}

/// [`compile`] every named plan in a temporary folder with the device
/// library, for sm_90a and sm_80 (nothing without nvcc).
fn compile_plans(plans: &[(String, WorkloadKernels)], tag: &str) {
    let Some(nvcc) = common::nvcc() else { return };
    let dir = std::env::temp_dir().join(format!("prism-codegen-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    prism::device_library::write_to(&dir.join("include")).expect("device library");
    for (name, k) in plans {
        compile(k, name, &dir, &nvcc, &["sm_90a", "sm_80"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generated_cuda_compiles_without_spills() {
    let Some(nvcc) = common::nvcc() else { return };
    let dir = std::env::temp_dir().join(format!("prism-codegen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bundled = frontend::embedded().expect("bundled prism.toml");
    compile_all(&bundled, &dir, &nvcc);
    let ops = frontend::parse("ops.toml", include_str!("data/ops.toml")).expect("ops.toml");
    compile_all(&ops, &dir, &nvcc);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generation_is_deterministic() {
    let bundled = frontend::embedded().expect("bundled prism.toml");
    for w in &bundled.workloads {
        let a = codegen::generate(w, &bundled.target).expect("generates");
        let b = codegen::generate(w, &bundled.target).expect("generates");
        assert_eq!(a, b, "{}", w.name);
    }
}

/// Two variants of one workload (the direct lowering and the fused one) in
/// one `.cu`: every kernel symbol is unique, and the file compiles.
#[test]
fn two_variants_compile_into_one_source() {
    use prism::ugraph::lower::{LowerOptions, lower};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let mut plans = Vec::new();
    for name in ["rms_norm", "attention"] {
        let w = bundled.workload(name).expect("bundled workload");
        let direct = lower(w, &LowerOptions::direct()).expect("direct lowering");
        let fused = lower(w, &LowerOptions::default()).expect("fused lowering");
        let k = codegen::cuda::generate_variants(
            w,
            &[("direct".into(), direct), ("fused".into(), fused)],
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.variants.len(), 2);
        let mut symbols: Vec<&str> = k
            .variants
            .iter()
            .flat_map(|v| &v.launches)
            .map(|l| l.symbol.as_str())
            .collect();
        let n = symbols.len();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), n, "{name}: symbols are unique");
        plans.push((name, k));
    }
    let Some(nvcc) = common::nvcc() else { return };
    let dir = std::env::temp_dir().join(format!("prism-codegen-variants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    prism::device_library::write_to(&dir.join("include")).expect("device library");
    for (name, k) in &plans {
        compile(k, name, &dir, &nvcc, &["sm_90a"]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `fused_combine` set on a flash partial of 16 query rows per block
/// (decode), its combine runs in the partial's last block per row tile:
/// one launch, which writes the workload's output, with one split-K
/// counter per row tile and batch index (grid x holds the splits). Without
/// it, or at 64 rows per block (prefill, refused with a clear error), the
/// combine stays a kernel of its own. Every fused form compiles without
/// local memory for both archs.
#[test]
fn the_flash_combine_fuses_into_decode_partials() {
    use prism::codegen::cuda::attention::{combine_shared_bytes, flash_shared_bytes, flash_stages};
    use prism::tune::instances::{with_flash_rows, with_fused_combine, with_splits};
    use prism::ugraph::TensorRole;
    use prism::ugraph::lower::{LowerOptions, lower};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let w = bundled.workload("attention").expect("attention");
    let base = lower(w, &LowerOptions::default()).expect("flash lowering");
    let k = codegen::cuda::generate_graph(w, &base).expect("generates");
    assert_eq!(
        k.variants[0].launches.len(),
        2,
        "64 rows per block: partial + combine"
    );
    assert!(!k.source.contains("FlashCombine<"));
    assert!(with_fused_combine(&base).is_none(), "64 rows per block");
    let mut forced = base.clone();
    for kernel in &mut forced.kernels {
        if let prism::ugraph::KernelBody::Block(b) = &mut kernel.body
            && b.forloop.as_ref().is_some_and(|f| f.split.is_some())
        {
            b.params.fused_combine = true;
        }
    }
    let err = codegen::cuda::generate_graph(w, &forced).expect_err("64 rows cannot fuse");
    assert!(err.to_string().contains("cannot be fused"), "{err}");
    let rows16 = with_flash_rows(&base, 16).expect("a flash partial");
    let k = codegen::cuda::generate_graph(w, &rows16).expect("generates");
    assert_eq!(k.variants[0].launches.len(), 2, "not fused unless asked");
    let mut plans = Vec::new();
    for splits in [1u32, 16, 64] {
        let g = with_splits(&base, splits).expect("a split form");
        let g = with_flash_rows(&g, 16).expect("a flash partial");
        let g = with_fused_combine(&g).expect("16 rows per block");
        let k = codegen::cuda::generate_graph(w, &g).expect("generates");
        let v = &k.variants[0];
        assert_eq!(v.launches.len(), 1, "splits={splits}: one launch");
        let l = &v.launches[0];
        let split_k = l.split_k.as_ref().expect("tile counters");
        assert_eq!(split_k.splits, splits);
        // Grid x is the splits, y the row tiles (16 rows), z the batch: no
        // split factor added on z.
        assert_eq!(l.grid[0].len(), 1);
        assert_eq!(l.grid[0][0].extent.as_constant(), Some(i64::from(splits)));
        assert_eq!(l.grid[1][0].tile, 16);
        assert_eq!(l.grid[2].len(), 1, "{:?}", l.grid[2]);
        let out = v
            .tensors
            .iter()
            .position(|t| matches!(t.role, TensorRole::Output(_)))
            .expect("an output");
        assert!(
            l.tensors.iter().any(|t| t.0 == out),
            "the launch writes the output"
        );
        let s = i64::from(splits);
        let flash = flash_shared_bytes(16, 64, 128, 128, 4, false, flash_stages(s));
        let combine = combine_shared_bytes(16, 128, s, 128);
        assert_eq!(l.shared_bytes, flash.max(combine));
        assert!(
            k.source
                .contains(&format!("prism::FlashCombine<16, 128, {splits}, 128>")),
            "{}",
            k.source
        );
        plans.push((format!("attention_fused_{splits}"), k));
    }
    // gqa_decode's rows (4 grouped heads) never pass 16: the lowering's
    // and the search's graphs (their combines are written differently)
    // both fuse.
    let gqa = bundled.workload("gqa_decode").expect("gqa_decode");
    let (_, searched) =
        prism::search::strategies::choose(gqa, &Default::default()).expect("a choice");
    let lowered = lower(gqa, &LowerOptions::default()).expect("flash lowering");
    for g in [&lowered, &searched] {
        let f = with_fused_combine(g).expect("16 rows per block");
        let k = codegen::cuda::generate_graph(gqa, &f).expect("generates");
        assert_eq!(k.variants[0].launches.len(), 1);
    }
    let k = codegen::cuda::generate_graph(gqa, &with_fused_combine(&searched).expect("fuses"))
        .expect("generates");
    assert!(k.source.contains("prism::split_k_arrive"));
    plans.push(("gqa_decode_fused".into(), k));
    compile_plans(&plans, "fused");
}

/// With `cluster_combine` (2 to 16 splits, 16 rows per block), a decode
/// partial's splits are one thread block cluster: each block stages its
/// (o, m, l) in its own shared memory after the partial's, and
/// `FlashClusterCombine` combines them through distributed shared memory
/// in one launch that writes the output, with no split-K counters or
/// workspace. Other split counts are not offered, and a graph forced to
/// one is refused with the reason. The kernels compile for sm_90a (the
/// cluster) and sm_80 (no cluster attribute there; the tuner never runs
/// them on it: `runs_on`).
#[test]
fn decode_splits_combine_across_a_thread_block_cluster() {
    use prism::codegen::cuda::attention::{cluster_stage_bytes, flash_shared_bytes, flash_stages};
    use prism::ir::Arch;
    use prism::tune::instances::{InstanceId, with_cluster_combine, with_flash_rows, with_splits};
    use prism::tune::tiles::runs_on;
    use prism::ugraph::KernelBody;
    use prism::ugraph::lower::{LowerOptions, lower};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let gqa = bundled.workload("gqa_decode").expect("gqa_decode");
    let (_, searched) =
        prism::search::strategies::choose(gqa, &Default::default()).expect("a choice");
    let mut plans = Vec::new();
    for splits in [2u32, 4, 8, 16] {
        let g = with_splits(&searched, splits).expect("a split form");
        let g = with_cluster_combine(&g).expect("2 to 16 splits cluster");
        let k = codegen::cuda::generate_graph(gqa, &g).expect("generates");
        let v = &k.variants[0];
        assert_eq!(v.launches.len(), 1, "splits={splits}: one launch");
        let l = &v.launches[0];
        assert!(l.split_k.is_none(), "no counters or workspace");
        assert_eq!(l.grid[0][0].extent.as_constant(), Some(i64::from(splits)));
        let flash = flash_shared_bytes(16, 64, 128, 128, 4, true, flash_stages(i64::from(splits)));
        assert_eq!(
            l.shared_bytes,
            flash.div_ceil(16) * 16 + cluster_stage_bytes(16, 128),
            "splits={splits}: the stage after the partial's shared memory"
        );
        assert!(
            k.source.contains(&format!(
                "PRISM_CLUSTER_DIMS({splits}, 1, 1) __launch_bounds__"
            )),
            "{}",
            k.source
        );
        assert!(k.source.contains(&format!(
            "using X = prism::FlashClusterCombine<16, 128, {splits}, 128>;"
        )));
        assert!(k.source.contains("X::run(smem + "));
        assert!(!k.source.contains("split_k_arrive"));
        let arch = |capability: u32, suffix: &str| Arch {
            capability,
            suffix: suffix.into(),
        };
        assert!(runs_on(&g, &arch(90, "a")));
        assert!(runs_on(&g, &arch(90, "")));
        assert!(!runs_on(&g, &arch(80, "")));
        plans.push((format!("gqa_decode_cluster_{splits}"), k));
    }
    // The label round-trips, and names the cluster.
    let id = InstanceId::parse("flash splits=8 cluster").expect("a label");
    assert!(id.fused && id.cluster);
    assert_eq!(id.label(), "flash splits=8 cluster");
    assert!(InstanceId::parse("flash splits=8 cluster fused").is_none());
    // 32 splits are more than Hopper's largest cluster: not offered;
    // forced, refused.
    let g32 = with_splits(&searched, 32).expect("a split form");
    assert!(with_cluster_combine(&g32).is_none());
    let mut forced = prism::tune::instances::with_fused_combine(&g32).expect("fuses");
    for kernel in &mut forced.kernels {
        if let KernelBody::Block(b) = &mut kernel.body
            && b.params.fused_combine
        {
            b.params.cluster_combine = true;
        }
    }
    let err = codegen::cuda::generate_graph(gqa, &forced).expect_err("32 splits");
    assert!(err.to_string().contains("2 to 16 splits, not 32"), "{err}");
    // Prefill row tiles (64 rows) never fuse, so never cluster.
    let attention = bundled.workload("attention").expect("attention");
    let base = lower(attention, &LowerOptions::default()).expect("flash lowering");
    let base8 = with_splits(&base, 8).expect("a split form");
    assert!(with_cluster_combine(&base8).is_none(), "64 rows per block");
    let rows16 = with_flash_rows(&base8, 16).expect("16 rows");
    let k =
        codegen::cuda::generate_graph(attention, &with_cluster_combine(&rows16).expect("clusters"))
            .expect("generates");
    assert!(k.source.contains("PRISM_CLUSTER_DIMS(8, 1, 1)"));
    plans.push(("attention_cluster_8".into(), k));
    compile_plans(&plans, "cluster");
}

/// With `wgmma` (64 query rows per block, K already transposed), a flash
/// partial runs on `prism::FlashPartialWgmma`: one warpgroup, both
/// products on wgmma, the shared memory of q and a ring of swizzled K / V
/// tiles. The tuner offers it on sm_90a only; a partial the template does
/// not take (16 rows, K read as `[keys, d]`: gqa_decode) is refused with
/// the reason. The kernels compile without local memory for sm_90a and
/// sm_80 (where `run` traps).
#[test]
fn prefill_flash_partials_run_on_warpgroup_mma() {
    use prism::codegen::cuda::attention::{flash_wgmma_shared_bytes, flash_wgmma_stages};
    use prism::ir::Arch;
    use prism::tune::instances::{InstanceId, with_flash_rows, with_flash_wgmma, with_splits};
    use prism::tune::tiles::runs_on;
    use prism::ugraph::lower::{LowerOptions, lower};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let mut plans = Vec::new();
    for name in ["attention", "qk_norm_attention"] {
        let w = bundled.workload(name).expect("workload");
        let base = lower(w, &LowerOptions::default()).expect("flash lowering");
        for (splits, rows) in [(2u32, 64u32), (8, 64), (8, 128)] {
            let g = with_splits(&base, splits).expect("a split form");
            let g = with_flash_rows(&g, rows).expect("a flash partial");
            if rows == 128 {
                let err = codegen::cuda::generate_graph(w, &g).expect_err("mma.sync: 64 rows");
                assert!(err.to_string().contains("not supported"), "{err}");
            }
            let g = with_flash_wgmma(&g).expect("64 or 128 rows per block");
            let arch = |capability: u32, suffix: &str| Arch {
                capability,
                suffix: suffix.into(),
            };
            assert!(runs_on(&g, &arch(90, "a")));
            assert!(!runs_on(&g, &arch(90, "")));
            assert!(!runs_on(&g, &arch(80, "")));
            let k = codegen::cuda::generate_graph(w, &g).expect("generates");
            let v = &k.variants[0];
            let stages = flash_wgmma_stages(rows);
            let threads = 2 * rows;
            let partial = v
                .launches
                .iter()
                .find(|l| l.threads == threads && l.shared_bytes > 48 * 1024)
                .unwrap_or_else(|| panic!("{name}: no flash partial in {:?}", v.launches));
            assert_eq!(
                partial.shared_bytes,
                flash_wgmma_shared_bytes(rows, 64, 128, 128, stages)
            );
            let template = format!(
                "prism::FlashPartialWgmma<__half, {}, 64, 128, 128, {stages}>",
                rows / 64
            );
            assert!(k.source.contains(&template), "{}", k.source);
            assert!(!k.source.contains("prism::FlashPartial<"));
            plans.push((format!("{name}_wgmma_{splits}_{rows}"), k));
        }
        // 16 rows per block: no warpgroup form.
        let rows16 = with_flash_rows(&base, 16).expect("a flash partial");
        assert!(with_flash_wgmma(&rows16).is_none());
    }
    // 64 keys per tile, head dims 128: q, then 2 (64 rows: two blocks per
    // SM) or 4 (128 rows: one) (K, V) stages of 16 + 16 KiB.
    assert_eq!(
        flash_wgmma_shared_bytes(64, 64, 128, 128, 2),
        16384 + 2 * 32768 + 1024
    );
    assert_eq!(
        flash_wgmma_shared_bytes(128, 64, 128, 128, 4),
        32768 + 4 * 32768 + 1024
    );
    let id = InstanceId::parse("flash splits=8 wgmma").expect("parses");
    assert!(id.wgmma && !id.fused && id.rows.is_none());
    assert_eq!(id.label(), "flash splits=8 wgmma");
    assert!(InstanceId::parse("flash wgmma splits=8").is_none());
    assert!(InstanceId::parse("flash splits=8 wgmma rows=64").is_none());
    // gqa_decode reads K as [keys, d] in 16-row blocks: forced onto the
    // warpgroup template, it is refused with the reason.
    let gqa = bundled.workload("gqa_decode").expect("gqa_decode");
    let mut forced = lower(gqa, &LowerOptions::default()).expect("flash lowering");
    for kernel in &mut forced.kernels {
        if let prism::ugraph::KernelBody::Block(b) = &mut kernel.body
            && b.forloop.as_ref().is_some_and(|f| f.split.is_some())
        {
            b.params.wgmma = true;
        }
    }
    let err = codegen::cuda::generate_graph(gqa, &forced).expect_err("not a warpgroup partial");
    assert!(err.to_string().contains("warpgroup flash partial"), "{err}");
    compile_plans(&plans, "flash_wgmma");
}

/// With a `c` tile configuration (`cluster_combine` on a split-K matmul),
/// a tile's splits are one thread block cluster along grid z: each block
/// stages its sums in its own shared memory and the cluster's first block
/// adds them through distributed shared memory (`add_cluster_sums`) and
/// runs the epilogue, in one launch with no split-K counters or workspace
/// and no more shared memory than the workspace form. Both GEMM classes,
/// one or two GEMMs, the RMS statistic and LoRA's side product; 16 splits
/// (a non-portable cluster) compile; split counts past 16 are refused with
/// the reason. The kernels compile for sm_90a and sm_80 (no cluster
/// attribute there; `runs_on` keeps them off it).
#[test]
fn decode_gemm_splits_add_across_a_thread_block_cluster() {
    use prism::ir::Arch;
    use prism::tune::instances::InstanceId;
    use prism::tune::tiles::{by_name, runs_on, with_tiles};
    use prism::ugraph::KernelBody;
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let mut plans = Vec::new();
    // (workload, configuration, its workspace twin, splits, GEMMs); the
    // deep pipelines (up to 8 stages) have no workspace twin.
    for (name, tiles, twin, splits, gemms) in [
        (
            "rms_norm",
            "t16x128x64w141s4k8c",
            Some("t16x128x64w141s4k8"),
            8,
            1,
        ),
        (
            "swiglu",
            "t16x64x128w142s3k4c",
            Some("t16x64x128w142s3k4"),
            4,
            2,
        ),
        (
            "lora",
            "t16x128x64w141s4k16c",
            Some("t16x128x64w141s4k16"),
            16,
            1,
        ),
        ("lora", "t64x64x64g1s6k2c", Some("t64x64x64g1s6k2"), 2, 1),
        ("rms_norm", "t16x64x128w142s6k2c", None, 2, 1),
        ("lora", "t16x64x128w142s5k2c", None, 2, 1),
        ("lora", "t16x64x64w142s8k2c", None, 2, 1),
        ("swiglu", "t16x64x64w142s7k2c", None, 2, 2),
    ] {
        let w = bundled.workload(name).expect("bundled workload");
        let (_, chosen) =
            prism::search::strategies::choose(w, &Default::default()).expect("a choice");
        let c = by_name(tiles).expect("a configuration");
        assert!(c.cluster && c.split_k == splits);
        let g = with_tiles(&chosen, c).expect("a matmul kernel");
        let k = codegen::cuda::generate_graph(w, &g).expect("generates");
        let l = &k.variants[0].launches[0];
        assert!(l.split_k.is_none(), "{tiles}: no counters or workspace");
        assert_eq!(
            l.grid[2]
                .iter()
                .map(|f| f.extent.as_constant())
                .collect::<Vec<_>>(),
            vec![Some(i64::from(splits))],
            "{tiles}: the splits along z"
        );
        if let Some(twin) = twin {
            let plain = codegen::cuda::generate_graph(
                w,
                &with_tiles(&chosen, by_name(twin).expect("the twin")).expect("a matmul kernel"),
            )
            .expect("generates");
            let lp = &plain.variants[0].launches[0];
            assert_eq!(lp.split_k.as_ref().map(|s| s.splits), Some(splits));
            assert_eq!(l.grid, lp.grid, "{tiles}: the grid of the workspace form");
            assert_eq!(
                l.shared_bytes, lp.shared_bytes,
                "{tiles}: the stage reuses the pipeline's"
            );
        }
        assert!(
            k.source.contains(&format!(
                "PRISM_CLUSTER_DIMS(1, 1, {splits}) __launch_bounds__"
            )),
            "{tiles}"
        );
        for j in 0..gemms {
            assert!(k.source.contains(&format!(
                "gemm{j}.add_cluster_sums<{splits}>(smem + {j} * Gemm::SPLIT_STAGE_BYTES);"
            )));
        }
        assert!(
            !k.source.contains(&format!("gemm{gemms}.")),
            "{tiles}: {gemms} GEMMs"
        );
        assert!(!k.source.contains("split_k_arrive"), "{tiles}");
        let arch = |capability: u32, suffix: &str| Arch {
            capability,
            suffix: suffix.into(),
        };
        assert!(runs_on(&g, &arch(90, "a")), "{tiles}");
        assert!(!runs_on(&g, &arch(80, "")), "{tiles}");
        let id = InstanceId::parse(&format!("sgraph#0 tiles={tiles}")).expect("a label");
        assert_eq!(id.label(), format!("sgraph#0 tiles={tiles}"));
        plans.push((format!("{name}_{tiles}"), k));
    }
    // More splits than Hopper's largest cluster: refused with the reason.
    let w = bundled.workload("rms_norm").expect("rms_norm");
    let (_, chosen) = prism::search::strategies::choose(w, &Default::default()).expect("a choice");
    let mut forced = with_tiles(
        &chosen,
        by_name("t16x128x64w141s4k16c").expect("a configuration"),
    )
    .expect("a matmul kernel");
    for kernel in &mut forced.kernels {
        if let KernelBody::Block(b) = &mut kernel.body
            && b.params.cluster_combine
        {
            b.params.split_k = 32;
        }
    }
    let err = codegen::cuda::generate_graph(w, &forced).expect_err("32 splits");
    assert!(err.to_string().contains("2 to 16 splits, not 32"), "{err}");
    compile_plans(&plans, "gemm-cluster");
}

/// A `tma` configuration feeds a wgmma main loop by the Tensor Memory
/// Accelerator: the kernel takes a tensor map of A, of each B and of a
/// low-rank side operand (the whole tensors, row-major, A in boxes of 64 k
/// × bm rows, B in 64 × 64, the side operand in 16 × 64), runs one
/// producer warp beyond its warpgroups, and keeps its twin's grid and
/// shared memory; split-K tiles pass their split's K range. A kernel it
/// cannot take (a row statistic) is refused with the reason. Compiles for
/// sm_90a and sm_80 without local memory.
#[test]
fn a_tma_configuration_passes_tensor_maps_and_a_producer_warp() {
    use prism::ir::Arch;
    use prism::tune::tiles::{by_name, runs_on, with_tiles};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    // A plain GEMM with ragged edges (m, n, k not multiples of the tile).
    let plain_spec = frontend::parse(
        "plain.toml",
        r#"
[workload.plain]
inputs = { x = "f16[m, 1000]", w = "f16[1000, 328]" }
program = "x @ w"
dims = { m = "1..=300" }
"#,
    )
    .expect("a plain GEMM");
    let mut plans = Vec::new();
    // (workload, configuration, its cp.async twin, B operands, side operand)
    for (name, tiles, twin, bs, side) in [
        (
            "gated_mlp",
            "t128x128x64g2s4tma",
            "t128x128x64g2s4",
            2,
            false,
        ),
        ("gated_mlp", "t128x64x64g2s6tma", "t128x64x64g2s6", 2, false),
        (
            "gated_mlp",
            "t128x128x64g2s4k2ctma",
            "t128x128x64g2s4k2c",
            2,
            false,
        ),
        ("plain", "t128x256x64g2s4tma", "t128x256x64g2s4", 1, false),
        ("plain", "t64x128x64g1s4tma", "t64x128x64g1s4", 1, false),
        ("plain", "t64x64x64g1s6k2ctma", "t64x64x64g1s6k2c", 1, false),
        ("lora", "t128x256x64g2s4tma", "t128x256x64g2s4", 1, true),
        (
            "lora",
            "t128x128x64g2s4k2ctma",
            "t128x128x64g2s4k2c",
            1,
            true,
        ),
        ("lora", "t64x256x64g1s4k2ctma", "t64x256x64g1s4k2c", 1, true),
    ] {
        let w = bundled
            .workload(name)
            .or_else(|| plain_spec.workload(name))
            .expect("a workload");
        let (_, chosen) =
            prism::search::strategies::choose(w, &Default::default()).expect("a choice");
        let c = by_name(tiles).expect("a configuration");
        let g = with_tiles(&chosen, c).expect("a matmul kernel");
        let k = codegen::cuda::generate_graph(w, &g).unwrap_or_else(|e| panic!("{tiles}: {e}"));
        let plain = codegen::cuda::generate_graph(
            w,
            &with_tiles(&chosen, by_name(twin).expect("twin")).expect("a matmul kernel"),
        )
        .expect("generates");
        let (l, lp) = (&k.variants[0].launches, &plain.variants[0].launches);
        let at = l
            .iter()
            .position(|l| !l.tensor_maps.is_empty())
            .expect("a TMA launch");
        let (l, lp) = (&l[at], &lp[at]);
        assert_eq!(
            l.tensor_maps.len(),
            1 + bs + usize::from(side),
            "{tiles}: A, each B and the side operand"
        );
        assert_eq!(l.threads, lp.threads + 32, "{tiles}: one producer warp");
        assert_eq!(
            (&l.grid, l.shared_bytes),
            (&lp.grid, lp.shared_bytes),
            "{tiles}"
        );
        let bm = c.shape.bm;
        let a = &l.tensor_maps[0];
        assert_eq!((a.box_rows, a.box_cols), (bm, 64), "{tiles}: A's box");
        let a_tensor = &k.variants[0].tensors[a.tensor.0];
        assert_eq!(
            vec![a.rows.clone(), a.cols.clone()],
            a_tensor.shape,
            "{tiles}: A whole"
        );
        for m in &l.tensor_maps[1..=bs] {
            assert_eq!((m.box_rows, m.box_cols), (64, 64), "{tiles}: B's box");
            assert!(l.tensors.contains(&m.tensor));
        }
        if side {
            let m = &l.tensor_maps[1 + bs];
            assert_eq!((m.box_rows, m.box_cols), (64, 16), "{tiles}: the side box");
            let t = &k.variants[0].tensors[m.tensor.0];
            assert_eq!(vec![m.rows.clone(), m.cols.clone()], t.shape, "{tiles}");
        }
        let last = l.tensor_maps.len() - 1;
        assert!(
            k.source
                .contains("const __grid_constant__ prism::TensorMap tmap0"),
            "{tiles}"
        );
        assert!(
            k.source
                .contains(&format!("prism::TensorMap tmap{last}, long long d_")),
            "{tiles}"
        );
        let call = if bs == 2 {
            "Gemm::mainloop_pair_tma(gemm0, gemm1, tmap0, tmap1, tmap2, "
        } else if side {
            "gemm0.mainloop_side_tma(tmap0, tmap1, tmap2, "
        } else {
            "gemm0.mainloop_tma(tmap0, tmap1, "
        };
        assert!(k.source.contains(call), "{tiles}");
        // A split's K range; else the whole of K.
        let range = if c.split_k > 1 {
            ", k_lo, k_hi, smem);"
        } else {
            ", 0LL, "
        };
        assert!(
            k.source
                .lines()
                .any(|l| l.contains(call) && l.contains(range)),
            "{tiles}"
        );
        if side {
            assert!(k.source.contains("gemm0.add_low_rank("), "{tiles}");
        }
        assert!(
            k.source
                .contains(&format!("__launch_bounds__({}, 1)", l.threads)),
            "{tiles}"
        );
        let arch = |capability: u32, suffix: &str| Arch {
            capability,
            suffix: suffix.into(),
        };
        assert!(
            runs_on(&g, &arch(90, "a")) && !runs_on(&g, &arch(90, "")),
            "{tiles}"
        );
        plans.push((format!("{name}_{tiles}"), k));
    }
    // The RMS statistic stays on cp.async: refused.
    let w = bundled.workload("rms_norm").expect("bundled workload");
    let (_, chosen) = prism::search::strategies::choose(w, &Default::default()).expect("a choice");
    let g = with_tiles(
        &chosen,
        by_name("t128x128x64g2s4tma").expect("a configuration"),
    )
    .expect("a matmul kernel");
    let err = codegen::cuda::generate_graph(w, &g).expect_err("refused");
    assert!(err.to_string().contains("row statistic"), "{err}");
    compile_plans(&plans, "gemm-tma");
}

/// A gated kernel's two GEMMs share A: when a stage holds A and both B
/// tiles within the shared-memory limit, one pipeline runs both
/// (`TileGemm::mainloop_pair`, A loaded once, both weight streams in flight
/// together); otherwise two main loops run one after the other. Both forms
/// compile for sm_90a and sm_80 without local memory.
#[test]
fn a_gated_kernel_runs_both_gemms_in_one_pipeline_when_they_fit() {
    use prism::codegen::cuda::templates::{GemmShape, MAX_GEMM_SHARED_BYTES, gemm_shared_bytes};
    use prism::tune::tiles::{by_name, with_tiles};
    use prism::ugraph::lower::{LowerOptions, lower};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let w = bundled.workload("swiglu").expect("swiglu");
    let base = lower(w, &LowerOptions::default()).expect("fused lowering");
    let mut plans = Vec::new();
    // (configuration, one pipeline?, dynamic shared memory of the kernel)
    for (name, pair, bytes) in [
        // 4 × (16 × 264 + 2 × 256 × 24) × 2 bytes: A and both B tiles.
        ("t16x16x256w118s4", true, 132_096),
        // 3 × (16 × 136 + 2 × 128 × 72) × 2: split-K keeps both GEMMs.
        ("t16x64x128w142s3k2", true, 123_648),
        // Both B tiles would need 197 632 bytes: one B per stage.
        ("t16x32x256w124s4", false, 115_712),
    ] {
        let c = by_name(name).expect("a configuration");
        let g = with_tiles(&base, c).expect("a matmul kernel");
        let k = codegen::cuda::generate_graph(w, &g).expect("generates");
        let l = k.variants[0]
            .launches
            .iter()
            .find(|l| k.source.contains(&l.symbol) && l.shared_bytes > 0)
            .expect("the matmul launch");
        assert_eq!(l.shared_bytes, bytes, "{name}");
        assert_eq!(
            k.source.contains("Gemm::mainloop_pair(gemm0, gemm1, "),
            pair,
            "{name}"
        );
        assert_eq!(
            k.source.matches("gemm0.mainloop(").count()
                + k.source.matches("gemm1.mainloop(").count(),
            if pair { 0 } else { 2 },
            "{name}"
        );
        let size = if pair {
            "PAIR_SMEM_BYTES"
        } else {
            "SMEM_BYTES"
        };
        assert!(
            k.source.contains(&format!("Gemm::{size} == {bytes}")),
            "{name}"
        );
        plans.push((name.replace('x', "_"), k));
    }
    // The limit decides: the configuration that does not fit two B tiles
    // is refused as a pair and accepted alone.
    let c = by_name("t16x32x256w124s4").expect("a configuration").shape;
    assert_eq!(gemm_shared_bytes(c, 2, 1), Ok(115_712));
    let err = gemm_shared_bytes(c, 2, 2).expect_err("197 632 bytes");
    assert!(err.contains(&MAX_GEMM_SHARED_BYTES.to_string()), "{err}");
    let single = GemmShape { stages: 1, ..c };
    assert_eq!(
        gemm_shared_bytes(single, 2, 2),
        Ok((16 * 264 + 2 * 256 * 40) * 2)
    );
    compile_plans(&plans, "pair");
}

/// A wgmma configuration makes the matmul kernel a `prism::WgmmaGemm`
/// (a gated kernel's two GEMMs always in one pipeline: two main loops
/// would hold both accumulators anyway, so a tile whose stages cannot
/// hold both B tiles is refused), with the shared memory its constants
/// name, and compiles for sm_90a (warpgroup MMA, no local memory) and
/// sm_80 (a trap). Only sm_90a runs it.
#[test]
fn a_wgmma_configuration_runs_the_main_loop_on_warpgroup_mma() {
    use prism::codegen::cuda::templates::{MAX_WGMMA_SHARED_BYTES, gemm_shared_bytes};
    use prism::ir::Arch;
    use prism::tune::tiles::{by_name, runs_on, with_tiles};
    use prism::ugraph::lower::{LowerOptions, lower};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let gated = bundled.workload("gated_mlp").expect("gated_mlp");
    let lora = bundled.workload("lora").expect("lora");
    let mut plans = Vec::new();
    // (workload, configuration, one pipeline?, threads, dynamic shared memory)
    for (w, name, pair, threads, bytes) in [
        // 4 × (128 × 64 + 2 × 64 × 128) × 2 + 1024 (alignment).
        (gated, "t128x128x64g2s4", true, 256, 197_632),
        (
            gated,
            "t128x64x64g2s6",
            true,
            256,
            6 * (16_384 + 2 * 8_192) + 1024,
        ),
        (
            gated,
            "t64x64x64g1s6k2",
            true,
            128,
            6 * (8_192 + 2 * 8_192) + 1024,
        ),
        // One GEMM (LoRA's x · W): 128 accumulators per thread.
        (
            lora,
            "t128x256x64g2s4",
            false,
            256,
            4 * (16_384 + 32_768) + 1024,
        ),
    ] {
        let base = lower(w, &LowerOptions::default()).expect("fused lowering");
        let c = by_name(name).expect("a configuration");
        let g = with_tiles(&base, c).expect("a matmul kernel");
        assert!(runs_on(
            &g,
            &Arch {
                capability: 90,
                suffix: "a".into()
            }
        ));
        assert!(!runs_on(
            &g,
            &Arch {
                capability: 90,
                suffix: String::new()
            }
        ));
        assert!(!runs_on(
            &g,
            &Arch {
                capability: 80,
                suffix: String::new()
            }
        ));
        let k = codegen::cuda::generate_graph(w, &g).expect("generates");
        // The wide matmul's launch (LoRA's narrow x · A has its own tile).
        let l = k.variants[0]
            .launches
            .iter()
            .max_by_key(|l| l.shared_bytes)
            .expect("the matmul launch");
        assert_eq!((l.threads, l.shared_bytes), (threads, bytes), "{name}");
        assert!(
            k.source.contains("using Gemm = prism::WgmmaGemm<__half, "),
            "{name}"
        );
        assert!(
            k.source.contains("__launch_bounds__(256, 1)") || threads != 256,
            "{name}"
        );
        // Blocks walk the row tiles of a column first.
        assert!(
            k.source.contains("long long b_y = b_lin % gridDim.y;"),
            "{name}"
        );
        assert_eq!(
            k.source.contains("Gemm::mainloop_pair(gemm0, gemm1, "),
            pair,
            "{name}"
        );
        plans.push((name.to_string(), k));
    }
    let base = lower(gated, &LowerOptions::default()).expect("fused lowering");
    // mma.sync configurations stay on TileGemm and run anywhere.
    let t = with_tiles(
        &base,
        by_name("t128x128x64w241s3").expect("a configuration"),
    )
    .expect("a matmul kernel");
    assert!(runs_on(
        &t,
        &Arch {
            capability: 80,
            suffix: String::new()
        }
    ));
    // The limits: bn 256 holds 128 accumulators per GEMM, so a gated
    // kernel cannot take it (neither as a pair nor as two loops); and the
    // shared-memory cap.
    let wide = by_name("t128x256x64g2s4").expect("a configuration");
    assert!(gemm_shared_bytes(wide.shape, 2, 2).is_err());
    let g = with_tiles(&base, wide).expect("a matmul kernel");
    let err = codegen::cuda::generate_graph(gated, &g).expect_err("256 accumulators");
    assert!(err.to_string().contains("one pipeline"), "{err}");
    let wide = wide.shape;
    let deep = prism::codegen::cuda::templates::GemmShape { stages: 8, ..wide };
    let err = gemm_shared_bytes(deep, 2, 1).expect_err("8 × 48 KiB");
    assert!(err.contains(&MAX_WGMMA_SHARED_BYTES.to_string()), "{err}");
    let f32s = by_name("t64x64x64g1s6").expect("a configuration").shape;
    assert!(gemm_shared_bytes(f32s, 4, 1).is_err(), "f32 elements");
    compile_plans(&plans, "wgmma");
}

/// LoRA, `x @ w + (x @ a) @ b`: the search's single kernel (x·W and the
/// rank-16 side product x·A from the same tiles of x, then the rank update
/// after the loop) is what code generation emits, on TileGemm and on
/// WgmmaGemm, with the shared memory it declares; what it cannot fuse it
/// refuses with the reason.
#[test]
fn lora_runs_as_one_kernel_with_a_low_rank_side_product() {
    use prism::codegen::cuda::templates::{GemmShape, low_rank_shared_bytes};
    use prism::search::crosscheck::CrossCheckOptions;
    use prism::search::strategies::search;
    use prism::tune::tiles::{by_name, with_tiles};
    use prism::ugraph::{BlockOp, KernelBody};
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let lora = bundled.workload("lora").expect("lora");
    let (_, chosen) = search(lora, &CrossCheckOptions::default());
    let fused = chosen.expect("a verified candidate");
    assert_eq!(fused.kernels.len(), 1, "LoRA fuses into one kernel");
    let mut plans = Vec::new();
    // (configuration, threads, dynamic shared memory)
    for (name, threads, bytes) in [
        // 4 × (A 128×64 + B 64×256 + the side tile 64×16, 16-bit) + 1024.
        ("t128x256x64g2s4", 256, 4 * (16_384 + 32_768 + 2_048) + 1024),
        ("t64x64x64g1s6", 128, 6 * (8_192 + 8_192 + 2_048) + 1024),
        // 4 × (A 64×(64+8) + B 64×(64+8) + side 64×(16+8)) × 2.
        ("t64x64x64w221s4", 128, 4 * (9_216 + 9_216 + 3_072)),
        // 8 k groups (their side sums meet in shared memory after the
        // loop): 3 × (A 16×(256+8) + B 256×(16+8) + side 256×(16+8)) × 2.
        ("t16x16x256w118s3", 256, 3 * (4_224 + 6_144 + 6_144) * 2),
    ] {
        let c = by_name(name).expect("a configuration");
        let g = with_tiles(&fused, c).expect("a matmul kernel");
        let k = codegen::cuda::generate_graph(lora, &g).expect("generates");
        let l = &k.variants[0].launches[0];
        assert_eq!((l.threads, l.shared_bytes), (threads, bytes), "{name}");
        assert_eq!(
            low_rank_shared_bytes(c.shape, 2),
            Ok(bytes),
            "{name}: the code generator's count"
        );
        assert!(k.source.contains("Gemm::SIDE_SMEM_BYTES"), "{name}");
        assert!(k.source.contains("gemm0.mainloop_side("), "{name}");
        // The rank update reads b's [16, n] tile at the block's columns.
        assert!(
            k.source.contains(
                "gemm0.add_low_rank(p3 + 0 * (4096 * 1LL) + g0_0 * 1LL, 4096, 16, n_valid, smem);"
            ),
            "{name}"
        );
        plans.push((name.to_string(), k));
    }

    // Split-K across blocks: each split adds its rank update before its
    // partial sums go to the workspace (no side sums in it).
    let g = with_tiles(
        &fused,
        by_name("t16x64x128w142s4k4").expect("a configuration"),
    )
    .expect("a matmul kernel");
    let k = codegen::cuda::generate_graph(lora, &g).expect("split-K generates");
    let (update, store) = (
        k.source
            .find("gemm0.add_low_rank(")
            .expect("the rank update"),
        k.source
            .find("__stcg(splitk_at(")
            .expect("the partial sums stored"),
    );
    assert!(update < store, "the update precedes the split's store");
    let ws = k.variants[0].launches[0]
        .split_k
        .as_ref()
        .expect("a workspace");
    assert_eq!(ws.splits, 4);
    plans.push(("split-k".to_string(), k));
    compile_plans(&plans, "low-rank");
    // A side product whose post-loop product is not added to the GEMM's
    // sum (here multiplied) is not this template's.
    let mut product = fused.clone();
    let KernelBody::Block(b) = &mut product.kernels[0].body else {
        panic!("a block kernel");
    };
    for op in &mut b.ops {
        if let BlockOp::Binary(f @ prism::ir::BinaryOp::Add, ..) = op {
            *f = prism::ir::BinaryOp::Mul;
        }
    }
    let err = codegen::cuda::generate_graph(lora, &product).expect_err("not a sum");
    assert!(
        err.to_string().contains("not added to the GEMM's sum"),
        "{err}"
    );
    // Shared memory past the cap is refused before nvcc sees it.
    let deep = GemmShape {
        stages: 8,
        ..by_name("t128x256x64g2s4").expect("a configuration").shape
    };
    assert!(low_rank_shared_bytes(deep, 2).is_err());
    // Rank 32 is wider than the side product: LoRA stays three kernels.
    let (_, chosen) = search(&common::wide_lora(), &CrossCheckOptions::default());
    assert!(chosen.expect("a verified candidate").kernels.len() > 1);
}

/// `x @ w + s @ b` with `s` an input of rank 16 (LoRA's `x·A` stored by an
/// earlier kernel, the search's two-kernel LoRA): one kernel, the GEMM's
/// main loop and then `s`'s tile of the block's rows times `b`'s added to
/// the accumulators, once per output tile (under split-K after the splits'
/// sums are combined), on cp.async and TMA main loops, TileGemm and
/// WgmmaGemm. The bundled LoRA's search finds that graph.
#[test]
fn an_input_low_rank_product_is_added_after_the_main_loop() {
    use prism::codegen::cuda::templates::{GemmShape, low_rank_input_shared_bytes};
    use prism::search::crosscheck::CrossCheckOptions;
    use prism::search::strategies::search;
    use prism::tune::tiles::{by_name, with_tiles};
    let spec = frontend::parse(
        "input_rank.toml",
        r#"
[workload.input_rank]
inputs = { x = "f16[m, 1000]", w = "f16[1000, 328]", s = "f16[m, 16]", b = "f16[16, 328]" }
program = "x @ w + s @ b"
dims = { m = "1..=300" }
"#,
    )
    .expect("parses");
    let w = spec.workload("input_rank").expect("the workload");
    let (_, chosen) = search(w, &CrossCheckOptions::default());
    let one = chosen.expect("a verified candidate");
    assert_eq!(one.kernels.len(), 1, "one kernel");
    let call = "gemm0.add_low_rank_input(p2 + g1_0 * (16 * 1LL) + 0 * 1LL, 16, m_valid, p3 + 0 * (328 * 1LL) + g0_0 * 1LL, 328, 16, n_valid, smem);";
    let mut plans = Vec::new();
    // (configuration, main loop call, split-K)
    for (name, main, split) in [
        ("t128x256x64g2s4tma", "gemm0.mainloop_tma(", false),
        ("t128x128x64g2s4k2ctma", "gemm0.mainloop_tma(", true),
        ("t64x128x64g1s4k2", "gemm0.mainloop(", true),
        ("t64x64x64w221s4", "gemm0.mainloop(", false),
        ("t16x64x128w142s4k2c", "gemm0.mainloop(", true),
    ] {
        let c = by_name(name).expect("a configuration");
        let g = with_tiles(&one, c).expect("a matmul kernel");
        let k = codegen::cuda::generate_graph(w, &g).unwrap_or_else(|e| panic!("{name}: {e}"));
        let src = &k.source;
        let (at_main, at_update) = (
            src.find(main).unwrap_or_else(|| panic!("{name}: {main}")),
            src.find(call)
                .unwrap_or_else(|| panic!("{name}: {call}\n{src}")),
        );
        assert!(at_main < at_update, "{name}: the update follows the loop");
        assert!(!src.contains("mainloop_side"), "{name}: no side product");
        assert!(src.contains("Gemm::INPUT_RANK_SMEM_BYTES"), "{name}");
        if split {
            // After the combine: the splits' sums hold x·w only.
            let combine = src
                .find("add_cluster_sums")
                .or_else(|| src.find("combine_splits"))
                .unwrap_or_else(|| panic!("{name}: a combine"));
            assert!(
                combine < at_update,
                "{name}: the update follows the combine"
            );
        }
        let l = &k.variants[0].launches[0];
        assert_eq!(
            Ok(l.shared_bytes),
            low_rank_input_shared_bytes(c.shape, 2),
            "{name}: the code generator's count"
        );
        plans.push((format!("input_rank_{name}"), k));
    }
    compile_plans(&plans, "input-rank");
    // Shared memory past the cap is refused before nvcc sees it.
    let deep = GemmShape {
        stages: 8,
        ..by_name("t128x256x64g2s4").expect("a configuration").shape
    };
    assert!(low_rank_input_shared_bytes(deep, 2).is_err());
    // LoRA's search: x·A in a kernel of its own, then this kernel.
    let bundled = frontend::embedded().expect("bundled prism.toml");
    let lora = bundled.workload("lora").expect("lora");
    let (report, _) = search(lora, &CrossCheckOptions::default());
    assert!(
        report.candidates.iter().any(|c| c.kernels == 2
            && c.cross_check.is_ok()
            && c.proof.is_ok()
            && c.term
                .as_ref()
                .is_some_and(|(t, _)| t.iter().any(|s| s == "(add (matmul x w) (matmul c5 b))"))),
        "LoRA's two-kernel candidate"
    );
}
