//! prism.lock's integrity: the checksum the writer seals it with and the
//! reader checks ([`prism::tune::lock::verify`]), and what an interrupted
//! `prism tune` can leave behind.
//!
//! - A proptest writes locks with random entries (random text, any Unicode
//!   and control characters included), reads each back equal, and refuses
//!   every copy with one byte substituted (random positions, random other
//!   values) with [`LockError::Checksum`]: a corrupted lock is never
//!   accepted, not even as another valid lock.
//! - The same exhaustively for one small lock, LF and CRLF: every byte
//!   position, every other byte value.
//! - Truncations (what a non-atomic write killed halfway leaves), removed
//!   lines, appended text, mixed line endings: refused. A CRLF checkout
//!   (git's `autocrlf`) still verifies.
//! - [`Lock::write`] replaces the file by renaming a finished temporary
//!   file over it: the old file is never written in place, and a failed
//!   write leaves it as it was.
//! - `prism tune --check` and the build (the `cargo::error` lines of a
//!   build script) report a corrupt lock with the hint, and a lock holding
//!   only some buckets as incomplete, listing the missing entries.
//!
//! The proptest runner uses a fixed RNG seed and no failure persistence:
//! the cases are the same on every run.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::{prism, text};
use prism::build::{Build, BuildError, cargo_error_lines};
use prism::search::crosscheck::CrossCheckOptions;
use prism::tune::lock::{ChecksumProblem, Entry, Lock, LockError, Source, seal, verify};
use prism::tune::resolve::model_entries;
use prism::ugraph::KernelGraph;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};

/// Random locks of the property.
const CASES: u32 = 256;

/// The hint every refusal of a corrupt lock carries.
const HINT: &str = "restore it from version control";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("prism-lock-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: 1024,
        ..Config::default()
    })
}

/// The kind of a checksum problem (for the coverage counts).
fn kind(p: &ChecksumProblem) -> &'static str {
    match p {
        ChecksumProblem::NotUtf8 => "not UTF-8",
        ChecksumProblem::LineEndings { .. } => "line endings",
        ChecksumProblem::Empty => "empty",
        ChecksumProblem::Missing { .. } => "missing",
        ChecksumProblem::Malformed { .. } => "malformed",
        ChecksumProblem::Mismatch { .. } => "mismatch",
    }
}

/// `Ok(kind)` when `bytes` is refused as a corrupt lock, with the hint;
/// `Err` saying what happened otherwise.
fn refused(bytes: &[u8]) -> Result<&'static str, String> {
    match Lock::parse_bytes(bytes, Path::new("prism.lock")) {
        Err(e @ LockError::Checksum { .. }) => {
            let msg = e.to_string();
            if !(msg.contains("corrupt or was edited by hand")
                && msg.contains(HINT)
                && msg.contains("prism tune"))
            {
                return Err(format!("message lacks the hint: {msg}"));
            }
            match e {
                LockError::Checksum { problem, .. } => Ok(kind(&problem)),
                _ => Err("unreachable".into()),
            }
        }
        Err(other) => Err(format!("refused, but not by the checksum: {other}")),
        Ok(lock) => Err(format!("ACCEPTED ({} entries)", lock.entries.len())),
    }
}

// ------------------------------------------------------------------ generator

/// Entry text: mostly lock-like, sometimes any characters (quotes,
/// backslashes, newlines, carriage returns, `#`, non-ASCII).
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9_=. #\"\\[\\]]{0,16}",
        1 => vec(any::<char>(), 0..10).prop_map(|cs| cs.into_iter().collect::<String>()),
    ]
}

/// A time on the writer's 0.1 µs grid (so the round trip is exact).
fn micros() -> impl Strategy<Value = Option<f64>> {
    prop::option::of((0u32..100_000_000).prop_map(|n| f64::from(n) / 10.0))
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        (field(), field(), field(), field()),
        (field(), field(), any::<bool>()),
        (micros(), prop::option::of(field()), micros()),
        prop::option::of(field()),
    )
        .prop_map(
            |(
                (workload, bucket, arch, key),
                (instance, graph, measured),
                (micros, model_instance, model_micros),
                device,
            )| Entry {
                workload,
                bucket,
                arch,
                key,
                instance,
                graph,
                source: if measured {
                    Source::Measured
                } else {
                    Source::Model
                },
                micros,
                model_instance,
                model_micros,
                device,
            },
        )
}

