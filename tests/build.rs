//! `prism::build::Build` as a downstream build.rs uses it, without a GPU.
//!
//! The environment is injected through `Build::env` / `env_remove`, never by
//! mutating the process environment. Tests that run nvcc skip with a notice
//! when it is missing, unless PRISM_REQUIRE_NVCC=1 (CI), where they fail.
//!
//! Until `codegen::generate` handles these workloads, the builds here use a
//! small hand-written generator (`elementwise_codegen`): the plumbing under
//! test (files, nvcc, the Rust module) does not depend on what the kernels
//! compute.

mod common;

use std::path::{Path, PathBuf};

use prism::build::{Build, BuildError, cargo_error_lines};
use prism::codegen::{
    ArchDispatch, CodegenError, DispatchEntry, GridFactor, Launch, Variant, WorkloadKernels,
};
use prism::ir::{DType, DimExpr, Spec, Target, Workload};
use prism::ugraph::{GlobalTensor, TensorId, TensorRole};

const TOML: &str = r#"
[target]
arch = ["sm_80"]

[workload.scale_add]
description = "x * 2 + y, elementwise"
inputs = { x = "f16[n, d]", y = "f16[n, d]" }
program = "x * 2 + y"
dims = { n = "1..=100", d = [4, 8] }

[workload.twice]
inputs = { a = "f32[m]" }
program = """
double = a + a
negated = -a
"""
dims = { m = "1..=4096" }
"#;

use common::TempDir;

fn temp_dir(name: &str) -> TempDir {
    common::temp_dir("build-test", name)
}

/// A temp dir holding `prism.toml` with `text`; returns (dir, toml path).
fn project(name: &str, text: &str) -> (TempDir, PathBuf) {
    let dir = temp_dir(name);
    let toml = dir.join("prism.toml");
    std::fs::write(&toml, text).expect("write prism.toml");
    (dir, toml)
}

fn cuda_type(d: DType) -> &'static str {
    match d {
        DType::F16 => "__half",
        DType::BF16 => "__nv_bfloat16",
        DType::F32 => "float",
    }
}

/// [`elementwise_codegen`]'s kernels for every workload of `spec`.
fn elementwise_kernels(spec: &Spec) -> Vec<WorkloadKernels> {
    spec.workloads
        .iter()
        .map(|w| elementwise_codegen(w, &Target::default()).expect("codegen"))
        .collect()
}

/// A stand-in code generator for workloads whose inputs and outputs all have
/// one shape: kernel 0 writes the sum of the inputs to an f32 intermediate,
/// kernel 1 copies it to every output. (Not the program's meaning: this
/// exercises the build, not the math.)
fn elementwise_codegen(w: &Workload, _t: &Target) -> Result<WorkloadKernels, CodegenError> {
    let shape = w.graph.inputs[0].shape.clone();
    let dims: Vec<String> = w.dims.iter().map(|d| d.name.clone()).collect();
    let len = shape.iter().fold(DimExpr::constant(1), |a, d| a.mul(d));
    let mut tensors = prism::ugraph::workload_tensors(w);
    tensors.push(GlobalTensor {
        name: "acc".into(),
        shape: shape.clone(),
        dtype: DType::F32,
        role: TensorRole::Intermediate,
    });
    let acc = tensors.len() - 1;
    let n_in = w.graph.inputs.len();
    let dim_params: Vec<String> = dims.iter().map(|d| format!("int64_t {d}")).collect();
    let len_c = len.render(|s| s.to_string());
    let mut src = String::from("#include <prism/common.cuh>\n\n");
    let mut params: Vec<String> = (0..n_in)
        .map(|i| format!("const {}* in{i}", cuda_type(tensors[i].dtype)))
        .collect();
    params.push("float* acc".into());
    params.extend(dim_params.iter().cloned());
    let sum: Vec<String> = (0..n_in)
        .map(|i| format!("prism::to_float(in{i}[i])"))
        .collect();
    src.push_str(&format!(
        "extern \"C\" __global__ void {name}_sum({p}) {{\n  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < {len_c}) acc[i] = {s};\n}}\n\n",
        name = w.name,
        p = params.join(", "),
        s = sum.join(" + "),
    ));
    let outs: Vec<usize> = (n_in..acc).collect();
    let mut params: Vec<String> = vec!["const float* acc".into()];
    params.extend(
        outs.iter()
            .map(|&t| format!("{}* out{t}", cuda_type(tensors[t].dtype))),
    );
    params.extend(dim_params.iter().cloned());
    let stores: Vec<String> = outs
        .iter()
        .map(|&t| {
            format!(
                "out{t}[i] = prism::from_float<{}>(acc[i]);",
                cuda_type(tensors[t].dtype)
            )
        })
        .collect();
    src.push_str(&format!(
        "extern \"C\" __global__ void {name}_copy({p}) {{\n  int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;\n  if (i < {len_c}) {{ {s} }}\n}}\n",
        name = w.name,
        p = params.join(", "),
        s = stores.join(" "),
    ));
    let grid = |tile| {
        [
            vec![GridFactor {
                extent: len.clone(),
                tile,
            }],
            vec![],
            vec![],
        ]
    };
    let mut sum_tensors: Vec<TensorId> = (0..n_in).map(TensorId).collect();
    sum_tensors.push(TensorId(acc));
    let mut copy_tensors = vec![TensorId(acc)];
    copy_tensors.extend(outs.iter().map(|&t| TensorId(t)));
    Ok(WorkloadKernels {
        workload: w.name.clone(),
        dims,
        variants: vec![Variant {
            label: "elementwise".into(),
            tensors,
            launches: vec![
                Launch {
                    symbol: format!("{}_sum", w.name),
                    grid: grid(256),
                    threads: 256,
                    shared_bytes: 0,
                    tensors: sum_tensors,
                    split_k: None,
                    tensor_maps: Vec::new(),
                },
                Launch {
                    symbol: format!("{}_copy", w.name),
                    grid: grid(128),
                    threads: 128,
                    shared_bytes: 0,
                    tensors: copy_tensors,
                    split_k: None,
                    tensor_maps: Vec::new(),
                },
            ],
        }],
        dispatch: Vec::new(),
        source: src,
    })
}

