//! generated/ holds prism's committed, reviewable output for the root
//! prism.toml. This test keeps it up to date: run with PRISM_BLESS=1 to
//! rewrite it after an intended change, and review the diff.

mod common;

use std::path::Path;

use prism::cli::check;

fn check_file(name: &str, want: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("generated")
        .join(name);
    if std::env::var_os("PRISM_BLESS").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create generated/ folder");
        }
        std::fs::write(&path, want).expect("write generated file");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "generated/{name} is out of date with prism.toml or the compiler.\n\
         Run `PRISM_BLESS=1 cargo test --release --test generated` and review the diff."
    );
}

#[test]
fn generated_matches_the_root_prism_toml() {
    let spec = prism::frontend::parse("prism.toml", prism::frontend::EMBEDDED_PRISM_TOML)
        .expect("bundled prism.toml parses");
    check_file(
        "check.json",
        &(check::to_json(&check::report(&spec)) + "\n"),
    );
    check_file("check.txt", &check::render(&spec));
}

/// The generated CUDA of every bundled workload, one file each, so a change
/// to code generation shows up as a reviewable diff: what a build embeds,
/// the tuned variants prism.lock names (resolved offline, as CI builds).
#[test]
fn generated_cuda_matches_the_root_prism_toml() {
    let (spec, locked) = common::bundled_locked();
    for (w, (_, k)) in spec.workloads.iter().zip(&locked) {
        check_file(&format!("cuda/{}.cu", w.name), &k.source);
    }
}