fn lock() -> impl Strategy<Value = Lock> {
    (field(), vec(entry(), 0..6)).prop_map(|(nvcc, mut entries)| {
        // Keys are unique in a lock.
        for (i, e) in entries.iter_mut().enumerate() {
            e.key = format!("{i}:{}", e.key);
        }
        Lock {
            nvcc,
            entries,
            ..Lock::new("")
        }
    })
}

/// A small lock like the ones `prism tune` writes.
fn small_lock() -> Lock {
    let mut lock = Lock::new("13.0");
    lock.entries.push(Entry {
        workload: "scale".into(),
        bucket: "n=8 d=64".into(),
        arch: "sm_90a".into(),
        key: "f9523afd10ef3656a38a2968807bc569".into(),
        instance: "rms-matmul tiles=t16x16x512w118s3".into(),
        graph: "410eb09c8f411dc0fc429c3b494b469f".into(),
        source: Source::Measured,
        micros: Some(9.0),
        model_instance: Some("regions".into()),
        model_micros: Some(9.4),
        device: Some("NVIDIA H200".into()),
    });
    lock.entries.push(Entry {
        arch: "sm_80".into(),
        key: "986c0c6b09400b4a118c9ee3d9c3eacb".into(),
        source: Source::Model,
        micros: None,
        model_instance: None,
        model_micros: None,
        device: None,
        ..lock.entries[0].clone()
    });
    lock
}

// ---------------------------------------------------------------- properties

