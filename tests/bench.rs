//! `prism bench` without a GPU: the floors' arithmetic, the points, the
//! dispatch rule, the statistics, the checks, the JSON shape, the errors
//! a GPU-less machine gives, and the probes compiling with nvcc.

mod common;

use common::{prism, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prism::bench::floors::{Floors, bytes_at, cpu_checkable, flops_at, macs_at};
use prism::bench::{
    BenchError, Checked, ChoiceSource, Options, Report, Row, check_cpu, check_finite, dispatch_for,
    points, stats, variant_for,
};
use prism::codegen::{ArchDispatch, DispatchEntry, Variant, WorkloadKernels};
use prism::ir::{Arch, DimBindings, Spec, Workload};
use prism::reference::Tensor;

fn bundled() -> Spec {
    prism::frontend::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/prism.toml"
    )))
    .expect("the bundled prism.toml loads")
}

fn workload<'a>(spec: &'a Spec, name: &str) -> &'a Workload {
    spec.workload(name).expect("bundled workload")
}

fn at(pairs: &[(&str, i64)]) -> DimBindings {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn rms_norm_bytes_and_flops() {
    let spec = bundled();
    let w = workload(&spec, "rms_norm");
    let p = at(&[("n", 8), ("d", 1024)]);
    // x [8, 1024], w [1024, 1024], out [8, 1024], all f16.
    assert_eq!(
        bytes_at(w, &p).unwrap(),
        2 * (8 * 1024 + 1024 * 1024 + 8 * 1024)
    );
    assert_eq!(flops_at(w, &p).unwrap(), 2 * 8 * 1024 * 1024);
    assert_eq!(macs_at(w, &p).unwrap(), 8 * 1024 * 1024);
}

#[test]
fn gated_mlp_counts_both_matmuls() {
    let spec = bundled();
    let w = workload(&spec, "gated_mlp");
    let p = at(&[("n", 16)]);
    assert_eq!(
        bytes_at(w, &p).unwrap(),
        2 * (16 * 4096 + 2 * 4096 * 14336 + 16 * 14336)
    );
    assert_eq!(flops_at(w, &p).unwrap(), 2 * (2 * 16 * 4096 * 14336));
}

#[test]
fn attention_counts_both_matmuls_with_folded_heads() {
    let spec = bundled();
    let w = workload(&spec, "attention");
    let p = at(&[("b", 2), ("h", 8), ("s", 1), ("kv", 1024), ("dh", 128)]);
    // q [2, 8, 128] @ kt [2, 128, 8192] -> [2, 8, 8192] (k = 128), then
    // [2, 8, 8192] @ v [2, 8192, 128] -> [2, 8, 128] (k = 8192).
    let qk = 2 * 8 * 8192 * 128;
    let pv = 2 * 8 * 128 * 8192;
    assert_eq!(flops_at(w, &p).unwrap(), 2 * (qk + pv));
    assert_eq!(
        bytes_at(w, &p).unwrap(),
        2 * (2 * 8 * 128 + 2 * 128 * 8192 + 2 * 8192 * 128 + 2 * 8 * 128)
    );
    // Grouped-query decode: [b, 8, 4, 128] @ [b, 8, 128, kv], then @ v.
    let g = workload(&spec, "gqa_decode");
    let p = at(&[("b", 7), ("kv", 1000)]);
    assert_eq!(flops_at(g, &p).unwrap(), 2 * 2 * (7 * 8 * 4 * 1000 * 128));
}

#[test]
fn elementwise_workloads_have_no_flops() {
    let spec = bundled();
    let w = workload(&spec, "ntrans");
    let p = at(&[("n", 64)]);
    assert_eq!(flops_at(w, &p).unwrap(), 0);
    assert_eq!(bytes_at(w, &p).unwrap(), 2 * 4 * 64 * 4096);
}

#[test]
fn cpu_check_threshold() {
    let spec = bundled();
    let rms = workload(&spec, "rms_norm");
    assert!(cpu_checkable(rms, &at(&[("n", 16), ("d", 4096)])).unwrap());
    let mlp = workload(&spec, "gated_mlp");
    assert!(cpu_checkable(mlp, &at(&[("n", 16)])).unwrap());
    assert!(!cpu_checkable(mlp, &at(&[("n", 2048)])).unwrap());
    // Few multiply-adds but 2^30 input elements: too much memory.
    let gqa = workload(&spec, "gqa_decode");
    assert!(!cpu_checkable(gqa, &at(&[("b", 64), ("kv", 8192)])).unwrap());
    assert!(cpu_checkable(gqa, &at(&[("b", 8), ("kv", 4096)])).unwrap());
}

#[test]
fn roofline_and_limit() {
    let f = Floors {
        copy_bytes_per_s: 4e12,
        mma_flops_per_s: 5e14,
        launch_floor_us: 2.0,
    };
    // Memory bound: 4 MB at 4 TB/s is 1 µs.
    assert!((f.roofline_us(4_000_000, 1000) - 1.0).abs() < 1e-12);
    // Compute bound: 1 GFLOP at 500 TFLOP/s is 2 µs.
    assert!((f.roofline_us(1000, 1_000_000_000) - 2.0).abs() < 1e-12);
    assert!((f.limit_us(1000, 1_000_000_000) - 4.0).abs() < 1e-12);
}

#[test]
fn mma_probe_flops() {
    use prism::bench::probes::{mma_blocks, mma_probe_flops};
    assert_eq!(mma_blocks(132), 528);
    // 528 blocks x 8 warps x 16384 rounds x 4 chains x 4096 flops.
    assert_eq!(mma_probe_flops(528), 528 * 8 * 16384 * 4 * 4096);
}

#[test]
fn declared_points_in_order_else_the_largest() {
    let spec = bundled();
    let rms = workload(&spec, "rms_norm");
    let p = points(rms);
    assert_eq!(p.len(), 5);
    assert_eq!(p[0], at(&[("n", 8), ("d", 1024)]));
    assert_eq!(p[4], at(&[("n", 16), ("d", 4096)]));
    let gqa = points(workload(&spec, "gqa_decode"));
    assert_eq!(gqa.len(), 6);
    assert_eq!(gqa[5], at(&[("b", 7), ("kv", 1000)]));

    let toml = r#"
[workload.scale]
inputs = { x = "f16[n, d]" }
program = "x * 2"
dims = { n = "1..=64", d = [1024, 4096] }
"#;
    let spec = prism::frontend::parse("inline.toml", toml).expect("valid");
    let w = &spec.workloads[0];
    assert!(w.points.len() > 1, "the front end fills in corners");
    assert_eq!(points(w), vec![at(&[("n", 64), ("d", 4096)])]);
}

fn kernels(dispatch: Vec<ArchDispatch>, variants: usize) -> WorkloadKernels {
    WorkloadKernels {
        workload: "w".into(),
        dims: vec!["n".into(), "d".into()],
        variants: (0..variants)
            .map(|i| Variant {
                label: format!("v{i}"),
                tensors: vec![],
                launches: vec![],
            })
            .collect(),
        dispatch,
        source: String::new(),
    }
}

/// (n range, d range, variant).
type Entry = ((i64, i64), (i64, i64), usize);

fn table(arch: &str, capability: u32, entries: &[Entry]) -> ArchDispatch {
    ArchDispatch {
        arch: arch.into(),
        capability,
        entries: entries
            .iter()
            .map(|&(n, d, variant)| DispatchEntry {
                ranges: vec![n, d],
                variant,
            })
            .collect(),
    }
}

#[test]
fn dispatch_follows_the_generated_runtime() {
    let tables = vec![
        table(
            "sm_90a",
            90,
            &[((1, 8), (1, 4096), 1), ((9, 16), (1, 4096), 2)],
        ),
        table("sm_80", 80, &[((1, 16), (1, 4096), 0)]),
    ];
    // The newest table not newer than the device, else the oldest.
    assert_eq!(dispatch_for(&tables, 90).unwrap().arch, "sm_90a");
    assert_eq!(dispatch_for(&tables, 100).unwrap().arch, "sm_90a");
    assert_eq!(dispatch_for(&tables, 86).unwrap().arch, "sm_80");
    assert_eq!(dispatch_for(&tables, 75).unwrap().arch, "sm_80");
    assert!(dispatch_for(&[], 90).is_none());

    let k = kernels(tables, 3);
    assert_eq!(variant_for(&k, 90, &at(&[("n", 8), ("d", 1024)])), 1);
    assert_eq!(variant_for(&k, 90, &at(&[("n", 9), ("d", 1024)])), 2);
    assert_eq!(variant_for(&k, 80, &at(&[("n", 9), ("d", 1024)])), 0);
    // Outside every box: variant 0.
    assert_eq!(variant_for(&k, 90, &at(&[("n", 17), ("d", 1024)])), 0);
    // An entry naming a variant that does not exist: variant 0.
    let bad = kernels(vec![table("sm_90a", 90, &[((1, 8), (1, 8), 5)])], 2);
    assert_eq!(variant_for(&bad, 90, &at(&[("n", 1), ("d", 1)])), 0);
}

#[test]
fn statistics() {
    let v: Vec<f64> = (1..=10).rev().map(f64::from).collect();
    let (median, min, p90) = stats(&v).unwrap();
    assert!((median - 5.5).abs() < 1e-12);
    assert_eq!(min, 1.0);
    assert!((p90 - 9.1).abs() < 1e-12);
    let (median, min, p90) = stats(&[3.0]).unwrap();
    assert_eq!((median, min, p90), (3.0, 3.0, 3.0));
    assert!(stats(&[]).is_none());
}

#[test]
fn output_checks() {
    let want = vec![Tensor::new(vec![4], vec![1.0, 2.0, 3.0, 4.0]).unwrap()];
    let close = vec![Tensor::new(vec![4], vec![1.0, 2.0, 3.0, 4.001]).unwrap()];
    let (err, why) = check_cpu(&close, &want, 1e-2);
    assert!(why.is_none());
    assert!(err > 0.0 && err < 1e-3, "{err}");
    let far = vec![Tensor::new(vec![4], vec![1.0, 2.0, 3.0, 5.0]).unwrap()];
    let (err, why) = check_cpu(&far, &want, 1e-2);
    assert!(err > 1e-2);
    assert!(why.unwrap().contains("output 0 differs"));
    let nan = vec![Tensor::new(vec![4], vec![1.0, f64::NAN, 3.0, 4.0]).unwrap()];
    assert!(check_cpu(&nan, &want, 1e-2).1.is_some());
    let shape = vec![Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap()];
    assert!(check_cpu(&shape, &want, 1e-2).1.unwrap().contains("shape"));

    assert!(check_finite(&want).is_none());
    assert_eq!(
        check_finite(&nan).as_deref(),
        Some("output 0 has 1 non-finite elements")
    );
}

fn sample_row() -> Row {
    Row {
        workload: "rms_norm".into(),
        dims: at(&[("n", 8), ("d", 1024)]),
        variant: "sgraph#0".into(),
        source: ChoiceSource::Measured,
        kernels: 1,
        median_us: Some(5.25),
        min_us: Some(5.0),
        p90_us: Some(6.0),
        samples: 100,
        bytes: 2 * (8 * 1024 + 1024 * 1024 + 8 * 1024),
        flops: 2 * 8 * 1024 * 1024,
        roofline_us: 0.5,
        limit_us: 2.5,
        over_limit: Some(2.1),
        read_floor_us: Some(3.5),
        over_read_floor: Some(1.5),
        checked: Checked::Cpu,
        max_error: Some(1e-3),
        error: None,
    }
}

/// Rows written before the read floor existed still load (both fields
/// absent: `None`).
#[test]
fn a_row_without_a_read_floor_parses() {
    let mut v = serde_json::to_value(sample_row()).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("read_floor_us");
    obj.remove("over_read_floor");
    let r: Row = serde_json::from_value(v).unwrap();
    assert_eq!((r.read_floor_us, r.over_read_floor), (None, None));
    assert_eq!(r.median_us, Some(5.25));
}

#[test]
fn row_json_shape() {
    let v = serde_json::to_value(sample_row()).unwrap();
    let obj = v.as_object().unwrap();
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want = vec![
        "workload",
        "dims",
        "variant",
        "source",
        "kernels",
        "median_us",
        "min_us",
        "p90_us",
        "samples",
        "bytes",
        "flops",
        "roofline_us",
        "limit_us",
        "over_limit",
        "read_floor_us",
        "over_read_floor",
        "checked",
        "max_error",
        "error",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(v["dims"], serde_json::json!({"d": 1024, "n": 8}));
    // Dims keys come out sorted.
    let text = serde_json::to_string(&sample_row()).unwrap();
    assert!(text.contains(r#""dims":{"d":1024,"n":8}"#), "{text}");
    assert_eq!(v["source"], "measured");
    assert_eq!(v["checked"], "cpu");
    assert_eq!(v["bytes"], 2 * (8 * 1024 + 1024 * 1024 + 8 * 1024));
    assert_eq!(v["flops"], 16_777_216);
    assert_eq!(v["median_us"], 5.25);
    assert!(v["error"].is_null());

    let mut r = sample_row();
    r.source = ChoiceSource::Model;
    r.checked = Checked::Finite;
    r.max_error = None;
    r.error = Some("output 0 has 3 non-finite elements".into());
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["source"], "model");
    assert_eq!(v["checked"], "finite");
    assert!(v["max_error"].is_null());
    assert_eq!(v["error"], "output 0 has 3 non-finite elements");
}

fn sample_report() -> Report {
    Report {
        tool: "prism bench".into(),
        prism: env!("CARGO_PKG_VERSION").into(),
        toml: "prism.toml".into(),
        device: "NVIDIA H200".into(),
        capability: 90,
        sms: Some(132),
        arch: "sm_90a".into(),
        nvcc: "13.0".into(),
        reps: 100,
        warmup: 10,
        flush_bytes: 268_435_456,
        copy_bytes_per_s: 4.1e12,
        mma_flops_per_s: 6.0e14,
        mma_note: prism::bench::probes::MMA_NOTE.into(),
        launch_floor_us: 2.2,
        rows: vec![sample_row()],
    }
}

#[test]
fn report_json_shape_round_trips() {
    let report = sample_report();
    let v = serde_json::to_value(&report).unwrap();
    for key in [
        "tool",
        "prism",
        "toml",
        "device",
        "capability",
        "sms",
        "arch",
        "nvcc",
        "reps",
        "warmup",
        "flush_bytes",
        "copy_bytes_per_s",
        "mma_flops_per_s",
        "launch_floor_us",
        "rows",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["tool"], "prism bench");
    assert_eq!(v["flush_bytes"], 268_435_456);
    assert_eq!(v["capability"], 90);
    assert_eq!(v["rows"][0]["workload"], "rms_norm");
    assert!(v["mma_note"].as_str().unwrap().contains("mma.sync"));
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back, report);
    assert!(!back.failed());
    let mut failed = report.clone();
    failed.rows[0].error = Some("x".into());
    assert!(failed.failed());
    assert_eq!(prism::bench::FLUSH_BYTES, 268_435_456);
}

fn options(workloads: &[&str], reps: usize) -> Options {
    Options {
        toml: PathBuf::from("prism.toml"),
        workloads: workloads.iter().map(|s| s.to_string()).collect(),
        reps,
        warmup: 10,
        work_dir: std::env::temp_dir().join("prism-bench-test"),
    }
}

#[test]
fn user_errors_come_before_the_gpu() {
    let spec = bundled();
    match prism::bench::preflight(&spec, &options(&["nope"], 100)) {
        Err(e @ BenchError::UnknownWorkload { .. }) => {
            let m = e.to_string();
            assert!(m.contains("no workload `nope`"), "{m}");
            assert!(m.contains("rms_norm, rmsnorm_mlp, swiglu"), "{m}");
        }
        other => panic!("expected an unknown-workload error, got {other:?}"),
    }
    assert!(matches!(
        prism::bench::preflight(&spec, &options(&["rms_norm"], 0)),
        Err(BenchError::NoReps)
    ));

    let out = prism(&["bench", "prism.toml", "--workload", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("has no workload `nope`"), "{err}");
    assert!(err.contains("gated_mlp"), "{err}");
}

#[test]
fn without_a_gpu_bench_says_it_needs_one() {
    if prism::tune::gpu::device_count() > 0 {
        eprintln!("skipping: this machine has a GPU");
        return;
    }
    let spec = bundled();
    let e = prism::bench::run(&spec, &options(&[], 100), &prism::bench::Quiet)
        .expect_err("no GPU here");
    assert!(matches!(e, BenchError::NoGpu(_)), "{e:?}");

    let json = std::env::temp_dir().join(format!("prism-bench-{}.json", std::process::id()));
    let out = prism(&[
        "bench",
        "prism.toml",
        "--json",
        json.to_str().unwrap(),
        "--workload",
        "rms_norm",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("prism bench needs an NVIDIA GPU and its driver"),
        "{err}"
    );
    assert!(!json.exists(), "no report without a GPU");
    assert!(text(&out.stdout).is_empty());
}

#[test]
fn probes_compile_for_sm_90a_and_sm_80() {
    let Some(nvcc) = common::nvcc() else { return };
    let dir = std::env::temp_dir().join(format!("prism-bench-probes-{}", std::process::id()));
    for arch in ["sm_90a", "sm_80"] {
        let a: Arch = match arch {
            "sm_90a" => Arch {
                capability: 90,
                suffix: "a".into(),
            },
            _ => Arch {
                capability: 80,
                suffix: String::new(),
            },
        };
        let fatbin = prism::bench::probes::compile(&nvcc, &dir.join(arch), &a)
            .unwrap_or_else(|e| panic!("{arch}: {e}"));
        let bytes = std::fs::read(&fatbin).expect("fatbin written");
        for symbol in [prism::bench::probes::EMPTY, prism::bench::probes::MMA] {
            assert!(
                bytes.windows(symbol.len()).any(|w| w == symbol.as_bytes()),
                "{arch}: {symbol} missing from the fatbin"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dims_label_is_sorted() {
    let d: BTreeMap<String, i64> = at(&[("n", 8), ("d", 1024)]);
    assert_eq!(prism::cli::bench::dims_label(&d), "d=1024 n=8");
}

#[test]
fn table_columns_line_up() {
    let mut report = sample_report();
    let mut slow = sample_row();
    slow.workload = "gqa_decode".into();
    slow.dims = at(&[("b", 64), ("kv", 8192)]);
    slow.variant = "flash splits=16".into();
    slow.source = ChoiceSource::Model;
    slow.checked = Checked::Finite;
    slow.max_error = None;
    slow.median_us = None;
    slow.over_limit = None;
    slow.read_floor_us = None;
    slow.over_read_floor = None;
    slow.error = Some("output 0 has 3 non-finite elements".into());
    report.rows.push(slow);
    let t = prism::cli::bench::table(&report);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("workload"), "{t}");
    assert!(lines[1].starts_with("rms_norm  "), "{t}");
    assert!(lines[2].starts_with("gqa_decode"), "{t}");
    // The dims column starts at the same place on every line.
    let col = |l: &str, s: &str| l.find(s).unwrap_or_else(|| panic!("{s} in {l}"));
    assert_eq!(col(lines[0], "dims"), col(lines[1], "d=1024 n=8"));
    assert_eq!(col(lines[0], "dims"), col(lines[2], "b=64 kv=8192"));
    assert_eq!(
        col(lines[0], "variant"),
        col(lines[2], "flash splits=16 (model)")
    );
    assert!(
        lines[1].contains("5.2") && lines[1].contains("2.10x"),
        "{t}"
    );
    // The read floor and the time over it; "-" where there is none.
    assert!(lines[1].contains("2.10x  3.50  1.50x  cpu"), "{t}");
    assert!(lines[2].contains("    -     -      -  FAILED"), "{t}");
    assert!(lines[0].contains("×limit  read  ×read  check"), "{t}");
    assert!(lines[1].ends_with("cpu 1.0e-3"), "{t}");
    assert!(
        lines[2].ends_with("FAILED: output 0 has 3 non-finite elements"),
        "{t}"
    );
    assert!(
        t.contains("copy 4.10 TB/s, mma.sync 600 TFLOP/s, launch floor 2.20 µs"),
        "{t}"
    );
    assert!(
        t.contains("median of 100 after 10 warm-up, 256 MiB zeroed before each"),
        "{t}"
    );
}