/// A build of `toml` into `out` with the stand-in generator and the real
/// nvcc, isolated from the process environment.
fn build(toml: &Path, out: &Path, nvcc: &Path) -> Build {
    Build::from_toml(toml)
        .out_dir(out)
        .emit_directives(false)
        .env("PRISM_NVCC", nvcc)
        .env_remove("CUDA_COMPUTE_CAP")
        .env_remove("DOCS_RS")
        .env_remove("NUM_JOBS")
        .codegen_with(elementwise_codegen)
}

fn err_text(r: Result<prism::build::BuildOutput, BuildError>) -> (BuildError, String) {
    let e = r.expect_err("the build fails");
    let text = e.to_string();
    (e, text)
}

#[test]
fn builds_the_module_and_fatbins() {
    let Some(nvcc) = common::nvcc() else { return };
    let (dir, toml) = project("ok", TOML);
    let out_dir = dir.join("out");
    let b = build(&toml, &out_dir, &nvcc)
        .module_name("my_kernels")
        .env("NUM_JOBS", "2");
    let out = b.try_run().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.module_path, out_dir.join("my_kernels.rs"));
    assert_eq!(out.module_name, "my_kernels");
    assert!(!out.docs_stub);
    assert_eq!(out.nvcc.as_deref(), Some(nvcc.as_path()));
    assert_eq!(
        out.archs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["sm_80"]
    );
    let names: Vec<&str> = out.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["scale_add", "twice"]);
    for w in &out.workloads {
        assert_eq!(w.kernels, 2);
        assert_eq!(
            w.cu_path,
            out_dir
                .join("prism/my_kernels")
                .join(format!("{}.cu", w.name))
        );
        assert!(w.cu_path.is_file());
        let fatbin = w.fatbin_path.as_ref().expect("a fatbin");
        let bytes = std::fs::read(fatbin).expect("fatbin written");
        assert!(bytes.len() > 1000, "{} bytes", bytes.len());
    }
    assert_eq!(out.workloads[0].type_name, "ScaleAdd");
    assert!(out_dir.join("prism/include/prism/common.cuh").is_file());

    let text = std::fs::read_to_string(&out.module_path).expect("module written");
    for needle in [
        "pub mod my_kernels {",
        "pub struct ScaleAdd {",
        "pub struct ScaleAddDims {",
        "pub n: usize,",
        "pub struct Twice {",
        "x: &impl InputBuffer<f16>,",
        "double: &mut impl OutputBuffer<f32>,",
        "negated: &mut impl OutputBuffer<f32>,",
        "pub const ARCHS: &[&str] = &[\"sm_80\"];",
        "pub const PTX_ARCH: &str = \"compute_80\";",
        "pub fn load_dyn(",
        "pub fn workload_names()",
        "\"scale_add\" => Ok(Box::new(ScaleAdd::load(ctx)?)),",
        "DimValues::Range { lo: 1, hi: 100 }",
        "DimValues::List(&[4, 8])",
        "// SAFETY:",
        "x \\* 2 + y, elementwise",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let fatbin = out.workloads[0].fatbin_path.as_ref().expect("fatbin");
    let include = format!("include_bytes!({:?})", fatbin.to_str().expect("utf-8"));
    assert!(text.contains(&include), "missing {include}");

    // A second run writes the same module.
    let again = b.try_run().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, out);
    let text2 = std::fs::read_to_string(&again.module_path).expect("module");
    assert_eq!(text, text2, "the module is deterministic");
}

#[test]
fn arch_overrides_replace_the_target() {
    let Some(nvcc) = common::nvcc() else { return };
    let (dir, toml) = project("arch", TOML);
    // CUDA_COMPUTE_CAP=9.0 means sm_90a.
    let out = build(&toml, &dir.join("a"), &nvcc)
        .env("CUDA_COMPUTE_CAP", "9.0")
        .try_run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.archs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["sm_90a"]
    );
    let text = std::fs::read_to_string(&out.module_path).expect("module");
    assert!(text.contains("pub const PTX_ARCH: &str = \"compute_90a\";"));
    // Build::arch wins over CUDA_COMPUTE_CAP, and can be repeated.
    let out = build(&toml, &dir.join("b"), &nvcc)
        .env("CUDA_COMPUTE_CAP", "9.0")
        .arch("sm_80")
        .arch("86")
        .try_run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        out.archs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["sm_80", "sm_86"]
    );
}