/// Random locks read back equal; every copy with one byte substituted is
/// refused by the checksum.
#[test]
fn random_locks_round_trip_and_refuse_every_substitution() {
    let kinds: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());
    // XOR masks: below 128 an ASCII byte stays ASCII (mostly), else it
    // becomes a byte that is not UTF-8 on its own.
    let mask = prop_oneof![3 => 1u8..=127, 1 => 128u8..=255];
    let corruptions = vec((any::<Index>(), mask), 1..32);
    let mut runner = runner(CASES, 0x10c4_5eed);
    let result = runner.run(&(lock(), corruptions), |(lock, corruptions)| {
        let text = lock.render();
        let back = Lock::parse(&text, Path::new("prism.lock"))
            .map_err(|e| TestCaseError::fail(format!("own output refused: {e}\n{text}")))?;
        prop_assert_eq!(&back, &lock, "round trip");
        prop_assert_eq!(back.render(), text.clone(), "rendering is a fixed point");
        let bytes = text.as_bytes();
        for (at, flip) in corruptions {
            let at = at.index(bytes.len());
            let mut bad = bytes.to_vec();
            bad[at] ^= flip;
            let k = refused(&bad).map_err(|why| {
                TestCaseError::fail(format!(
                    "byte {at} {:?} -> {:?}: {why}\n{text}",
                    bytes[at] as char, bad[at] as char
                ))
            })?;
            if let Ok(mut m) = kinds.lock() {
                *m.entry(k).or_default() += 1;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let kinds = kinds.into_inner().unwrap_or_default();
    eprintln!("{CASES} random locks; substitutions refused by kind: {kinds:?}");
    let total: usize = kinds.values().sum();
    assert!(total >= CASES as usize, "{total} substitutions");
    assert!(kinds.get("mismatch").copied().unwrap_or(0) > total / 2);
    for k in ["not UTF-8", "line endings", "missing", "malformed"] {
        assert!(kinds.get(k).is_some_and(|&n| n > 0), "no `{k}`");
    }
}

/// One small lock, as written (LF) and as a Windows checkout has it
/// (CRLF): every byte position with every other byte value is refused,
/// and each way of refusing occurs.
#[test]
fn every_single_byte_substitution_of_a_small_lock_is_refused() {
    let text = small_lock().render();
    let crlf = text.replace('\n', "\r\n");
    for (name, file) in [("LF", &text), ("CRLF", &crlf)] {
        let bytes = file.as_bytes();
        let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut failures = Vec::new();
        for at in 0..bytes.len() {
            for v in 0..=255u8 {
                if v == bytes[at] {
                    continue;
                }
                let mut bad = bytes.to_vec();
                bad[at] = v;
                match refused(&bad) {
                    Ok(k) => *kinds.entry(k).or_default() += 1,
                    Err(why) => failures.push(format!("byte {at} -> {v:#04x}: {why}")),
                }
            }
        }
        let cases = bytes.len() * 255;
        eprintln!(
            "{name}: {} bytes, {cases} substitutions: {kinds:?}",
            bytes.len()
        );
        assert!(
            failures.is_empty(),
            "{name}: {} of {cases} not refused by the checksum, first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert_eq!(kinds.values().sum::<usize>(), cases);
        for k in [
            "not UTF-8",
            "line endings",
            "missing",
            "malformed",
            "mismatch",
        ] {
            assert!(kinds.get(k).is_some_and(|&n| n > 0), "{name}: no `{k}`");
        }
    }
}

// ------------------------------------------------------------------- shapes

/// The checksum is the first line after the header comments and covers
/// the comments too; removing it is refused with the hint.
#[test]
fn a_lock_without_its_checksum_line_is_refused() {
    let text = small_lock().render();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("checksum = \""))
        .expect("a checksum line");
    assert!(
        lines[..at]
            .iter()
            .all(|l| l.is_empty() || l.starts_with('#')),
        "only comments before it:\n{text}"
    );
    assert_eq!(lines[at + 1], "version = 1", "then the TOML");

    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("checksum"))
        .map(|l| format!("{l}\n"))
        .collect();
    let e = Lock::parse(&without, Path::new("prism.lock")).expect_err("refused");
    assert!(
        matches!(
            &e,
            LockError::Checksum {
                problem: ChecksumProblem::Missing { found, .. },
                ..
            } if found == "version = 1"
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("no `checksum` line") && msg.contains(HINT),
        "{msg}"
    );
    // Sealing it again is what the writer does.
    assert_eq!(seal(&without), text);

    // Removing any other line is refused too.
    for i in 0..lines.len() {
        let mut rest = lines.clone();
        rest.remove(i);
        let edited = rest.join("\n") + "\n";
        if let Err(why) = refused(edited.as_bytes()) {
            panic!("without line {} `{}`: {why}", i + 1, lines[i]);
        }
    }
}

/// A Windows checkout with `core.autocrlf` turns every LF into CRLF: it
/// still verifies and reads the same lock. Mixed or lone carriage returns
/// are refused.
#[test]
fn crlf_checkouts_verify_and_mixed_line_endings_do_not() {
    let lock = small_lock();
    let text = lock.render();
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(verify(&crlf).expect("verifies"), text, "normalised to LF");
    let back = Lock::parse_bytes(crlf.as_bytes(), Path::new("prism.lock")).expect("reads");
    assert_eq!(back, lock);

    let mixed = crlf.replacen("\r\n", "\n", 1);
    let one_crlf = text.replacen('\n', "\r\n", 1);
    let cr_only = text.replace('\n', "\r");
    for (name, t) in [("mixed", mixed), ("one CRLF", one_crlf), ("CR", cr_only)] {
        assert_eq!(refused(t.as_bytes()), Ok("line endings"), "{name}: {t:?}");
    }
}

/// What a non-atomic write killed halfway would leave (every prefix of the
/// file), and text appended to a lock, are refused.
#[test]
fn truncated_and_extended_locks_are_refused() {
    let text = small_lock().render();
    let bytes = text.as_bytes();
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    for len in 0..bytes.len() {
        match refused(&bytes[..len]) {
            Ok(k) => *kinds.entry(k).or_default() += 1,
            Err(why) => panic!("the first {len} of {} bytes: {why}", bytes.len()),
        }
    }
    eprintln!("{} truncations: {kinds:?}", bytes.len());
    for k in ["empty", "malformed", "mismatch"] {
        assert!(kinds.contains_key(k), "no truncation is `{k}`: {kinds:?}");
    }
    for extra in ["\n", " ", "#", "# note\n", "[[entry]]\n", "x = 1\n"] {
        let longer = format!("{text}{extra}");
        assert_eq!(refused(longer.as_bytes()), Ok("mismatch"), "{extra:?}");
    }
}

// ------------------------------------------------------------------ writing

/// `Lock::write` renames a finished temporary file over the lock: a hard
/// link to the old file keeps the old content (an in-place write would
/// change it), and no temporary file is left. An unchanged lock is not
/// written at all.
#[test]
fn writes_replace_the_lock_atomically() {
    let dir = temp_dir("atomic");
    let path = dir.join("prism.lock");
    let old = small_lock();
    old.write(&path).expect("write");
    let link = dir.join("old-inode");
    std::fs::hard_link(&path, &link).expect("hard link");

    let mut new = old.clone();
    new.entries.pop();
    new.write(&path).expect("write again");
    assert_eq!(
        std::fs::read_to_string(&link).expect("read"),
        old.render(),
        "the old file was written in place"
    );
    assert_eq!(Lock::read(&path).expect("reads"), Some(new.clone()));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["old-inode", "prism.lock"], "no temporary file left");

    // Unchanged: not written (the file keeps its inode, so the link sees
    // any write).
    std::fs::remove_file(&link).expect("unlink");
    std::fs::hard_link(&path, &link).expect("hard link");
    new.write(&path).expect("unchanged");
    std::fs::write(&link, "touched").expect("write through the link");
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "touched",
        "an unchanged lock is left alone"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write that fails before its rename (here: the temporary file cannot
/// be created) is an error naming the lock, and leaves the old file whole.
#[test]
fn a_failed_write_leaves_the_old_lock() {
    let dir = temp_dir("failed-write");
    let path = dir.join("prism.lock");
    let old = small_lock();
    old.write(&path).expect("write");
    // `Lock::write`'s temporary file is `.prism.lock.<pid>-<n>.tmp` beside
    // it, `n` counting this process's writes: block the first 256 (this
    // test binary makes far fewer; more would fail the test, not pass it).
    for n in 0..256 {
        let tmp = dir.join(format!(".prism.lock.{}-{n}.tmp", std::process::id()));
        std::fs::create_dir(&tmp).expect("block the temporary file");
    }
    let mut new = old.clone();
    new.nvcc = "13.1".into();
    let e = new.write(&path).expect_err("cannot write");
    assert!(matches!(e, LockError::Write { .. }), "{e:?}");
    assert!(e.to_string().contains("prism.lock"), "{e}");
    assert_eq!(Lock::read(&path).expect("still valid"), Some(old));
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------- the CLI and the build

const SMALL: &str = r#"
[target]
arch = ["sm_90a", "sm_80"]

[workload.scale]
inputs = { x = "f16[n, d]" }
program = "x * 2 + 1"
dims = { n = "1..=8", d = [64] }
"#;

/// A project with SMALL and a complete lock of the cost model's choices
/// (for nvcc `release`).
fn small_project(name: &str, release: &str) -> (PathBuf, Lock) {
    let dir = temp_dir(name);
    std::fs::write(dir.join("prism.toml"), SMALL).expect("write");
    let spec = prism::frontend::load(&dir.join("prism.toml")).expect("valid");
    let w = &spec.workloads[0];
    let fits = |g: &KernelGraph| prism::codegen::cuda::fits(w, g);
    let insts = prism::tune::instances::instances(w, &CrossCheckOptions::default(), &fits)
        .expect("instances");
    let mut lock = Lock::new(release);
    for a in &spec.target.archs {
        lock.entries
            .extend(model_entries(&spec, w, a, release, &insts));
    }
    assert!(lock.entries.len() >= 6, "{} entries", lock.entries.len());
    (dir, lock)
}

fn tune_check(dir: &Path) -> (Option<i32>, String, String) {
    let toml = dir.join("prism.toml");
    let out = prism(&["tune", "--check", toml.to_str().expect("UTF-8 path")]);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Hand edits the writer would never make: a time, an instance name.
fn hand_edits(text: &str) -> Vec<String> {
    let edits = [
        text.replacen("source = \"model\"", "source = \"measured\"", 1),
        text.replacen("sm_80", "sm_86", 1),
        text.replacen("# prism.lock", "# Prism.lock", 1),
        text[..text.len() / 2].to_string(),
    ];
    for e in &edits {
        assert_ne!(e, text);
    }
    edits.to_vec()
}

/// `prism tune --check`: a complete lock passes; a corrupt one (hand edits,
/// a truncation) is an error with the hint; a lock holding only some
/// buckets (what `prism tune --workload` or an older prism.toml leaves) is
/// incomplete, with every missing entry listed. `prism tune --model` warns
/// about a corrupt lock and writes a new, valid one.
#[test]
fn tune_check_reports_corrupt_and_partial_locks() {
    let Some(nvcc) = common::nvcc() else { return };
    let release = prism::nvcc::version(&nvcc).expect("nvcc --version");
    let (dir, lock) = small_project("cli", &release);
    let path = dir.join("prism.lock");
    lock.write(&path).expect("write");
    let (code, stdout, stderr) = tune_check(&dir);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("complete and up to date"), "{stdout}");

    let good = lock.render();
    for edited in hand_edits(&good) {
        std::fs::write(&path, &edited).expect("write");
        let (code, _, stderr) = tune_check(&dir);
        assert_eq!(code, Some(1), "accepted:\n{edited}");
        assert!(
            stderr.contains("is corrupt or was edited by hand")
                && stderr.contains(HINT)
                && stderr.contains("prism tune"),
            "{stderr}"
        );
    }

    // Some buckets only: every other one is listed as missing.
    let mut partial = lock.clone();
    let dropped: Vec<Entry> = [partial.entries.len() - 1, 2, 0]
        .into_iter()
        .map(|i| partial.entries.remove(i))
        .collect();
    partial.write(&path).expect("write");
    assert!(Lock::read(&path).expect("a valid lock").is_some());
    let (code, _, stderr) = tune_check(&dir);
    assert_eq!(code, Some(1), "incomplete lock accepted");
    assert!(
        stderr.contains(&format!(
            "is incomplete or stale ({} problems)",
            dropped.len()
        )),
        "{stderr}"
    );
    for e in &dropped {
        let line = format!("`scale`: no entry for {} {}", e.arch, e.bucket);
        assert!(stderr.contains(&line), "{line} not in:\n{stderr}");
    }

    // `--model` on a corrupt lock: a warning with the hint, then a new lock.
    std::fs::write(&path, good.replacen("sm_80", "sm_86", 1)).expect("write");
    let out = prism(&[
        "tune",
        "--model",
        dir.join("prism.toml").to_str().expect("UTF-8 path"),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains(HINT) && stderr.contains("writing a new"),
        "{stderr}"
    );
    assert_eq!(Lock::read(&path).expect("valid"), Some(lock));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The build: a corrupt lock is `BuildError::Lock` whose `cargo::error`
/// lines carry the hint (online and offline); offline, a lock holding only
/// some buckets is an error counting the missing ones.
#[test]
fn the_build_reports_corrupt_and_partial_locks() {
    let Some(nvcc) = common::nvcc() else { return };
    let release = prism::nvcc::version(&nvcc).expect("nvcc --version");
    let (dir, lock) = small_project("build", &release);
    let path = dir.join("prism.lock");
    let build = |offline: bool| {
        let b = Build::from_toml(dir.join("prism.toml"))
            .out_dir(dir.join("out"))
            .emit_directives(false);
        if offline {
            b.env("PRISM_OFFLINE", "1").try_run()
        } else {
            b.env_remove("PRISM_OFFLINE").try_run()
        }
    };
    for edited in hand_edits(&lock.render()) {
        std::fs::write(&path, &edited).expect("write");
        for offline in [true, false] {
            let e = build(offline).expect_err("a corrupt lock");
            assert!(
                matches!(e, BuildError::Lock(LockError::Checksum { .. })),
                "{e:?}"
            );
            let lines = cargo_error_lines(&e);
            assert!(
                lines[0].starts_with("cargo::error=prism[lock-checksum]: ")
                    && lines[0].contains("prism.lock is corrupt or was edited by hand"),
                "{lines:?}"
            );
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with("cargo::error=hint: ") && l.contains(HINT)),
                "{lines:?}"
            );
        }
    }

    let mut partial = lock.clone();
    let dropped = partial.entries.len() / 2;
    partial.entries.truncate(partial.entries.len() - dropped);
    partial.write(&path).expect("write");
    let e = build(true).expect_err("offline with missing entries");
    assert!(matches!(e, BuildError::Resolve(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{dropped} of its tuned kernels are not in"))
            && msg.contains("no entry for")
            && msg.contains("PRISM_OFFLINE"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
