//! The tuning stage without a GPU: instances and their split variants,
//! prism.lock (format, errors, freshness of the committed locks), the
//! build's resolution from the lock (offline errors, model fallback with a
//! warning, stale entries), and the tuner's statistics.

mod common;

use std::path::{Path, PathBuf};

use prism::build::{Build, BuildError};
use prism::ir::Spec;
use prism::search::crosscheck::CrossCheckOptions;
use prism::tune::instances::{InstanceId, split_count, unverified, verify, with_splits};
use prism::tune::lock::{Entry, Lock, LockError, Source, path_for, seal};
use prism::tune::resolve::{Origin, kept_entries, locked, model_entries, orphans, resolve};
use prism::tune::tiles::{TILE_CONFIGS, tile_choices, with_tiles};
use prism::tune::tuner::{Timed, arch_for, choose, shortlist, spearman, with_incumbent};
use prism::ugraph::{KernelBody, KernelGraph};

fn load(path: &str) -> Spec {
    prism::frontend::load(Path::new(env!("CARGO_MANIFEST_DIR")).join(path).as_path())
        .expect("valid prism.toml")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("prism-tune-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn instance_labels_round_trip() {
    use prism::search::strategies::Strategy;
    for id in [
        InstanceId {
            strategy: Strategy::Searched(0),
            splits: None,
            tiles: None,
            rows: None,
            fused: false,
            cluster: false,
            wgmma: false,
        },
        InstanceId {
            strategy: Strategy::Searched(12),
            splits: Some(16),
            tiles: None,
            rows: None,
            fused: false,
            cluster: false,
            wgmma: false,
        },
        InstanceId {
            strategy: Strategy::Flash,
            splits: Some(1),
            tiles: None,
            rows: None,
            fused: false,
            cluster: false,
            wgmma: false,
        },
        InstanceId {
            strategy: Strategy::Regions,
            splits: None,
            tiles: Some(3),
            rows: None,
            fused: false,
            cluster: false,
            wgmma: false,
        },
        InstanceId {
            strategy: Strategy::Searched(2),
            splits: Some(4),
            tiles: Some(0),
            rows: None,
            fused: false,
            cluster: false,
            wgmma: false,
        },
        InstanceId {
            strategy: Strategy::Flash,
            splits: Some(16),
            tiles: None,
            rows: Some(16),
            fused: false,
            cluster: false,
            wgmma: false,
        },
        InstanceId {
            strategy: Strategy::Flash,
            splits: Some(16),
            tiles: None,
            rows: Some(16),
            fused: true,
            cluster: false,
            wgmma: false,
        },
        InstanceId {
            strategy: Strategy::Searched(0),
            splits: Some(8),
            tiles: None,
            rows: None,
            fused: true,
            cluster: false,
            wgmma: false,
        },
    ] {
        assert_eq!(InstanceId::parse(&id.label()), Some(id), "{}", id.label());
    }
    assert_eq!(
        InstanceId::parse("sgraph#1 tiles=t16x32x128w124s4").map(|i| i.label()),
        Some("sgraph#1 tiles=t16x32x128w124s4".to_string())
    );
    for bad in [
        "",
        "sgraph#",
        "sgraph#x",
        "fancy",
        "flash splits=",
        "flash x=2",
        "regions splits=2 more",
        "regions tiles=t1x1x1w111s1",
        "regions tiles=",
        "regions tiles=t16x32x128w124s4 splits=2",
        "regions tiles=t16x32x128w124s4 tiles=t16x32x128w124s4",
        "flash splits=4 rows=32",
        "flash splits=4 rows=",
        "flash rows=16 splits=4",
        "flash rows=16 rows=16",
        "flash splits=4 fused rows=16",
        "flash fused fused",
        "flash splits=4 fuse",
    ] {
        assert_eq!(InstanceId::parse(bad), None, "{bad:?}");
    }
}

/// Every tile configuration of the table is one the matmul template
/// emits and nvcc compiles (the generated static_assert pins the shared
/// memory size computed here to TileGemm's), its graphs verify for a
/// workload with row statistics (rms_norm) and one with two matmuls
/// (swiglu), and the decode-only workloads get no 64/128-row tiles.
#[test]
fn tile_variants_generate_verify_and_compile() {
    let spec = load("prism.toml");
    let mut sources = Vec::new();
    for name in ["rms_norm", "swiglu", "gated_mlp"] {
        let w = spec.workload(name).expect("workload");
        let fits = |g: &KernelGraph| prism::codegen::cuda::fits(w, g);
        let all = unverified(w, &CrossCheckOptions::default(), &fits).expect("instances");
        let (base, _) = all
            .iter()
            .find(|(i, ok)| *ok && i.id.tiles.is_none() && !tile_choices(&i.graph, w).is_empty())
            .expect("a verified matmul candidate");
        let choices = tile_choices(&base.graph, w);
        if name == "gated_mlp" {
            assert_eq!(
                choices.len(),
                TILE_CONFIGS.len(),
                "n up to 2048: every tile"
            );
        } else {
            assert!(
                choices.iter().all(|c| c.shape.bm <= 32) && choices.len() >= 4,
                "{name}: decode tiles only"
            );
        }
        let mut variants: Vec<(String, KernelGraph)> = Vec::new();
        for c in &choices {
            let g = with_tiles(&base.graph, c).expect("a tile variant");
            assert_ne!(g, base.graph);
            assert!(fits(&g).is_ok(), "{name} {}: {:?}", c.name, fits(&g));
            variants.push((c.name.to_string(), g));
        }
        if name != "gated_mlp" {
            let graphs: Vec<&KernelGraph> = variants.iter().map(|(_, g)| g).collect();
            let ok = verify(w, &graphs, &CrossCheckOptions::default());
            assert!(
                ok.iter().all(|v| *v),
                "{name}: every tile variant verifies: {ok:?}"
            );
        }
        // The listed instances carry them, labelled.
        assert!(
            all.iter()
                .any(|(i, _)| i.id.tiles.is_some()
                    && i.id.label().contains(" tiles=t16x32x128w124s4"))
        );
        let k = prism::codegen::cuda::generate_variants(w, &variants, Vec::new()).expect("emit");
        assert!(
            k.variants
                .iter()
                .any(|v| v.launches.iter().any(|l| l.shared_bytes > 48 * 1024)),
            "{name}: the deep pipelines take dynamic shared memory"
        );
        // Split-K across blocks: the z grid ends with the split count, and
        // the kernel takes the counters and the workspace.
        let split = k
            .variants
            .iter()
            .flat_map(|v| &v.launches)
            .find(|l| l.splits() == 8)
            .expect("a split-K variant");
        assert!(split.split_k.is_some());
        assert_eq!(
            split.grid[2].last().map(|f| f.extent.clone()),
            Some(prism::ir::DimExpr::constant(8))
        );
        assert!(k.source.contains("splitk_counters"));
        sources.push((name, k));
    }
    let Some(nvcc) = common::nvcc() else { return };
    let dir = temp_dir("tiles");
    let include = dir.join("include");
    prism::device_library::write_to(&include).expect("device library");
    for (name, k) in &sources {
        let cu = dir.join(format!("{name}.cu"));
        std::fs::write(&cu, &k.source).expect("write .cu");
        let archs = prism::build::arch::parse_list("sm_90a,sm_80").expect("archs");
        prism::nvcc::compile_fatbin(
            &nvcc,
            &cu,
            &dir.join(format!("{name}.fatbin")),
            &include,
            &archs,
        )
        .unwrap_or_else(|e| panic!("{name}: nvcc: {e}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The split variants of attention's flash kernels are new graphs whose
/// split count, workspaces and combine loop all agree, and they verify;
/// a graph with only its grid changed does not.
#[test]
fn split_variants_change_every_split_site_and_verify() {
    let spec = load("prism.toml");
    let w = spec.workload("gqa_decode").expect("gqa_decode");
    let fits = |g: &KernelGraph| prism::codegen::cuda::fits(w, g);
    let all = unverified(w, &CrossCheckOptions::default(), &fits).expect("instances");
    let splits: Vec<u32> = all
        .iter()
        .filter(|(i, _)| i.id.strategy == prism::search::strategies::Strategy::Flash && !i.id.fused)
        .filter_map(|(i, _)| i.id.splits)
        .collect();
    assert_eq!(splits, vec![1, 2, 4, 8, 16, 32, 64], "flash split counts");
    let (base, _) = all
        .iter()
        .find(|(i, ok)| *ok && i.id.splits.is_some())
        .expect("a verified split graph");
    for s in [1, 3, 64] {
        let g = with_splits(&base.graph, s).expect("a split form");
        assert_eq!(split_count(&g), Some(s));
        assert_eq!(
            with_splits(&g, split_count(&base.graph).unwrap_or(1)).as_ref(),
            Some(&base.graph)
        );
    }
    let good = with_splits(&base.graph, 3).expect("3 splits");
    // The grid alone changed: the workspaces still hold the old count.
    let mut bad = base.graph.clone();
    for k in &mut bad.kernels {
        if let KernelBody::Block(b) = &mut k.body
            && let Some(gd) = b.forloop.as_ref().and_then(|f| f.split)
        {
            b.grid[gd].extents = vec![prism::ir::DimExpr::constant(3)];
        }
    }
    assert_ne!(bad, good);
    let v = verify(w, &[&good, &bad], &CrossCheckOptions::default());
    assert_eq!(
        v,
        vec![true, false],
        "the consistent variant verifies, the inconsistent one does not"
    );
    // A graph without a split loop has no split form.
    let plain = all
        .iter()
        .find(|(i, _)| i.id.splits.is_none())
        .expect("a plain candidate");
    assert_eq!(with_splits(&plain.0.graph, 4), None);
}

#[test]
fn lock_round_trips_and_refuses_bad_files() {
    let p = Path::new("prism.lock");
    let mut lock = Lock::new("13.0");
    lock.entries.push(Entry {
        workload: "w".into(),
        bucket: "n=1".into(),
        arch: "sm_90a".into(),
        key: "k1".into(),
        instance: "sgraph#0 splits=4".into(),
        graph: "g".into(),
        source: Source::Measured,
        micros: Some(12.3456),
        model_instance: Some("regions".into()),
        model_micros: Some(14.04),
        device: Some("NVIDIA H200".into()),
    });
    lock.entries.push(Entry {
        key: "k2".into(),
        source: Source::Model,
        micros: None,
        model_instance: None,
        model_micros: None,
        device: None,
        ..lock.entries[0].clone()
    });
    let text = lock.render();
    assert!(text.starts_with("# prism.lock"), "{text}");
    assert!(text.contains("micros = 12.3\n"), "times rounded: {text}");
    let back = Lock::parse(&text, p).expect("parses");
    assert_eq!(back.entries.len(), 2);
    assert_eq!(back.entries[1].source, Source::Model);
    assert_eq!(back.render(), text, "deterministic");

    let err = |t: &str| Lock::parse(t, p).expect_err("refused");
    // Text without its checksum line, to edit and seal again: the TOML's
    // own checks come after the checksum's.
    let unsealed = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with("checksum = "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(seal(&unsealed(&text)), text, "seal is what render does");
    let sealed = |t: &str| err(&seal(t));
    assert!(matches!(
        sealed("this is not toml ["),
        LockError::Corrupt { .. }
    ));
    assert!(
        matches!(sealed("nvcc = \"13.0\"\n"), LockError::Corrupt { .. }),
        "no version"
    );
    assert!(matches!(
        sealed("version = 99\nnvcc = \"13.0\"\n"),
        LockError::Version { found: 99, .. }
    ));
    assert!(matches!(
        sealed(&unsealed(&text).replace("source = \"model\"", "source = \"guessed\"")),
        LockError::Corrupt { .. }
    ));
    let dup = unsealed(&text).replace("key = \"k2\"", "key = \"k1\"");
    let e = sealed(&dup);
    assert!(matches!(e, LockError::Duplicate { .. }), "{e}");
    // The same edits without sealing: refused by the checksum first.
    for edited in [
        "version = 99\nnvcc = \"13.0\"\n".to_string(),
        text.replace("key = \"k2\"", "key = \"k1\""),
    ] {
        assert!(
            matches!(err(&edited), LockError::Checksum { .. }),
            "{edited}"
        );
    }
    for e in [
        sealed("x"),
        sealed("version = 2\nnvcc=\"1\""),
        e,
        err("version = 1\n"),
    ] {
        assert!(e.to_string().contains("prism tune"), "says what to do: {e}");
    }
    assert!(
        Lock::read(Path::new("/nonexistent/prism.lock"))
            .expect("no error")
            .is_none()
    );
}

/// The committed locks cover every workload, arch and bucket of their
/// prism.toml with entries that rebuild to the graphs that were tuned.
#[test]
fn committed_locks_are_complete_and_fresh() {
    for toml in ["prism.toml", "tests/fixture/prism.toml"] {
        let spec = load(toml);
        let path = path_for(&Path::new(env!("CARGO_MANIFEST_DIR")).join(toml));
        let lock = Lock::read(&path).expect("readable").expect("committed");
        let mut measured = 0;
        for w in &spec.workloads {
            for (arch, _, r) in locked(&spec, w, Some(&lock), &lock.nvcc) {
                let (_, _, source) = r.unwrap_or_else(|e| panic!("{toml} {}: {e}", w.name));
                if source == Source::Measured {
                    measured += 1;
                    assert_eq!(arch.to_string(), "sm_90a", "measured on an sm_90 GPU");
                }
            }
        }
        assert!(
            orphans(&spec, &lock, &lock.nvcc).is_empty(),
            "{toml}: stale entries"
        );
        let buckets: usize = spec
            .workloads
            .iter()
            .map(|w| prism::tune::buckets::buckets(w).len())
            .sum();
        assert_eq!(measured, buckets, "{toml}: every sm_90a bucket measured");
        // The choice weighs the declared points inside a bucket too, so at
        // the bucket's top alone it may be a little slower than the model's;
        // over all buckets it is not.
        let mut log_sum = 0.0;
        for e in lock.entries.iter().filter(|e| e.source == Source::Measured) {
            let (t, m) = (e.micros.expect("time"), e.model_micros.expect("model time"));
            assert!(
                t > 0.0 && t <= m * 1.25 + 0.1,
                "{toml} {} {}: tuned {t} vs model {m}",
                e.workload,
                e.bucket
            );
            log_sum += (m / t).ln();
        }
        assert!(
            log_sum >= 0.0,
            "{toml}: tuned slower than the model's choice overall"
        );
    }
}

/// The bundled prism.toml built offline embeds exactly the lock's choices.
#[test]
fn offline_build_embeds_the_tuned_kernels() {
    let Some(_) = common::nvcc() else { return };
    let toml = Path::new(env!("CARGO_MANIFEST_DIR")).join("prism.toml");
    let lock = Lock::read(&path_for(&toml))
        .expect("readable")
        .expect("committed");
    let out = temp_dir("offline");
    let built = Build::from_toml(&toml)
        .out_dir(&out)
        .emit_directives(false)
        .env("PRISM_OFFLINE", "1")
        .try_run()
        .expect("builds offline from the lock");
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
    let module = std::fs::read_to_string(&built.module_path).expect("module");
    let mut checked = 0;
    for w in &built.workloads {
        let cu = std::fs::read_to_string(&w.cu_path).expect("cu");
        for c in &w.choices {
            let e = lock
                .entries
                .iter()
                .find(|e| e.workload == w.name && e.bucket == c.bucket && e.arch == c.arch)
                .unwrap_or_else(|| panic!("{} {} {}: no lock entry", w.name, c.bucket, c.arch));
            assert_eq!(c.instance, e.instance, "{} {} {}", w.name, c.bucket, c.arch);
            assert_eq!(c.origin, Origin::Lock(e.source));
            assert!(
                w.variants.contains(&c.instance),
                "{}: variant {} embedded",
                w.name,
                c.instance
            );
            assert!(
                module.contains(&format!("label: \"{}\"", c.instance)),
                "{}: {}",
                w.name,
                c.instance
            );
            checked += 1;
        }
        // One kernel set per variant in the .cu.
        let kernels = cu.matches("extern \"C\" __global__").count();
        assert!(
            kernels >= w.variants.len(),
            "{}: {kernels} kernels for {:?}",
            w.name,
            w.variants
        );
    }
    assert_eq!(checked, lock.entries.len());
    let _ = std::fs::remove_dir_all(&out);
}

const SMALL: &str = r#"
[target]
arch = ["sm_90a", "sm_80"]

[workload.scale]
inputs = { x = "f16[n, d]" }
program = "x * 2 + 1"
dims = { n = "1..=8", d = [64] }
"#;

fn small_build(dir: &Path, offline: bool) -> Result<prism::build::BuildOutput, BuildError> {
    let mut b = Build::from_toml(dir.join("prism.toml"))
        .out_dir(dir.join("out"))
        .emit_directives(false);
    if offline {
        b = b.env("PRISM_OFFLINE", "1");
    }
    b.try_run()
}

/// Without a lock: the cost model's choice and a warning naming the
/// command; offline: an error naming it. With model entries: no warning.
/// A stale entry is reported, a corrupt lock is an error.
#[test]
fn missing_stale_and_corrupt_locks() {
    let Some(nvcc) = common::nvcc() else { return };
    let release = prism::nvcc::version(&nvcc).expect("nvcc --version");
    let dir = temp_dir("small");
    std::fs::write(dir.join("prism.toml"), SMALL).expect("write");

    let online = small_build(&dir, false).expect("builds with the model's choice");
    assert_eq!(online.warnings.len(), 1, "{:?}", online.warnings);
    assert!(
        online.warnings[0].contains("prism tune") && online.warnings[0].contains("untuned"),
        "{}",
        online.warnings[0]
    );
    assert!(
        online.workloads[0]
            .choices
            .iter()
            .all(|c| c.origin == Origin::Model)
    );

    let e = small_build(&dir, true).expect_err("offline without a lock");
    assert!(matches!(e, BuildError::Resolve(_)), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("PRISM_OFFLINE") && msg.contains("prism tune"),
        "{msg}"
    );

    // Model entries for every arch: complete, so offline builds.
    let spec = prism::frontend::load(&dir.join("prism.toml")).expect("valid");
    let w = &spec.workloads[0];
    let fits = |g: &KernelGraph| prism::codegen::cuda::fits(w, g);
    let insts = prism::tune::instances::instances(w, &CrossCheckOptions::default(), &fits)
        .expect("instances");
    let mut lock = Lock::new(&release);
    for a in &spec.target.archs {
        lock.entries
            .extend(model_entries(&spec, w, a, &release, &insts));
    }
    lock.write(&dir.join("prism.lock")).expect("write lock");
    let ok = small_build(&dir, true).expect("offline from a complete lock");
    assert!(ok.warnings.is_empty());
    assert!(
        ok.workloads[0]
            .choices
            .iter()
            .all(|c| c.origin == Origin::Lock(Source::Model))
    );

    // A stale entry: its graph fingerprint no longer matches.
    let mut stale = lock.clone();
    stale.entries[0].graph = "0".repeat(32);
    stale.write(&dir.join("prism.lock")).expect("write");
    let e = small_build(&dir, true).expect_err("offline with a stale entry");
    assert!(e.to_string().contains("stale"), "{e}");
    let warned = small_build(&dir, false).expect("online falls back");
    assert!(
        warned.warnings[0].contains("stale"),
        "{:?}",
        warned.warnings
    );
    let r = resolve(
        &spec,
        w,
        Some(&stale),
        &release,
        false,
        "prism.lock",
        "prism tune",
    )
    .expect("resolves");
    assert_eq!(r.problems().count(), 1);

    // An unknown instance label is stale too.
    let mut unknown = lock.clone();
    unknown.entries[0].instance = "warp-specialized".into();
    let r = resolve(
        &spec,
        w,
        Some(&unknown),
        &release,
        false,
        "prism.lock",
        "prism tune",
    )
    .expect("resolves");
    assert!(
        r.problems()
            .next()
            .and_then(|c| c.problem.clone())
            .unwrap_or_default()
            .contains("unknown instance")
    );

    // A corrupt lock is an error saying what to do.
    std::fs::write(
        dir.join("prism.lock"),
        seal("version = 1\n[[entry]]\nworkload = 3\n"),
    )
    .expect("write");
    let e = small_build(&dir, false).expect_err("corrupt lock");
    assert!(
        matches!(e, BuildError::Lock(LockError::Corrupt { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("prism tune"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shortlist takes one instance per split count, tile and row setting
/// before a second of any, keeps rank order, and fills up with the rest.
#[test]
fn shortlist_spreads_over_parameter_settings() {
    use prism::search::strategies::Strategy;
    use prism::tune::instances::Instance;
    let inst = |s: u32, splits: Option<u32>, tiles: Option<u8>| Instance {
        id: InstanceId {
            strategy: Strategy::Searched(s),
            splits,
            tiles,
            rows: None,
            fused: false,
            cluster: false,
            wgmma: false,
        },
        graph: KernelGraph {
            tensors: Vec::new(),
            kernels: Vec::new(),
        },
    };
    let insts = vec![
        inst(0, None, Some(1)),
        inst(1, None, Some(1)),
        inst(2, None, Some(1)),
        inst(0, None, Some(2)),
        inst(0, Some(4), Some(1)),
        inst(0, None, None),
    ];
    let ranked: Vec<(usize, f64)> = (0..insts.len()).map(|i| (i, 10.0 + i as f64)).collect();
    let pick = |k| -> Vec<usize> {
        shortlist(&insts, ranked.clone(), k)
            .iter()
            .map(|p| p.0)
            .collect()
    };
    assert_eq!(pick(4), vec![0, 3, 4, 5], "one per setting first");
    assert_eq!(pick(5), vec![0, 1, 3, 4, 5], "then the best of the rest");
    assert_eq!(pick(2), vec![0, 3]);
    assert_eq!(pick(10).len(), insts.len());
    // A graph of another kernel count at the same setting is one more
    // schedule: taken before a second graph of the first's count.
    let w = prism::frontend::embedded()
        .expect("bundled")
        .workload("lora")
        .expect("lora")
        .clone();
    let two = prism::ugraph::lower::lower(&w, &Default::default()).expect("lowers");
    let mut more = insts.clone();
    more[2].graph = KernelGraph {
        tensors: two.tensors.clone(),
        kernels: two.kernels[..2].to_vec(),
    };
    let pick_more = shortlist(&more, ranked.clone(), 4)
        .iter()
        .map(|p| p.0)
        .collect::<Vec<_>>();
    assert_eq!(pick_more, vec![0, 2, 3, 4], "two kernels at tiles 1");

    // The lock's earlier choice is timed again, in rank order, when the
    // shortlist left it out; nothing changes when it is there already,
    // unknown, not on this arch (not ranked) or no label at all.
    let short = shortlist(&insts, ranked.clone(), 2);
    let label = insts[5].id.label();
    let with = |list: Vec<(usize, f64)>, ranked: &[(usize, f64)], l: Option<&str>| -> Vec<usize> {
        with_incumbent(&insts, ranked, list, l)
            .iter()
            .map(|p| p.0)
            .collect()
    };
    assert_eq!(with(short.clone(), &ranked, Some(&label)), vec![0, 3, 5]);
    let first = insts[0].id.label();
    assert_eq!(with(short.clone(), &ranked, Some(&first)), vec![0, 3]);
    assert_eq!(
        with(short.clone(), &ranked, Some("sgraph#9 tiles=t1")),
        vec![0, 3]
    );
    assert_eq!(with(short.clone(), &ranked[..5], Some(&label)), vec![0, 3]);
    assert_eq!(with(short, &ranked, None), vec![0, 3]);
}

#[test]
fn spearman_and_choice() {
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
    assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
    assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None, "too few");
    assert_eq!(
        spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
        None,
        "constant"
    );
    let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).expect("rho");
    assert!((r - 0.8).abs() < 1e-12, "{r}");

    let t = |m: Option<f64>| Timed {
        instance: String::new(),
        graph: String::new(),
        model_micros: 0.0,
        micros: m,
        extra_micros: Vec::new(),
        error: m.is_none().then(|| "wrong".to_string()),
    };
    // Within 1% of the fastest: the model's earlier choice stays.
    assert_eq!(
        choose(&[t(Some(10.05)), t(Some(10.0)), t(Some(12.0))]),
        Some(0)
    );
    assert_eq!(choose(&[t(Some(11.0)), t(Some(10.0))]), Some(1));
    // A wrong instance never wins, however fast.
    assert_eq!(choose(&[t(None), t(Some(10.0))]), Some(1));
    assert_eq!(choose(&[t(None)]), None);
    // With declared points inside the bucket, the total of relative times
    // decides: 1.0 + 1.5 against 1.2 + 1.0.
    let tx = |m: f64, x: f64| Timed {
        extra_micros: vec![x],
        ..t(Some(m))
    };
    assert_eq!(choose(&[tx(10.0, 30.0), tx(12.0, 20.0)]), Some(1));
    assert_eq!(choose(&[tx(10.0, 21.0), tx(12.0, 20.0)]), Some(0));
}

#[test]
fn devices_map_to_the_arch_whose_sass_they_load() {
    let archs: Vec<prism::ir::Arch> = ["sm_90a", "sm_80", "sm_86"]
        .iter()
        .map(|a| prism::build::arch::parse_list(a).expect("arch")[0].clone())
        .collect();
    let name = |c| arch_for(&archs, c).map(|a| a.to_string());
    assert_eq!(name(90).as_deref(), Some("sm_90a"));
    assert_eq!(name(89).as_deref(), Some("sm_86"));
    assert_eq!(name(80).as_deref(), Some("sm_80"));
    assert_eq!(
        name(100).as_deref(),
        Some("sm_86"),
        "sm_90a runs on 9.0 only"
    );
    assert_eq!(name(75), None);
}

/// A GPU tuning run of some workloads (`prism tune --workload`) keeps the
/// measured entries and the other workloads' model entries of the old lock
/// (a run of rms_norm alone once dropped every other workload's sm_80
/// entries), and recomputes only the model entries of what it tunes.
#[test]
fn tuning_some_workloads_keeps_the_others_model_entries() {
    let entry = |workload: &str, key: &str, source: Source| Entry {
        workload: workload.into(),
        bucket: "n=1".into(),
        arch: "sm_80".into(),
        key: key.into(),
        instance: "regions".into(),
        graph: "g".into(),
        source,
        micros: None,
        model_instance: None,
        model_micros: None,
        device: None,
    };
    let mut old = Lock::new("13.0");
    old.entries = vec![
        entry("a", "a-model", Source::Model),
        entry("a", "a-measured", Source::Measured),
        entry("b", "b-model", Source::Model),
        entry("b", "b-measured", Source::Measured),
    ];
    let kept = kept_entries(&old, &["a".to_string()]);
    let keys: Vec<&str> = kept.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["a-measured", "b-model", "b-measured"]);
    // Tuning everything: only measured entries are kept.
    let kept = kept_entries(&old, &["a".to_string(), "b".to_string()]);
    assert!(kept.entries.iter().all(|e| e.source == Source::Measured));
}

/// The flash partial's ring of (K, V) tiles: 3 stages (dynamic shared
/// memory, 107,520 bytes at gqa_decode's tiles) for many short splits,
/// 2 for few long ones; the launch plan carries the size the kernel
/// asserts against the device library's formula.
#[test]
fn flash_partials_take_a_deeper_ring_when_split_many_ways() {
    use prism::codegen::cuda::attention::{flash_shared_bytes, flash_stages};
    assert_eq!(
        (
            flash_stages(2),
            flash_stages(4),
            flash_stages(8),
            flash_stages(64)
        ),
        (2, 2, 3, 3)
    );
    assert_eq!(flash_shared_bytes(64, 64, 128, 128, 1, false, 3), 107_520);
    assert_eq!(flash_shared_bytes(16, 64, 128, 128, 4, true, 2), 69_632);
    let spec = load("prism.toml");
    let w = spec.workload("gqa_decode").expect("gqa_decode");
    let fits = |g: &KernelGraph| prism::codegen::cuda::fits(w, g);
    let all = unverified(w, &CrossCheckOptions::default(), &fits).expect("instances");
    let (base, _) = all
        .iter()
        .find(|(i, ok)| *ok && i.id.strategy == prism::search::strategies::Strategy::Flash)
        .expect("a flash graph");
    for (splits, stages) in [(2, 2), (16, 3)] {
        let g = with_splits(&base.graph, splits).expect("a split form");
        let k = prism::codegen::cuda::generate_graph(w, &g).expect("generates");
        let text = format!("FlashPartial<__half, 16, 64, 128, 128, 1, 4, true, {stages}>");
        assert!(k.source.contains(&text), "{}", k.source);
        let launch = &k.variants[0].launches[0];
        assert_eq!(
            launch.shared_bytes,
            flash_shared_bytes(16, 64, 128, 128, 4, true, stages)
        );
        assert!(k.source.contains("extern __shared__"));
    }
}

/// A workload whose flash rows reach past 16 (Prism's attention: decode
/// and prefill) gets instances at 16 and 64 query rows per block for every
/// split count, and at 16 rows with the combine fused; those verify like
/// any other. gqa_decode (4 rows) gets no row choice, and fused instances.
#[test]
fn flash_instances_take_16_or_64_rows_per_block() {
    use prism::tune::instances::with_flash_rows;
    let spec = load("prism.toml");
    let w = spec.workload("attention").expect("attention");
    let fits = |g: &KernelGraph| prism::codegen::cuda::fits(w, g);
    let all = unverified(w, &CrossCheckOptions::default(), &fits).expect("instances");
    let rows16: Vec<&InstanceId> = all
        .iter()
        .map(|(i, _)| &i.id)
        .filter(|id| id.rows == Some(16))
        .collect();
    let splits: Vec<Option<u32>> = rows16.iter().map(|id| id.splits).collect();
    for s in [1, 2, 4, 8, 16, 32, 64] {
        assert!(splits.contains(&Some(s)), "rows=16 splits={s}: {splits:?}");
    }
    // 64 rows is what the lowering instantiates: the same graph as `None`,
    // kept once under the first id. Only 16-row partials fuse the combine.
    assert!(all.iter().all(|(i, _)| i.id.rows != Some(64)));
    assert!(
        all.iter()
            .all(|(i, _)| !i.id.fused || i.id.rows == Some(16))
    );
    assert!(
        all.iter()
            .any(|(i, _)| i.id.fused && i.id.splits == Some(64))
    );
    let (one, _) = all
        .iter()
        .find(|(i, _)| i.id.rows == Some(16) && i.id.splits == Some(16))
        .expect("rows=16 splits=16");
    assert_eq!(
        verify(w, &[&one.graph], &CrossCheckOptions::default()),
        vec![true]
    );
    // The id's rows applied to the same split count's instance as
    // instantiated give the same graph.
    let (base, _) = all
        .iter()
        .find(|(i, _)| {
            i.id.strategy == one.id.strategy && i.id.splits == Some(16) && i.id.rows.is_none()
        })
        .expect("the candidate as instantiated");
    assert_eq!(with_flash_rows(&base.graph, 16).as_ref(), Some(&one.graph));
    let gqa = spec.workload("gqa_decode").expect("gqa_decode");
    let fits = |g: &KernelGraph| prism::codegen::cuda::fits(gqa, g);
    let all = unverified(gqa, &CrossCheckOptions::default(), &fits).expect("instances");
    assert!(all.iter().all(|(i, _)| i.id.rows.is_none()));
    // Its partials take 16 rows: every split count also comes fused.
    for s in [1, 2, 4, 8, 16, 32, 64] {
        assert!(
            all.iter()
                .any(|(i, _)| i.id.fused && i.id.splits == Some(s)),
            "gqa_decode splits={s} fused"
        );
    }
    // A graph without a flash partial has no rows to set.
    let rms = spec.workload("rms_norm").expect("rms_norm");
    let g = prism::ugraph::lower::lower(rms, &Default::default()).expect("lowers");
    assert!(with_flash_rows(&g, 16).is_none());
}

/// Every tile configuration's name says what it is (the lock and the
/// reports name instances by it): `t{bm}x{bn}x{bk}`, then `w{m}{n}{k}`
/// (mma.sync warps) or `g{warpgroups}` (wgmma), `s{stages}`, `k{splits}`
/// under split-K and `c` when the splits are one thread block cluster.
/// The cluster twins are written out by hand beside their workspace forms;
/// this keeps the two in step. Names are unique.
#[test]
fn tile_configuration_names_say_their_parameters() {
    let mut seen = std::collections::BTreeSet::new();
    for c in TILE_CONFIGS {
        let s = c.shape;
        let warps = if s.wgmma {
            format!("g{}", s.bm / 64)
        } else {
            format!("w{}{}{}", s.warps_m, s.warps_n, s.warps_k)
        };
        let mut want = format!("t{}x{}x{}{warps}s{}", s.bm, s.bn, s.bk, s.stages);
        if c.split_k > 1 {
            want.push_str(&format!("k{}", c.split_k));
        }
        if c.cluster {
            assert!(c.split_k > 1, "{}: a cluster of one split", c.name);
            want.push('c');
        }
        if c.tma {
            assert!(s.wgmma, "{}: TMA feeds wgmma tiles", c.name);
            want.push_str("tma");
        }
        assert_eq!(c.name, want);
        assert!(seen.insert(c.name), "{} twice", c.name);
    }
}
