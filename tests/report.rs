//! The report page (`prism report`, and every build's
//! `<target>/prism/report.html`): its structure on the bundled prism.toml
//! (a section, a diagram, a funnel, a landscape and roofline points per
//! workload, checked against prism.lock and prism.tune.json), determinism,
//! escaping, no external resources, error paths, the build hook, and a
//! render in headless Chromium (no console errors, a screenshot that is not
//! blank).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use prism::ir::Spec;
use prism::report::{Made, Options, ReportError, make, tune_data};

use common::TempDir;

fn temp_dir(name: &str) -> TempDir {
    common::temp_dir("report-test", name)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const BENCH: &str = "bench/results/side-by-side-h200-session9-final-prism-bench.json";

struct Bundled {
    spec: Spec,
    made: Made,
    lock: prism::tune::lock::Lock,
    cache: TempDir,
    toml: PathBuf,
}

/// The report of the bundled prism.toml with its prism.lock, prism.tune.json
/// and the committed H200 bench results, made once (it runs the search for
/// the funnels: a fresh cache).
fn bundled() -> &'static Bundled {
    static B: OnceLock<Bundled> = OnceLock::new();
    B.get_or_init(|| {
        let toml = root().join("prism.toml");
        let spec = prism::frontend::load(&toml).expect("the bundled prism.toml loads");
        let cache = temp_dir("bundled-cache");
        let made = make(
            &spec,
            Some(&toml),
            &Options {
                tune: vec![],
                bench: Some(root().join(BENCH)),
                cache: Some(cache.to_path_buf()),
                search: true,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let lock = prism::tune::lock::Lock::read(&root().join("prism.lock"))
            .expect("reads")
            .expect("the bundled lock exists");
        Bundled {
            spec,
            made,
            lock,
            cache,
            toml,
        }
    })
}

/// The HTML of workload `name`'s section.
fn section<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!(
            "<section class=\"card workload\" id=\"wl-{name}\""
        ))
        .unwrap_or_else(|| panic!("no section for {name}"));
    let end = html[start..].find("</section>").expect("section ends") + start;
    &html[start..end]
}

/// Every `data-stage="ID" data-count="N"` of a funnel, in order.
fn stages(html: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for part in html.split("data-stage=\"").skip(1) {
        let id = part.split('"').next().unwrap_or("").to_string();
        let count = part
            .split("data-count=\"")
            .nth(1)
            .and_then(|c| c.split('"').next())
            .and_then(|c| c.parse().ok())
            .expect("a count");
        out.push((id, count));
    }
    out
}

fn sum(stages: &[(String, usize)], id: &str) -> usize {
    stages.iter().filter(|(s, _)| s == id).map(|(_, n)| n).sum()
}

fn one(stages: &[(String, usize)], id: &str) -> usize {
    let v: Vec<usize> = stages
        .iter()
        .filter(|(s, _)| s == id)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(v.len(), 1, "stage {id}: {stages:?}");
    v[0]
}