#[test]
fn missing_prism_toml() {
    let dir = temp_dir("missing");
    let toml = dir.join("nope/prism.toml");
    let (e, text) = err_text(
        Build::from_toml(&toml)
            .out_dir(dir.join("out"))
            .emit_directives(false)
            .try_run(),
    );
    assert!(matches!(e, BuildError::Read { .. }), "{e:?}");
    assert!(text.contains("nope/prism.toml"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[test]
fn invalid_prism_toml_shows_the_diagnostic() {
    let (dir, toml) = project(
        "invalid",
        "[workload.w]\ninputs = { x = \"f16[n]\" }\nprogram = \"frobnicate(x)\"\ndims = { n = \"1..=8\" }\n",
    );
    let (e, text) = err_text(
        Build::from_toml(&toml)
            .out_dir(dir.join("out"))
            .emit_directives(false)
            .try_run(),
    );
    assert!(matches!(e, BuildError::Invalid { .. }), "{e:?}");
    assert!(text.contains("unknown-op"), "{text}");
    assert!(text.contains("frobnicate"), "{text}");
    assert!(text.contains("prism.toml:3:"), "file:line:col in {text}");
    assert!(!text.contains('\u{1b}'), "no colors: {text:?}");
    // As cargo directives: one per line, all prefixed.
    let lines = cargo_error_lines(&e);
    assert!(lines.len() > 3);
    assert!(
        lines[0].starts_with("cargo::error=prism[invalid-toml]: error[unknown-op]: "),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("cargo::error=") && !l.contains('\n'))
    );
}

#[test]
fn nvcc_not_found() {
    let (dir, toml) = project("no-nvcc", TOML);
    let missing = dir.join("no/such/nvcc");
    let (e, text) = err_text(
        Build::from_toml(&toml)
            .out_dir(dir.join("out"))
            .emit_directives(false)
            .env("PRISM_NVCC", &missing)
            .env_remove("DOCS_RS")
            .codegen_with(elementwise_codegen)
            .try_run(),
    );
    assert!(matches!(e, BuildError::Nvcc(_)), "{e:?}");
    assert!(text.contains("$PRISM_NVCC"), "{text}");
    assert!(text.contains("no/such/nvcc"), "{text}");
    assert!(text.contains("hint:"), "{text}");
}

#[cfg(unix)]
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

#[cfg(unix)]
#[test]
fn nvcc_failure_reports_stderr_and_the_cu_path() {
    let (dir, toml) = project("nvcc-fails", TOML);
    let fake = script(
        &dir,
        "nvcc",
        "echo 'fake-nvcc: error: this kernel is broken' >&2\nexit 1",
    );
    let (e, text) = err_text(build(&toml, &dir.join("out"), &fake).try_run());
    let BuildError::Compile(failures) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(failures.len(), 2, "every workload is reported");
    for f in failures {
        assert!(f.cu_path.is_file());
        assert!(
            text.contains(&f.cu_path.display().to_string()),
            "{text} names {}",
            f.cu_path.display()
        );
    }
    assert!(
        text.contains("fake-nvcc: error: this kernel is broken"),
        "{text}"
    );
    assert!(text.contains("workload `scale_add`"), "{text}");
    assert!(
        !dir.join("out/prism_kernels.rs").exists(),
        "no module on failure"
    );
}

#[test]
fn bad_cuda_compute_cap() {
    let (dir, toml) = project("bad-cap", TOML);
    for (value, needle) in [
        ("ninety", "is not a compute capability"),
        ("70", "not supported by CUDA 13"),
        ("sm_90x", "is not a GPU architecture"),
    ] {
        let (e, text) = err_text(
            Build::from_toml(&toml)
                .out_dir(dir.join("out"))
                .emit_directives(false)
                .env("CUDA_COMPUTE_CAP", value)
                .codegen_with(elementwise_codegen)
                .try_run(),
        );
        assert!(matches!(e, BuildError::Arch { .. }), "{e:?}");
        assert!(text.contains("CUDA_COMPUTE_CAP"), "{text}");
        assert!(text.contains(value), "{text}");
        assert!(text.contains(needle), "{value}: {text}");
    }
    let (_, text) = err_text(
        Build::from_toml(&toml)
            .out_dir(dir.join("out"))
            .emit_directives(false)
            .arch("sm_9")
            .try_run(),
    );
    assert!(text.contains("Build::arch"), "{text}");
}

#[cfg(unix)]
#[test]
fn docs_rs_builds_stubs_without_nvcc() {
    let (dir, toml) = project("docs", TOML);
    let marker = dir.join("nvcc-was-called");
    let fake = script(
        &dir,
        "nvcc",
        &format!("touch '{}'\nexit 1", marker.display()),
    );
    let out_dir = dir.join("out");
    let b = build(&toml, &out_dir, &fake).env("DOCS_RS", "1");
    let out = b.try_run().unwrap_or_else(|e| panic!("{e}"));
    assert!(!marker.exists(), "nvcc must not run for docs");
    assert!(out.docs_stub);
    assert_eq!(out.nvcc, None);
    assert!(out.workloads.iter().all(|w| w.fatbin_path.is_none()));
    let text = std::fs::read_to_string(&out.module_path).expect("module");
    assert!(!text.contains("include_bytes!"), "no fatbins in stubs");
    assert!(text.contains("pub const DOCS_STUB: bool = true;"));
    assert!(text.contains("const FATBIN: Option<&'static [u8]> = None;"));
    // The same API as a real build.
    for needle in [
        "pub struct ScaleAdd {",
        "pub fn load(ctx: &Arc<CudaContext>) -> Result<Self, Error> {",
        "pub fn launch(",
        "pub fn launch_dyn(",
        "BuiltForDocs",
    ] {
        assert!(text.contains(needle), "missing {needle:?}");
    }
    // Deterministic.
    let again = b.try_run().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read_to_string(&again.module_path).expect("module"),
        text
    );
}

#[test]
fn the_emitted_module_is_deterministic() {
    let spec = prism::frontend::parse("prism.toml", TOML).expect("parses");
    let kernels = elementwise_kernels(&spec);
    let fatbins = prism::codegen::rust::Fatbins::Embedded(
        spec.workloads
            .iter()
            .map(|w| PathBuf::from(format!("/out/{}.fatbin", w.name)))
            .collect(),
    );
    let a = prism::codegen::rust::emit(&spec, "k", &kernels, &fatbins).expect("emit");
    let b = prism::codegen::rust::emit(&spec, "k", &kernels, &fatbins).expect("emit");
    assert_eq!(a, b);
    assert!(a.contains("include_bytes!(\"/out/scale_add.fatbin\")"));
    // Kernel parameters: pointers in `Launch::tensors` order, then the dims.
    assert!(a.contains("args: &[Slot::Input(0), Slot::Input(1), Slot::Scratch(0)],"));
    assert!(a.contains("args: &[Slot::Scratch(0), Slot::Output(0), Slot::Output(1)],"));
    // n*d with dims in the order n, d.
    assert!(a.contains("grid: [&[(Poly(&[(1, &[1, 0])]), 256)], &[], &[]],"));
    assert!(a.contains("grid: [&[(Poly(&[(1, &[0])]), 128)], &[], &[]],"));
}

/// A crate whose cudarc links libcuda (`dynamic-linking`, as candle-core's
/// `cuda` feature turns on) has no `is_culib_present`: the module for it
/// checks nothing, and differs from the default one in that alone.
#[test]
fn a_linked_driver_needs_no_run_time_check() {
    use prism::codegen::rust::{DriverLinking, EmitOptions, Fatbins, emit, emit_with};
    let spec = prism::frontend::parse("prism.toml", TOML).expect("parses");
    let kernels = elementwise_kernels(&spec);
    let loaded = emit(&spec, "k", &kernels, &Fatbins::DocsStub).expect("emit");
    let linked = emit_with(
        &spec,
        "k",
        &kernels,
        &Fatbins::DocsStub,
        &EmitOptions {
            driver_linking: DriverLinking::Linked,
        },
    )
    .expect("emit");
    assert_eq!(loaded.matches("is_culib_present").count(), 1);
    assert!(!linked.contains("is_culib_present"), "{linked}");
    // The module without `fn check_driver`'s doc and body, and that body.
    let split = |text: &str| -> (Vec<String>, Vec<String>) {
        let lines: Vec<&str> = text.lines().collect();
        let f = lines
            .iter()
            .position(|l| l.contains("fn check_driver()"))
            .expect("check_driver");
        let indent = lines[f].len() - lines[f].trim_start().len();
        let mut first = f;
        while lines[first - 1].trim_start().starts_with("///") {
            first -= 1;
        }
        let last = f + lines[f..]
            .iter()
            .position(|l| l.trim() == "}" && l.len() - l.trim_start().len() == indent)
            .expect("end of check_driver");
        let rest = lines[..first]
            .iter()
            .chain(&lines[last + 1..])
            .map(|l| l.to_string())
            .collect();
        let body = lines[f + 1..last]
            .iter()
            .map(|l| l.trim().to_string())
            .collect();
        (rest, body)
    };
    let (loaded_rest, _) = split(&loaded);
    let (linked_rest, linked_body) = split(&linked);
    assert_eq!(linked_body, ["Ok(())"]);
    assert_eq!(loaded_rest, linked_rest);
}

/// Every file a build wrote under `out`, by path relative to it, with the
/// absolute out path replaced so two builds in two folders compare.
fn written_files(out: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, out: &Path, files: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out, files);
            } else {
                let name = p
                    .strip_prefix(out)
                    .expect("under out")
                    .display()
                    .to_string();
                let text = std::fs::read(&p).expect("read");
                let text =
                    String::from_utf8_lossy(&text).replace(&out.display().to_string(), "<out>");
                files.insert(name, text.into_bytes());
            }
        }
    }
    let mut files = std::collections::BTreeMap::new();
    walk(out, out, &mut files);
    files
}

