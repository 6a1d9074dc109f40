//! The `prism` binary, run as a user would.

mod common;

use common::{prism, text};
use std::path::PathBuf;
use std::process::Command;

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, contents).expect("write temp file");
    p
}

#[test]
fn check_accepts_the_bundled_file() {
    let out = prism(&["check", "prism.toml"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for w in [
        "rms_norm",
        "rmsnorm_mlp",
        "swiglu",
        "attention",
        "qk_norm_attention",
        "gqa_decode",
        "gated_mlp",
        "lora",
        "ntrans",
    ] {
        assert!(
            stdout.contains(&format!("workload {w}\n")),
            "missing {w} in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("matmul(%7, %1)"),
        "ops are listed:\n{stdout}"
    );
    assert!(
        stdout.contains("f16[b, h*s, h*kv]"),
        "inferred shapes are listed:\n{stdout}"
    );
}

#[test]
fn check_without_a_path_uses_the_local_or_bundled_file() {
    let out = prism(&["check"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("prism.toml: 9 workloads"));
}

#[test]
fn check_json_is_machine_readable() {
    let out = prism(&["check", "--json", "prism.toml"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["target"]["archs"], serde_json::json!(["sm_90a", "sm_80"]));
    assert_eq!(v["workloads"].as_array().map(Vec::len), Some(9));
    assert_eq!(v["workloads"][0]["outputs"][0]["name"], "out");
}

#[test]
fn check_rejects_a_bad_file_with_its_location() {
    let p = temp_file(
        "bad.toml",
        "[workload.k]\ninputs = { x = \"f16[n, d]\" }\nprogram = \"matmul(x, exq(x))\"\ndims = { n = [8], d = [64] }\n",
    );
    let out = prism(&["check", p.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unknown op `exq`"), "{err}");
    assert!(err.contains("bad.toml:3:22"), "{err}");
    assert!(err.contains("^^^"), "underlined: {err}");
    assert!(err.contains("did you mean `exp`?"), "{err}");

    let out = prism(&["check", "--json", p.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["diagnostics"][0]["code"], "unknown-op");
    assert_eq!(v["diagnostics"][0]["line"], 3);
    assert_eq!(v["diagnostics"][0]["column"], 22);
    assert_eq!(v["diagnostics"][0]["text"], "exq");
}

#[test]
fn check_reports_a_missing_file() {
    let out = prism(&["check", "does/not/exist.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cannot read does/not/exist.toml"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn usage_errors_and_help() {
    let out = prism(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = prism(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("Parse and validate a prism.toml"));
}

#[test]
fn build_compiles_a_prism_toml_into_fatbins_and_a_module() {
    if common::nvcc().is_none() {
        return;
    }
    let toml = temp_file(
        "build.toml",
        "[workload.scale]\ninputs = { x = \"[n, d]\" }\nprogram = \"softmax(x * 2, -1)\"\ndims = { n = \"1..=8\", d = \"1..=100\" }\n",
    );
    let out_dir = toml.with_file_name("build-out");
    let out = prism(&[
        "build",
        toml.to_str().expect("utf-8 path"),
        "--out",
        out_dir.to_str().expect("utf-8 path"),
        "--arch",
        "sm_80",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 workloads for sm_80"), "{stdout}");
    let fatbin = out_dir.join("prism/prism_kernels/scale.fatbin");
    assert!(
        std::fs::metadata(&fatbin)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "{}",
        fatbin.display()
    );
    let module = std::fs::read_to_string(out_dir.join("prism_kernels.rs")).expect("module written");
    assert!(
        module.contains("pub struct Scale"),
        "module lacks the workload struct"
    );
}

#[test]
fn build_without_nvcc_says_how_to_get_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(["build", "prism.toml", "--out"])
        .arg(std::env::temp_dir().join(format!("prism-cli-nonvcc-{}", std::process::id())))
        .env("PRISM_NVCC", "/nonexistent/nvcc")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("prism runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("PRISM_NVCC") && stderr.contains("hint"),
        "{stderr}"
    );
}

#[test]
fn build_reports_an_invalid_prism_toml() {
    let toml = temp_file(
        "bad-build.toml",
        "[workload.w]\ninputs = { x = \"[n]\" }\nprogram = \"frob(x)\"\ndims = { n = 4 }\n",
    );
    let out = prism(&["build", toml.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unknown-op"), "{stderr}");
}

#[test]
fn explain_shows_the_fused_kernel_and_why() {
    let out = prism(&["explain", "rms_norm", "prism.toml"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("workload rms_norm: 1 kernel(s)"),
        "{stdout}"
    );
    // The search found the fold (the norm applied after the matmul) itself.
    assert!(
        stdout.contains("the sGraph enumeration fused the program into one kernel"),
        "{stdout}"
    );
    assert!(stdout.contains("(matmul x w))"), "{stdout}");
    assert!(stdout.contains("loop   over d in tiles of 64"), "{stdout}");
    assert!(stdout.contains("accum_sum"), "{stdout}");
}

#[test]
fn explain_names_the_workloads_when_one_is_unknown() {
    let out = prism(&["explain", "rms_nrom", "prism.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no workload `rms_nrom`") && stderr.contains("rms_norm"),
        "{stderr}"
    );
}