#[test]
fn the_bundled_report_has_a_section_diagram_funnel_landscape_and_roofline_per_workload() {
    let b = bundled();
    let html = &b.made.html;
    assert_eq!(
        html.matches("<section class=\"card workload\"").count(),
        b.spec.workloads.len()
    );
    // The header: the prism.toml, the device measured, the arch.
    assert!(html.contains("prism report <span>· "), "no header");
    assert!(html.contains("<b>device</b>NVIDIA H200"), "device");
    assert!(html.contains("<b>arch</b>sm_90a"), "arch");
    assert!(
        html.contains("measured by prism bench on NVIDIA H200"),
        "roofs"
    );
    let tune: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("prism.tune.json")).expect("prism.tune.json"),
    )
    .expect("json");
    let tuned = tune["buckets"].as_array().expect("buckets");
    for w in &b.spec.workloads {
        let s = section(html, &w.name);
        assert!(
            s.contains(&format!("href=\"#wl-{}\"", w.name)),
            "{}",
            w.name
        );
        // The diagram: one box per kernel of the graph prism.lock names for
        // the bucket drawn (the one holding the last declared point).
        let locked = prism::tune::resolve::locked(&b.spec, w, Some(&b.lock), &b.lock.nvcc);
        let bs = prism::tune::buckets::buckets(w);
        let rep = prism::tune::buckets::bucket_of(w, &prism::search::strategies::cost_point(w))
            .expect("in a bucket");
        let graph_of = |bi: usize| {
            locked
                .iter()
                .find(|(a, i, _)| a.to_string() == "sm_90a" && *i == bi)
                .and_then(|(_, _, r)| r.as_ref().ok())
                .map(|(_, g, _)| g.clone())
                .unwrap_or_else(|| panic!("{} bucket {bi} is locked", w.name))
        };
        assert_eq!(s.matches("<svg class=\"diagram\"").count(), 1, "{}", w.name);
        assert_eq!(
            s.matches("<g class=\"kernel\"").count(),
            graph_of(rep).kernels.len(),
            "{}: boxes",
            w.name
        );
        // The funnel adds up: instances = pruned + valid single kernels;
        // valid = single + cut graphs - duplicates; candidates = kept +
        // lowering strategies; verified <= proven, cross-checked.
        let st = stages(s);
        let instances = one(&st, "instances");
        let single = one(&st, "single-valid");
        assert_eq!(instances, sum(&st, "pruned") + single, "{}: {st:?}", w.name);
        assert_eq!(
            one(&st, "valid"),
            single + one(&st, "cut-graphs") - sum(&st, "cut-duplicates"),
            "{}",
            w.name
        );
        assert_eq!(one(&st, "kept"), one(&st, "valid").min(3), "{}", w.name);
        assert_eq!(
            one(&st, "candidates"),
            one(&st, "kept") + one(&st, "lowering"),
            "{}",
            w.name
        );
        let verified = one(&st, "verified");
        assert!(verified <= one(&st, "proven") && verified <= one(&st, "cross-checked"));
        assert!(verified >= 1, "{}: nothing verified", w.name);
        assert_eq!(one(&st, "chosen"), 1, "{}", w.name);
        assert!(one(&st, "terms") > 0 && one(&st, "loop-maps") > 0);
        // The same numbers as the search's own counts.
        let sec = b
            .made
            .report
            .workloads
            .iter()
            .find(|x| x.name == w.name)
            .expect("section data");
        let f = sec.funnel.as_ref().expect("a funnel");
        let e = f.enumeration.as_ref().expect("an enumeration");
        assert_eq!(e.instances, instances);
        assert_eq!(
            e.instance_pruned.iter().map(|(_, n)| n).sum::<usize>() + e.single_valid,
            e.instances
        );
        // The landscape: one point per timed candidate of prism.tune.json.
        let timed: usize = tuned
            .iter()
            .filter(|t| t["workload"] == w.name.as_str() && t["arch"] == "sm_90a")
            .map(|t| t["timed"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(timed > 0, "{}: no tune data", w.name);
        assert_eq!(s.matches("<g class=\"cand").count(), timed, "{}", w.name);
        assert_eq!(
            s.matches("<g class=\"panel\"").count(),
            bs.len(),
            "{}: a panel per bucket",
            w.name
        );
        // The roofline: a point per kernel of every bucket's locked graph
        // in the bandwidth view; those with tensor flops on the roofline.
        let kernels: usize = (0..bs.len()).map(|bi| graph_of(bi).kernels.len()).sum();
        assert_eq!(
            s.matches("<circle class=\"bp").count(),
            kernels,
            "{}",
            w.name
        );
        assert_eq!(sec.roofline.len(), kernels);
        assert_eq!(
            s.matches("<circle class=\"rp").count(),
            sec.roofline.iter().filter(|p| p.flops > 0).count()
        );
        // Every time is the lock's measurement split among the kernels.
        assert!(sec.roofline.iter().all(|p| p.measured), "{}", w.name);
    }
    // Every bucket's tune data chose what prism.lock holds.
    assert_eq!(b.made.report.agreement(), (119, 119));
}

#[test]
fn the_bundled_report_links_nothing_outside_the_page() {
    let html = &bundled().made.html;
    assert!(!html.contains("http://"), "http:// in the page");
    assert!(!html.contains("https://"), "https:// in the page");
    assert!(!html.contains("src="), "src= in the page");
    assert!(!html.contains("@import"));
    assert!(!html.contains("<script"), "no script is needed");
    for part in html.split("href=\"").skip(1) {
        assert!(
            part.starts_with('#'),
            "a link out of the page: {}",
            &part[..40]
        );
    }
    for part in html.split("url(").skip(1) {
        assert!(
            part.starts_with('#'),
            "a url out of the page: {}",
            &part[..40]
        );
    }
    assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
}

#[test]
fn the_report_is_byte_identical_across_runs() {
    let b = bundled();
    // The first run searched (an empty cache); this one reads the funnels
    // it cached.
    let again = make(
        &b.spec,
        Some(&b.toml),
        &Options {
            tune: vec![],
            bench: Some(root().join(BENCH)),
            cache: Some(b.cache.to_path_buf()),
            search: false,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again.report.workloads.iter().all(|w| w.funnel.is_ok()),
        "the funnels were not cached"
    );
    assert!(again.html == b.made.html, "the report differs between runs");
}

/// The committed prism.tune.json is the twenty committed H200 tuning runs
/// prism.lock was made from, converted (`prism report --tune ... --save-tune`).
#[test]
fn the_committed_tune_file_is_the_committed_runs_converted() {
    let spec = prism::frontend::load(&root().join("prism.toml")).expect("loads");
    let files: Vec<tune_data::Loaded> = [
        "tune-h200-session9.json",
        "tune-h200-attention-stages.json",
        "tune-h200-topk64-lora-gated.json",
        "fused-combine-h200-session11-tune.json",
        "flash-merge-h200-session11-tune.json",
        "flash-trim-h200-session11-tune.json",
        "flash-rescale-h200-session11-tune.json",
        "tune-h200-pair-session12.json",
        "tune-h200-wgmma-session13.json",
        "tune-h200-lora-fused-splitk-session14.json",
        // Before the session-14 gated_mlp run: its gated_mlp buckets are
        // the lock's (the session-16 run, at top-k 24, did not time them).
        "tune-h200-splitk-cluster-session16.json",
        "tune-h200-gated-pair-as-one-session14.json",
        "tune-h200-cluster16-session15.json",
        "tune-h200-deep-pipelines-session16.json",
        "tune-h200-gated-tma-session17.json",
        "tune-h200-gated-tma-splitk-session18.json",
        "tune-h200-lora-tma-session18.json",
        "tune-h200-lora-staged-session18.json",
        "tune-h200-flash-wgmma-session19-attention.json",
        "tune-h200-flash-wgmma-session19-qk_norm_attention.json",
    ]
    .iter()
    .map(|f| tune_data::read(&root().join("bench/results").join(f)).expect("reads"))
    .collect();
    let mut warnings = Vec::new();
    let data = tune_data::matched(&spec, &files, &mut warnings);
    assert!(warnings.is_empty(), "{warnings:?}");
    let text = tune_data::render(&tune_data::to_file(&spec, &data, "13.0"));
    let committed = std::fs::read_to_string(root().join("prism.tune.json")).expect("committed");
    assert!(
        text == committed,
        "prism.tune.json is not the runs converted"
    );
    // And it reads back as itself.
    let back = tune_data::parse(&committed, "prism.tune.json").expect("parses");
    let data = tune_data::matched(&spec, &[back], &mut warnings);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        tune_data::render(&tune_data::to_file(&spec, &data, "13.0")),
        committed
    );
}

const SMALL: &str = r#"
[target]
arch = ["sm_90a", "sm_80"]

[workload.scale_add]
description = "x * 2 + y <script>alert('pwned')</script> & more"
inputs = { x = "f16[n, d]", y = "f16[n, d]" }
program = "x * 2.0 + y"
dims = { n = "1..=4", d = [64] }
"#;

fn small(name: &str) -> (TempDir, PathBuf, Spec) {
    let dir = temp_dir(name);
    let toml = dir.join("prism.toml");
    std::fs::write(&toml, SMALL).expect("write");
    let spec = prism::frontend::load(&toml).expect("loads");
    (dir, toml, spec)
}

fn options(cache: &Path) -> Options {
    Options {
        tune: vec![],
        bench: None,
        cache: Some(cache.to_path_buf()),
        search: true,
    }
}

#[test]
fn names_and_descriptions_are_escaped() {
    let (dir, toml, spec) = small("escape");
    let made =
        make(&spec, Some(&toml), &options(&dir.join("cache"))).unwrap_or_else(|e| panic!("{e}"));
    let html = &made.html;
    assert!(!html.contains("<script"), "unescaped markup");
    assert!(
        html.contains("x * 2 + y &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; more"),
        "the description is not escaped as expected"
    );
    // Without a lock or tune data: the cost model's choice, spec roofs.
    assert!(html.contains("cost model (untuned)"));
    assert!(html.contains("spec: the hardware description of sm_90a"));
    assert!(html.contains("No tune data for this workload"));
    assert_eq!(
        section(html, "scale_add")
            .matches("<g class=\"kernel\"")
            .count(),
        1
    );
}

#[test]
fn unreadable_or_malformed_tune_and_bench_files_are_errors_with_a_hint() {
    let (dir, toml, spec) = small("bad-files");
    let run = |tune: Vec<PathBuf>, bench: Option<PathBuf>| {
        make(
            &spec,
            Some(&toml),
            &Options {
                tune,
                bench,
                cache: None,
                search: false,
            },
        )
        .err()
        .expect("an error")
    };
    let missing = dir.join("nope.json");
    let e = run(vec![missing.clone()], None);
    assert!(matches!(e, ReportError::ReadTune { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("nope.json") && text.contains("hint: "),
        "{text}"
    );

    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "this is not json").expect("write");
    let e = run(vec![garbage.clone()], None);
    assert!(matches!(e, ReportError::MalformedTune { .. }), "{e:?}");
    assert!(e.to_string().contains("hint: "), "{e}");

    let empty = dir.join("empty.json");
    std::fs::write(&empty, "{\"toml\": \"prism.toml\"}").expect("write");
    let e = run(vec![empty], None);
    assert!(e.to_string().contains("neither `results`"), "{e}");

    let other = dir.join("other.json");
    std::fs::write(
        &other,
        "{\"format\": \"prism.tune\", \"version\": 9, \"buckets\": []}",
    )
    .expect("write");
    let e = run(vec![other], None);
    assert!(e.to_string().contains("format version 9"), "{e}");

    let e = run(vec![], Some(missing));
    assert!(matches!(e, ReportError::ReadBench { .. }), "{e:?}");
    assert!(e.to_string().contains("prism bench --json"), "{e}");
    let e = run(vec![], Some(garbage));
    assert!(matches!(e, ReportError::MalformedBench { .. }), "{e:?}");
    let zero = dir.join("zero.json");
    std::fs::write(
        &zero,
        "{\"device\": \"X\", \"arch\": \"sm_90a\", \"copy_bytes_per_s\": 0, \"mma_flops_per_s\": 1e15}",
    )
    .expect("write");
    let e = run(vec![], Some(zero));
    assert!(e.to_string().contains("copy_bytes_per_s"), "{e}");
}

#[test]
fn tune_data_of_another_prism_toml_is_ignored_with_a_warning() {
    let (dir, toml, spec) = small("foreign-tune");
    let made = make(
        &spec,
        Some(&toml),
        &Options {
            tune: vec![root().join("prism.tune.json")],
            ..options(&dir.join("cache"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let w = made
        .warnings
        .iter()
        .find(|w| w.contains("none of its 119 buckets belongs to"))
        .unwrap_or_else(|| panic!("no warning in {:?}", made.warnings));
    assert!(w.contains("another prism.toml"), "{w}");
    assert!(made.tune.is_empty());
    assert!(
        made.html.contains("none of its 119 buckets belongs to"),
        "the page shows it"
    );
    assert_eq!(made.html.matches("<g class=\"cand").count(), 0);

    // Partly matching data: the bucket of this prism.toml is used, the
    // other is reported; a bucket whose key is of another program is not
    // used.
    let spec_w = &spec.workloads[0];
    let bucket = &prism::tune::buckets::buckets(spec_w)[0];
    let arch = &spec.target.archs[0];
    let key = prism::tune::lock::key(spec_w, bucket, arch, "13.0");
    let file = |key: &str| {
        format!(
            r#"{{"format": "prism.tune", "version": 1, "nvcc": "13.0", "buckets": [
  {{"workload": "scale_add", "bucket": "{}", "arch": "sm_90a", "key": "{key}", "chosen": 1,
    "timed": [{{"instance": "a", "model_micros": 5.0, "micros": 9.0}}, {{"instance": "b", "model_micros": 6.0, "micros": 7.5}}, {{"instance": "c", "model_micros": 7.0, "micros": null, "error": "wrong"}}]}},
  {{"workload": "rms_norm", "bucket": "n=8 d=1024", "arch": "sm_90a", "chosen": null, "timed": []}}
]}}"#,
            bucket.label()
        )
    };
    let path = dir.join("partial.json");
    std::fs::write(&path, file(&key)).expect("write");
    let made = make(
        &spec,
        Some(&toml),
        &Options {
            tune: vec![path.clone()],
            ..options(&dir.join("cache"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        made.warnings
            .iter()
            .any(|w| w.contains("1 of its 2 buckets do not belong") && w.contains("rms_norm")),
        "{:?}",
        made.warnings
    );
    let s = section(&made.html, "scale_add");
    assert_eq!(s.matches("<g class=\"cand").count(), 3);
    assert_eq!(s.matches("<g class=\"cand failed\"").count(), 1);
    assert_eq!(s.matches("<g class=\"cand chosen\"").count(), 1);
    assert_eq!(s.matches("<g class=\"cand model-pick\"").count(), 1);

    std::fs::write(&path, file("0123456789abcdef0123456789abcdef")).expect("write");
    let made = make(
        &spec,
        Some(&toml),
        &Options {
            tune: vec![path],
            ..options(&dir.join("cache"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(made.tune.is_empty());
    assert!(
        made.warnings
            .iter()
            .any(|w| w.contains("tuned for another program")),
        "{:?}",
        made.warnings
    );
}

#[test]
fn prism_tune_keeps_its_tune_file_next_to_the_lock() {
    use prism::tune::tuner::{BucketResult, Timed};
    let (dir, _toml, spec) = small("tune-file");
    let w = &spec.workloads[0];
    let bs = prism::tune::buckets::buckets(w);
    let result = |bi: usize, micros: f64| BucketResult {
        workload: w.name.clone(),
        bucket: bs[bi].label(),
        arch: "sm_90a".into(),
        device: "NVIDIA H200".into(),
        point: bs[bi].tuning_point(),
        extra_points: vec![],
        instances: 2,
        timed: vec![
            Timed {
                instance: "regions".into(),
                graph: "g0".into(),
                model_micros: 4.123456,
                micros: Some(micros),
                extra_micros: vec![],
                error: None,
            },
            Timed {
                instance: "direct".into(),
                graph: "g1".into(),
                model_micros: 8.0,
                micros: None,
                extra_micros: vec![],
                error: Some("launch failed".into()),
            },
        ],
        chosen: Some(0),
        spearman: None,
        reference_micros: None,
        roofline_micros: 1.0,
    };
    let path = dir.join(tune_data::TUNE_FILE);
    let notes = tune_data::update_after_tune(&spec, &path, &[result(0, 7.0)], "13.0")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(notes.is_empty());
    let first = std::fs::read_to_string(&path).expect("written");
    assert!(
        first.contains("\"model_micros\":4.123,"),
        "rounded: {first}"
    );
    // A later run of another bucket keeps the first; a re-run replaces.
    tune_data::update_after_tune(&spec, &path, &[result(1, 6.0)], "13.0").expect("writes");
    tune_data::update_after_tune(&spec, &path, &[result(0, 5.0)], "13.0").expect("writes");
    let back = tune_data::read(&path).expect("reads");
    let mut warnings = Vec::new();
    let data = tune_data::matched(&spec, &[back], &mut warnings);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(data.len(), 2);
    let b0 = data
        .get(&w.name, &bs[0].label(), "sm_90a")
        .expect("bucket 0");
    assert_eq!(b0.timed[0].micros, Some(5.0));
    // Atomic: no temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(&*dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    // A damaged file is replaced, with a note.
    std::fs::write(&path, "{").expect("write");
    let notes =
        tune_data::update_after_tune(&spec, &path, &[result(0, 5.0)], "13.0").expect("writes");
    assert!(notes.iter().any(|n| n.contains("is replaced")), "{notes:?}");
}

fn tag(target: &Path) {
    std::fs::create_dir_all(target).expect("mkdir");
    std::fs::write(
        target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .expect("tag");
}

#[test]
fn a_build_writes_the_report_under_the_target_folder_and_shows_cached_funnels() {
    let (dir, toml, spec) = small("build");
    let target = dir.join("target");
    tag(&target);
    let out = target.join("debug").join("build").join("x").join("out");
    let build = || {
        prism::Build::from_toml(&toml)
            .out_dir(&out)
            .emit_directives(false)
            .env("DOCS_RS", "1")
            .env_remove("CUDA_COMPUTE_CAP")
            .try_run()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let first = build();
    let path = target.join("prism").join("report.html");
    assert_eq!(first.report.as_deref(), Some(path.as_path()));
    let html = std::fs::read_to_string(&path).expect("the report");
    assert!(html.contains("id=\"wl-scale_add\""));
    // A docs build has the launch plan only, and no funnel until `prism
    // report` records one in the search cache.
    assert!(html.contains("the launch plan of"), "docs: launch plan");
    assert!(html.contains("run prism report once"), "no funnel yet");
    make(
        &spec,
        Some(&toml),
        &options(&target.join("prism").join("search")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    build();
    let html = std::fs::read_to_string(&path).expect("the report");
    assert!(
        html.contains("data-stage=\"instances\""),
        "the cached funnel"
    );
    // Another module name gets its own page.
    let other = prism::Build::from_toml(&toml)
        .out_dir(&out)
        .module_name("other_kernels")
        .emit_directives(false)
        .env("DOCS_RS", "1")
        .try_run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        other.report,
        Some(target.join("prism").join("report-other_kernels.html"))
    );
}

#[test]
fn a_report_that_cannot_be_written_is_a_build_warning() {
    let (dir, toml, _) = small("build-unwritable");
    let target = dir.join("target");
    tag(&target);
    // A folder where the page should be.
    std::fs::create_dir_all(target.join("prism").join("report.html").join("x")).expect("mkdir");
    let out = prism::Build::from_toml(&toml)
        .out_dir(target.join("out"))
        .emit_directives(false)
        .env("DOCS_RS", "1")
        .try_run()
        .unwrap_or_else(|e| panic!("the build failed: {e}"));
    assert_eq!(out.report, None);
    let w = out
        .warnings
        .iter()
        .find(|w| w.contains("report page was not written"))
        .unwrap_or_else(|| panic!("no warning in {:?}", out.warnings));
    assert!(w.contains("hint: "), "{w}");
    assert!(out.module_path.is_file());
}

/// A real build (nvcc, no GPU, no lock): the cost model's choices, and the
/// report draws their μGraphs with the build's resolution.
#[test]
fn a_build_with_nvcc_draws_the_resolved_graphs() {
    let Some(nvcc) = common::nvcc() else { return };
    let (dir, toml, _) = small("build-nvcc");
    let target = dir.join("target");
    tag(&target);
    let out = prism::Build::from_toml(&toml)
        .out_dir(target.join("out"))
        .arch("sm_90a")
        .emit_directives(false)
        .env("PRISM_NVCC", &nvcc)
        .env("PRISM_OFFLINE", "0")
        .env_remove("DOCS_RS")
        .env_remove("CUDA_COMPUTE_CAP")
        .try_run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.nvcc.is_some(), "nvcc ran");
    assert!(
        out.workloads[0]
            .fatbin_path
            .as_ref()
            .is_some_and(|p| p.is_file()),
        "a fatbin"
    );
    let html = std::fs::read_to_string(out.report.expect("a report")).expect("read");
    let s = section(&html, "scale_add");
    assert!(s.contains("cost model (untuned)"), "model choices");
    assert!(
        s.contains("block kernel"),
        "the μGraph, not the launch plan"
    );
    let choices = &out.workloads[0].choices;
    assert!(!choices.is_empty());
    assert!(s.matches("<circle class=\"bp").count() >= choices.len());
    for c in choices {
        assert!(
            s.contains(&format!("data-bucket=\"{}\"", c.bucket)),
            "no roofline point for bucket {}",
            c.bucket
        );
        assert!(
            s.contains(&format!("<code>{}</code>", c.instance)),
            "{}",
            c.instance
        );
    }
}

#[test]
fn the_cli_writes_the_page_and_prints_its_path() {
    let (dir, toml, _) = small("cli");
    let out = dir.join("page.html");
    let saved = dir.join("saved.json");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_prism"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .current_dir(&*dir)
            .output()
            .expect("prism runs")
    };
    let o = run(&[
        "report",
        toml.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--tune",
        root().join("prism.tune.json").to_str().expect("utf-8"),
        "--save-tune",
        saved.to_str().expect("utf-8"),
    ]);
    let stderr = common::text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(common::text(&o.stdout).trim(), out.display().to_string());
    assert!(
        stderr.contains("warning: tune data prism.tune.json: none of its"),
        "{stderr}"
    );
    assert!(
        std::fs::read_to_string(&out)
            .expect("page")
            .contains("scale_add")
    );
    assert!(dir.join("target/prism/search").is_dir(), "funnels cached");
    assert!(saved.is_file());
    // The default page goes under $CARGO_TARGET_DIR.
    let o = run(&["report", "prism.toml"]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    assert!(dir.join("target/prism/report.html").is_file());
    // A bad --tune is an error with a hint; so is a bad --bench.
    let o = run(&["report", "prism.toml", "--tune", "missing.json"]);
    assert_eq!(o.status.code(), Some(1));
    let e = common::text(&o.stderr);
    assert!(
        e.contains("error: cannot read tune data missing.json") && e.contains("hint:"),
        "{e}"
    );
    let o = run(&["report", "prism.toml", "--bench", "prism.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(common::text(&o.stderr).contains("not a `prism bench --json` report"));
}

// ---------------------------------------------------------------- browser

/// Chromium, or `None` (with a notice) when it is missing and not required
/// (`PRISM_REQUIRE_CHROMIUM=1`, as CI sets, makes that a failure).
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PRISM_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("PRISM_REQUIRE_CHROMIUM").is_some_and(|v| v != "0") {
        panic!(
            "PRISM_REQUIRE_CHROMIUM is set but {} is missing (apt-get install chromium)",
            path.display()
        );
    }
    eprintln!(
        "skipping: no {} (apt-get install chromium; set PRISM_REQUIRE_CHROMIUM=1 to make this a failure)",
        path.display()
    );
    None
}

struct Rendered {
    png: PathBuf,
    /// Console messages and uncaught exceptions Chromium logged.
    console: Vec<String>,
}

/// Render `page` in headless Chromium into a 1280×2000 screenshot,
/// collecting what the page logged to its console.
fn render(chromium: &Path, page: &Path, dir: &Path) -> Rendered {
    let profile = dir.join("profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).expect("profile dir");
    let png = dir.join("shot.png");
    let _ = std::fs::remove_file(&png);
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let log = common::text(&o.stderr);
    assert!(
        png.is_file(),
        "chromium wrote no screenshot (exit {:?}):\n{log}",
        o.status.code()
    );
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("CONSOLE(") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    Rendered { png, console }
}

/// The screenshot's pixels: (width, height, distinct colours, share of
/// pixels that differ from the most common colour).
fn inspect(png: &Path) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png).expect("open png"),
    ));
    let mut reader = decoder.read_info().expect("a png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| &p[..channels.min(3)])
        .collect();
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let background = counts.values().copied().max().unwrap_or(0);
    let other = 1.0 - background as f64 / pixels.len().max(1) as f64;
    (info.width, info.height, counts.len(), other)
}

#[test]
fn the_page_renders_in_chromium_without_console_errors() {
    let Some(chromium) = chromium() else { return };
    let dir = temp_dir("browser");
    // The harness first: a broken page must be caught, a blank one must
    // look blank.
    let broken = dir.join("broken.html");
    std::fs::write(
        &broken,
        "<!DOCTYPE html><html><body><p>broken</p><script>console.error('deliberate'); notAFunction();</script></body></html>",
    )
    .expect("write");
    let r = render(&chromium, &broken, &dir);
    assert!(
        r.console.iter().any(|l| l.contains("deliberate")),
        "console.error not caught: {:?}",
        r.console
    );
    assert!(
        r.console.iter().any(|l| l.contains("Uncaught")),
        "an exception not caught: {:?}",
        r.console
    );
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").expect("write");
    let r = render(&chromium, &blank, &dir);
    assert!(r.console.is_empty(), "{:?}", r.console);
    let (_, _, colours, other) = inspect(&r.png);
    assert!(colours <= 2 && other < 0.001, "a blank page looks blank");
    // The bundled report.
    let page = dir.join("report.html");
    std::fs::write(&page, &bundled().made.html).expect("write");
    let r = render(&chromium, &page, &dir);
    assert!(r.console.is_empty(), "console messages: {:#?}", r.console);
    let (w, h, colours, other) = inspect(&r.png);
    assert_eq!((w, h), (1280, 2000));
    assert!(colours >= 16, "only {colours} colours");
    assert!(
        other > 0.05,
        "only {:.1}% of the pixels are not background",
        other * 100.0
    );
    if let Ok(keep) = std::env::var("PRISM_REPORT_SCREENSHOT") {
        std::fs::copy(&r.png, keep).expect("copy the screenshot");
    }
}