/// The real search and code generators on the bundled prism.toml, twice
/// without the search cache and twice through it (filled, then read): every
/// file written (the module and each workload's .cu) is byte-identical. DOCS_RS
/// skips nvcc; everything before it runs as in a build.
#[test]
fn search_and_code_generation_are_byte_identical_across_runs() {
    let (dir, toml) = project("determinism", prism::frontend::EMBEDDED_PRISM_TOML);
    let run = |out: &Path| {
        Build::from_toml(&toml)
            .out_dir(out)
            .emit_directives(false)
            .env("DOCS_RS", "1")
            .env_remove("CUDA_COMPUTE_CAP")
            .try_run()
            .unwrap_or_else(|e| panic!("{e}"));
        written_files(out)
    };
    // No CACHEDIR.TAG above these: no search cache, and the report page
    // is written under OUT_DIR (compared on its own below: under a target
    // folder it goes to <target>/prism).
    let report = "prism/report.html".to_string();
    let mut first = run(&dir.join("a"));
    let mut second = run(&dir.join("b"));
    let first_report = first.remove(&report).expect("a report page");
    assert_eq!(second.remove(&report), Some(first_report.clone()));
    assert!(
        first.keys().any(|k| k.ends_with("gated_mlp.cu")),
        "{:?}",
        first.keys()
    );
    assert!(
        first.keys().any(|k| k.ends_with(".rs")),
        "{:?}",
        first.keys()
    );
    assert_eq!(first, second, "two runs without the cache differ");
    // Under a target folder: the search cache is filled, then used.
    let target = dir.join("target");
    std::fs::create_dir_all(&target).expect("mkdir");
    std::fs::write(
        target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .expect("tag");
    let filled = run(&target.join("c"));
    assert!(
        std::fs::read_dir(target.join("prism").join("search")).is_ok_and(|d| d.count() >= 9),
        "the search cache was not filled"
    );
    let in_target = || std::fs::read(target.join("prism").join("report.html")).expect("report");
    assert_eq!(
        in_target(),
        first_report,
        "the report of a run filling the cache differs"
    );
    let cached = run(&target.join("d"));
    assert_eq!(
        in_target(),
        first_report,
        "the report of a run from the cache differs"
    );
    assert_eq!(first, filled, "a run filling the cache differs");
    assert_eq!(first, cached, "a run from the cache differs");
}

#[test]
fn emit_rejects_inconsistent_plans_and_bad_names() {
    use prism::codegen::rust::{EmitError, Fatbins, emit};
    let spec = prism::frontend::parse("prism.toml", TOML).expect("parses");
    let good = elementwise_kernels(&spec);
    assert!(matches!(
        emit(&spec, "fn", &good, &Fatbins::DocsStub),
        Err(EmitError::ModuleName(_))
    ));
    let mut bad = good.clone();
    bad[0].variants[0].launches[1].tensors.retain(|t| t.0 != 2); // no kernel writes output 0
    assert!(matches!(
        emit(&spec, "k", &bad, &Fatbins::DocsStub),
        Err(EmitError::Plan { .. })
    ));
    let mut bad = good.clone();
    bad[1].variants[0].tensors[0].dtype = DType::F16; // input dtype differs from prism.toml
    let e = emit(&spec, "k", &bad, &Fatbins::DocsStub).expect_err("rejected");
    assert!(e.to_string().contains("input 0"), "{e}");
    let mut bad = good.clone();
    bad[0].dims.pop();
    assert!(emit(&spec, "k", &bad, &Fatbins::DocsStub).is_err());
    // A tensor map of a tensor its kernel does not take.
    let mut bad = good.clone();
    let count = bad[0].variants[0].tensors.len();
    let l = &mut bad[0].variants[0].launches[0];
    let other = (0..count)
        .map(prism::ugraph::TensorId)
        .find(|t| !l.tensors.contains(t))
        .expect("a tensor the first kernel does not take");
    l.tensor_maps.push(prism::codegen::TensorMapPlan {
        tensor: other,
        rows: prism::ir::DimExpr::constant(1),
        cols: prism::ir::DimExpr::constant(64),
        box_rows: 64,
        box_cols: 64,
    });
    let e = emit(&spec, "k", &bad, &Fatbins::DocsStub).expect_err("rejected");
    assert!(e.to_string().contains("not one of its arguments"), "{e}");
    assert!(matches!(
        emit(
            &spec,
            "k",
            &good,
            &Fatbins::Embedded(vec![PathBuf::from("relative.fatbin"); 2])
        ),
        Err(EmitError::FatbinPath(_))
    ));
    // Workload names that collide as Rust types.
    let toml = "[workload.a_b]\ninputs = { x = \"f16[n]\" }\nprogram = \"-x\"\ndims = { n = 4 }\n\
                [workload.aB]\ninputs = { x = \"f16[n]\" }\nprogram = \"-x\"\ndims = { n = 4 }\n";
    let spec = prism::frontend::parse("p.toml", toml).expect("parses");
    let k = elementwise_kernels(&spec);
    let e = emit(&spec, "k", &k, &Fatbins::DocsStub).expect_err("collision");
    assert!(e.to_string().contains("`AB`"), "{e}");
}

#[test]
fn keywords_become_usable_identifiers() {
    let toml = "[workload.error]\ninputs = { type = \"f16[self]\", stream = \"f16[self]\" }\n\
                program = \"match = type + stream\"\ndims = { self = \"1..=9\" }\n";
    let spec = prism::frontend::parse("p.toml", toml).expect("parses");
    let target = Target::default();
    let k = vec![elementwise_codegen(&spec.workloads[0], &target).expect("codegen")];
    let e = prism::codegen::rust::emit(&spec, "k", &k, &prism::codegen::rust::Fatbins::DocsStub)
        .expect_err("`Error` is reserved");
    assert!(e.to_string().contains("`Error`"), "{e}");
    let toml = toml.replace("workload.error", "workload.errs");
    let spec = prism::frontend::parse("p.toml", &toml).expect("parses");
    let k = vec![elementwise_codegen(&spec.workloads[0], &target).expect("codegen")];
    let text = prism::codegen::rust::emit(&spec, "k", &k, &prism::codegen::rust::Fatbins::DocsStub)
        .expect("emit");
    for needle in [
        "pub self_: usize,",
        "r#type: &impl InputBuffer<f16>,",
        "stream_: &impl InputBuffer<f16>,",
        "r#match: &mut impl OutputBuffer<f16>,",
        "rt::dims_from_usize(Self::INFO, &[dims.self_])",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn directives_cover_the_toml_and_every_env_var() {
    let b = Build::from_toml("prism.toml");
    let d = b.directives();
    assert_eq!(d[0], "cargo::rerun-if-changed=prism.toml");
    for v in [
        "PRISM_NVCC",
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "PATH",
        "CUDA_COMPUTE_CAP",
        "NUM_JOBS",
        "DOCS_RS",
    ] {
        assert!(
            d.contains(&format!("cargo::rerun-if-env-changed={v}")),
            "{v} in {d:?}"
        );
    }
    for v in prism::build::ENV_VARS.iter().filter(|v| **v != "OUT_DIR") {
        assert!(d.contains(&format!("cargo::rerun-if-env-changed={v}")));
    }
}

#[test]
fn no_out_dir() {
    let (_dir, toml) = project("no-out", TOML);
    let (e, text) = err_text(
        Build::from_toml(&toml)
            .env_remove("OUT_DIR")
            .emit_directives(false)
            .try_run(),
    );
    assert!(matches!(e, BuildError::NoOutDir), "{e:?}");
    assert!(text.contains("build script"), "{text}");
}

#[test]
fn an_unwritable_search_cache_is_a_warning_not_a_failure() {
    // The search cache lives in <target>/prism/search, the target folder being
    // the nearest ancestor of OUT_DIR holding CACHEDIR.TAG. A file where its
    // folder should be makes it unwritable, even for root.
    let (dir, toml) = project("cache", TOML);
    let target = dir.join("target");
    std::fs::create_dir_all(target.join("build")).expect("mkdir");
    std::fs::write(
        target.join("CACHEDIR.TAG"),
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .expect("tag");
    std::fs::write(target.join("prism"), "not a folder").expect("file");
    let out = build(&toml, &target.join("build").join("out"), Path::new("nvcc"))
        .env("DOCS_RS", "1")
        .try_run()
        .unwrap_or_else(|e| panic!("{e}"));
    let warning = out
        .warnings
        .iter()
        .find(|w| w.contains("search cache"))
        .unwrap_or_else(|| panic!("no warning in {:?}", out.warnings));
    assert!(
        warning.contains(&target.join("prism").join("search").display().to_string()),
        "{warning}"
    );
    assert!(warning.contains("writable directory"), "{warning}");
    // With the obstacle gone, the cache is used and nothing is said.
    std::fs::remove_file(target.join("prism")).expect("rm");
    let out = build(&toml, &target.join("build").join("out"), Path::new("nvcc"))
        .env("DOCS_RS", "1")
        .try_run()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    assert!(target.join("prism").join("search").is_dir());
}

#[test]
fn an_unwritable_out_dir_is_an_error_with_a_hint() {
    let (dir, toml) = project("out-file", TOML);
    let out = dir.join("out");
    std::fs::write(&out, "a file where OUT_DIR should be").expect("file");
    let (e, text) = err_text(
        build(&toml, &out, Path::new("nvcc"))
            .env("DOCS_RS", "1")
            .try_run(),
    );
    assert!(matches!(e, BuildError::Io { .. }), "{e:?}");
    assert!(text.contains(&out.display().to_string()), "{text}");
    assert!(
        text.contains("hint: check that the output directory is writable"),
        "{text}"
    );
}

#[test]
fn bad_num_jobs() {
    let (dir, toml) = project("jobs", TOML);
    let fake = dir.join("nvcc");
    std::fs::write(&fake, "").expect("write");
    let (e, text) = err_text(
        build(&toml, &dir.join("out"), &fake)
            .env("NUM_JOBS", "lots")
            .try_run(),
    );
    assert!(
        matches!(
            e,
            BuildError::Env {
                var: "NUM_JOBS",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(text.contains("lots"), "{text}");
}

/// The real code generator, once it handles a workload: the same build
/// with `codegen::generate`. While it reports that it is being written,
/// this prints a notice instead.
#[test]
fn builds_with_the_real_code_generator() {
    let Some(nvcc) = common::nvcc() else { return };
    let (dir, toml) = project("real", TOML);
    let r = Build::from_toml(&toml)
        .out_dir(dir.join("out"))
        .emit_directives(false)
        .env("PRISM_NVCC", &nvcc)
        .env_remove("CUDA_COMPUTE_CAP")
        .env_remove("DOCS_RS")
        .try_run();
    match r {
        Err(BuildError::Codegen(errors))
            if errors
                .iter()
                .all(|e| e.to_string().contains("being written")) =>
        {
            eprintln!("skipping: code generation is being written");
        }
        r => {
            let out = r.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.workloads.len(), 2);
            assert!(out.module_path.is_file());
        }
    }
}

/// The bundled spec reduced to `rms_norm`, and its plan with two variants
/// (the direct lowering and the fused one) and a dispatch table per
/// architecture.
fn two_variants() -> (Spec, WorkloadKernels) {
    use prism::ugraph::lower::{LowerOptions, lower};
    let mut spec = prism::frontend::embedded().expect("bundled prism.toml");
    spec.workloads.retain(|w| w.name == "rms_norm");
    let w = &spec.workloads[0];
    let direct = lower(w, &LowerOptions::direct()).expect("direct lowering");
    let fused = lower(w, &LowerOptions::default()).expect("fused lowering");
    // Dims in kernel order: n (8, 16), d (1024, 2048, 4096).
    let dispatch = vec![
        ArchDispatch {
            arch: "sm_90a".into(),
            capability: 90,
            entries: vec![
                DispatchEntry {
                    ranges: vec![(8, 8), (1024, 2048)],
                    variant: 1,
                },
                DispatchEntry {
                    ranges: vec![(16, 16), (1024, 4096)],
                    variant: 0,
                },
            ],
        },
        ArchDispatch {
            arch: "sm_80".into(),
            capability: 80,
            entries: vec![DispatchEntry {
                ranges: vec![(8, 16), (4096, 4096)],
                variant: 1,
            }],
        },
    ];
    let k = prism::codegen::cuda::generate_variants(
        w,
        &[("direct".into(), direct), ("fused".into(), fused)],
        dispatch,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (spec, k)
}

#[test]
fn emits_every_variant_and_the_dispatch_tables() {
    use prism::codegen::rust::{Fatbins, emit};
    let (spec, k) = two_variants();
    assert_eq!(k.variants.len(), 2);
    assert_ne!(
        k.variants[0].launches.len(),
        k.variants[1].launches.len(),
        "the two lowerings differ"
    );
    let fatbins = Fatbins::Embedded(vec![PathBuf::from("/out/rms_norm.fatbin")]);
    let text = emit(&spec, "k", std::slice::from_ref(&k), &fatbins).expect("emit");
    assert_eq!(
        emit(&spec, "k", std::slice::from_ref(&k), &fatbins).expect("emit"),
        text,
        "deterministic"
    );
    // Both variants' kernels, each symbol in the INFO of its variant.
    for v in &k.variants {
        for l in &v.launches {
            let needle = format!("symbol: {:?},", l.symbol);
            assert_eq!(text.matches(&needle).count(), 1, "{needle}");
        }
    }
    let direct = text.find("label: \"direct\",").expect("variant 0");
    let fused = text.find("label: \"fused\",").expect("variant 1");
    assert!(direct < fused, "variants in plan order");
    let first = format!("symbol: {:?},", k.variants[0].launches[0].symbol);
    let last = format!(
        "symbol: {:?},",
        k.variants[1].launches.last().expect("kernels").symbol
    );
    let (first, last) = (text.find(&first).unwrap(), text.find(&last).unwrap());
    assert!(direct < first && first < fused && fused < last);
    for needle in [
        "pub variants: &'static [VariantInfo],",
        "pub dispatch: &'static [DispatchInfo],",
        "pub struct VariantInfo {",
        "pub struct DispatchInfo {",
        "pub struct BucketInfo {",
        "arch: \"sm_90a\",",
        "capability: 90,",
        "BucketInfo { ranges: &[(8, 8), (1024, 2048)], variant: 1 },",
        "BucketInfo { ranges: &[(16, 16), (1024, 4096)], variant: 0 },",
        "arch: \"sm_80\",",
        "capability: 80,",
        "BucketInfo { ranges: &[(8, 16), (4096, 4096)], variant: 1 },",
        "pub fn variant_for(&self, dims: RmsNormDims) -> &'static str {",
        "pub fn variant_info_for(&self, dims: RmsNormDims) -> &'static VariantInfo {",
        "self.loaded.variant_usize(&[dims.n, dims.d])",
        "fn variant_info(&self, dims: &[(&str, i64)]) -> Result<&'static VariantInfo, Error> {",
        "fn variant_label(&self, dims: &[(&str, i64)]) -> Result<&'static str, Error> {",
        "pub fn dispatch_for(&self, capability: u32) -> Option<&'static DispatchInfo> {",
        "functions: Vec<Vec<CudaFunction>>,",
        // The docs list the variants and the buckets.
        "/// 0. `direct`: ",
        "/// 1. `fused`: ",
        "/// - `sm_90a` (capability 90): `n` in `8..=8`, `d` in `1024..=2048` → variant 1; ",
        "several tuned variants",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // Intermediates and kernels are per variant, no longer per workload.
    let info = &text[text
        .find("pub struct WorkloadInfo {")
        .expect("WorkloadInfo")..];
    let info = &info[..info.find("\n    }\n").expect("its end")];
    assert!(
        !info.contains("pub intermediates") && !info.contains("pub kernels"),
        "{info}"
    );
    // One variant and no table: no variant list in the docs, an empty table.
    let mut one = k.clone();
    one.variants.truncate(1);
    one.dispatch.clear();
    let text = emit(&spec, "k", &[one], &fatbins).expect("emit");
    assert!(text.contains("dispatch: &[],"));
    assert!(text.contains("/// Kernels, in launch order: "));
    assert!(!text.contains("/// 0. `direct`"));
}

#[test]
fn emit_rejects_inconsistent_variants_and_dispatch() {
    use prism::codegen::rust::{EmitError, Fatbins, emit};
    let (spec, good) = two_variants();
    let check = |k: WorkloadKernels, want: &str| {
        let e = emit(&spec, "k", &[k], &Fatbins::DocsStub).expect_err(want);
        assert!(matches!(e, EmitError::Plan { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(want), "{text:?} does not say {want:?}");
    };
    // The inputs differ between variants.
    let mut bad = good.clone();
    let x = bad.variants[1]
        .tensors
        .iter_mut()
        .find(|t| t.role == TensorRole::Input(0))
        .expect("input 0");
    x.dtype = DType::F32;
    check(
        bad,
        "variant 1 (`fused`): input 0 is `x: f32[n, d]` in the plan but `x: f16[n, d]` in the workload",
    );
    // The outputs too.
    let mut bad = good.clone();
    let out = bad.variants[1]
        .tensors
        .iter_mut()
        .find(|t| t.role == TensorRole::Output(0))
        .expect("output 0");
    out.name = "y".into();
    check(bad, "variant 1 (`fused`): output 0 is `y: ");
    // A launch's tensor out of range in a later variant.
    let mut bad = good.clone();
    let n = bad.variants[1].tensors.len();
    bad.variants[1].launches[0].tensors.push(TensorId(n));
    check(
        bad,
        &format!(
            "variant 1 (`fused`): kernel `{}` uses tensor {n} of {n}",
            good.variants[1].launches[0].symbol
        ),
    );
    // A variant that does not write an output.
    let mut bad = good.clone();
    let o = bad.variants[0]
        .tensors
        .iter()
        .position(|t| t.role == TensorRole::Output(0))
        .expect("output 0");
    for l in &mut bad.variants[0].launches {
        l.tensors.retain(|t| t.0 != o);
    }
    check(bad, "variant 0 (`direct`): no kernel writes tensor `out`");
    // No variants.
    let mut bad = good.clone();
    bad.variants.clear();
    check(bad, "no variants");
    // Dispatch: an unknown variant, a range per dim, no empty range.
    let mut bad = good.clone();
    bad.dispatch[0].entries[1].variant = 2;
    check(
        bad,
        "dispatch entry 1 of `sm_90a` names variant 2, but there are 2",
    );
    let mut bad = good.clone();
    bad.dispatch[1].entries[0].ranges.pop();
    check(bad, "dispatch entry 0 of `sm_80` has 1 ranges for 2 dims");
    let mut bad = good.clone();
    bad.dispatch[1].entries[0].ranges.push((1, 1));
    check(bad, "dispatch entry 0 of `sm_80` has 3 ranges for 2 dims");
    let mut bad = good.clone();
    bad.dispatch[0].entries[0].ranges[1] = (2048, 1024);
    check(
        bad,
        "dispatch entry 0 of `sm_90a` has the empty range 2048..=1024 for dim `d`",
    );
    // The good plan emits.
    assert!(emit(&spec, "k", &[good], &Fatbins::DocsStub).is_ok());
}

/// One error of every kind a build can fail with.
fn every_build_error() -> Vec<BuildError> {
    use prism::build::CompileFailure;
    use prism::codegen::rust::EmitError;
    use prism::nvcc::NvccError;
    use prism::tune::lock::{ChecksumProblem, LockError};
    use prism::tune::resolve::ResolveError;
    let io = || std::io::Error::other("boom");
    let p = || PathBuf::from("/x/prism.lock");
    vec![
        BuildError::NoOutDir,
        BuildError::Read {
            path: p(),
            source: io(),
        },
        BuildError::Invalid {
            path: "prism.toml".into(),
            rendered: "error[unknown-op]: ...\n".into(),
        },
        BuildError::Arch {
            origin: "CUDA_COMPUTE_CAP",
            value: "ninety".into(),
            message: "no".into(),
        },
        BuildError::Env {
            var: "NUM_JOBS",
            value: "lots".into(),
            message: "not a number".into(),
        },
        BuildError::Codegen(vec![CodegenError::Unsupported {
            workload: "w".into(),
            message: "m".into(),
        }]),
        BuildError::Emit(EmitError::NoArch),
        BuildError::Nvcc(NvccError::NotFound),
        BuildError::Nvcc(NvccError::BadEnv {
            var: "NVCC",
            path: p(),
        }),
        BuildError::Nvcc(NvccError::Spawn {
            nvcc: p(),
            source: io(),
        }),
        BuildError::Compile(vec![CompileFailure {
            workload: "w".into(),
            cu_path: p(),
            error: NvccError::Failed {
                file: p(),
                stderr: "error: x".into(),
            },
        }]),
        BuildError::Io {
            path: p(),
            source: io(),
        },
        BuildError::ThreadPool {
            threads: 4,
            message: "m".into(),
        },
        BuildError::Lock(LockError::Read {
            path: p(),
            source: io(),
        }),
        BuildError::Lock(LockError::Corrupt {
            path: p(),
            message: "m".into(),
        }),
        BuildError::Lock(LockError::Checksum {
            path: p(),
            problem: ChecksumProblem::NotUtf8,
        }),
        BuildError::Lock(LockError::Version {
            path: p(),
            found: 9,
        }),
        BuildError::Lock(LockError::Duplicate {
            path: p(),
            key: "k".into(),
            workload: "w".into(),
        }),
        BuildError::Lock(LockError::Write {
            path: p(),
            source: io(),
        }),
        BuildError::Resolve(vec![ResolveError::Offline {
            workload: "w".into(),
            count: 1,
            first: "n=8".into(),
            lock: "prism.lock".into(),
            command: "prism tune prism.toml".into(),
        }]),
        BuildError::Resolve(vec![ResolveError::Instances {
            workload: "w".into(),
            message: "m".into(),
        }]),
        BuildError::Tune(prism::tune::tuner::TuneError::Workload {
            workload: "w".into(),
            message: "m".into(),
        }),
    ]
}

#[test]
fn every_build_error_has_a_stable_code_and_a_hint() {
    let codes = BuildError::CODES;
    let mut unique = codes.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), codes.len(), "duplicate codes");
    let mut seen = std::collections::BTreeSet::new();
    for e in every_build_error() {
        let code = e.code();
        assert!(codes.contains(&code), "{code} is not in BuildError::CODES");
        seen.insert(code);
        let text = e.to_string();
        assert!(text.contains("hint: "), "{code}: no hint in {text}");
        let lines = cargo_error_lines(&e);
        assert!(
            lines[0].starts_with(&format!("cargo::error=prism[{code}]: ")),
            "{code}: {lines:?}"
        );
    }
    let missed: Vec<_> = codes.iter().filter(|c| !seen.contains(*c)).collect();
    assert!(
        missed.is_empty(),
        "codes no error produces here: {missed:?}"
    );
}

/// The README's error list names every build error code, every diagnostic
/// code of the front end (each has a case in tests/malformed.rs) and every
/// error of the generated runtime.
#[test]
fn the_error_list_names_every_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list =
        std::fs::read_to_string(root.join("docs").join("ERRORS.md")).expect("docs/ERRORS.md");
    for code in BuildError::CODES {
        assert!(
            list.contains(&format!("`{code}`")),
            "docs/ERRORS.md lacks build error `{code}`"
        );
    }
    let malformed = std::fs::read_to_string(root.join("tests").join("malformed.rs")).expect("read");
    // The code of each case: the line after the case's input, a kebab-case literal.
    let mut front = std::collections::BTreeSet::new();
    for line in malformed.lines() {
        let t = line.trim();
        if let Some(code) = t.strip_prefix('"').and_then(|r| r.strip_suffix("\","))
            && code.contains('-')
            && code.starts_with(|c: char| c.is_ascii_lowercase())
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
        {
            front.insert(code.to_string());
        }
    }
    assert!(
        front.len() >= 40,
        "found only {} front-end codes",
        front.len()
    );
    for code in &front {
        assert!(
            list.contains(&format!("`{code}`")),
            "docs/ERRORS.md lacks diagnostic `{code}`"
        );
    }
    let runtime = prism::codegen::rust::RUNTIME_ERROR_NAMES;
    for name in runtime {
        assert!(
            list.contains(&format!("`{name}`")),
            "docs/ERRORS.md lacks runtime error `{name}`"
        );
    }
}
