#!/usr/bin/env bash
# A short smoke run of every cargo-fuzz target in fuzz/ (docs/RELIABILITY.md),
# for CI: each target runs for FUZZ_SECONDS from its committed seeds, one
# after another. Prints the executions of each; exits nonzero when a target
# crashes, panics, times out (>10 s on one input), runs out of memory
# (>2048 MiB) or does not run at all. A crashing input is left in
# fuzz/artifacts/<target>/ and named in the output, with the command that
# replays it.
#
#   bash scripts/fuzz-smoke.sh                  # every target, 25 s each
#   FUZZ_SECONDS=60 FUZZ_TARGETS="expression" bash scripts/fuzz-smoke.sh
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 25)
#   FUZZ_TARGETS    space-separated targets (default: every one `cargo fuzz list` names)
#   FUZZ_SANITIZER  none (default) or address: libFuzzer's coverage guidance
#                   works either way; prism has no unsafe code, and ASan makes
#                   the targets about five times slower
#
# Needs only stable Rust: cargo-fuzz passes nightly-only flags (-Zsanitizer,
# -Cpasses=sancov-module), which RUSTC_BOOTSTRAP=1 unlocks on a stable
# compiler. cargo-fuzz itself is installed when missing.
set -euo pipefail

cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${FUZZ_SECONDS:-25}"
SANITIZER="${FUZZ_SANITIZER:-none}"
CARGO_FUZZ_VERSION=0.13.2

case "$SANITIZER" in
none) TARGET_DIR=fuzz/target/nosan ;;
address) TARGET_DIR=fuzz/target/asan ;;
*)
    echo "fuzz-smoke: FUZZ_SANITIZER must be none or address, not $SANITIZER" >&2
    exit 2
    ;;
esac

export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)}"
if [ -z "$TARGETS" ]; then
    echo "fuzz-smoke: no fuzz targets" >&2
    exit 1
fi

OPTS=(--fuzz-dir fuzz --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR")

echo "fuzz-smoke: building ($SANITIZER sanitizer)"
cargo fuzz build "${OPTS[@]}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/prism-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

failed=()
summary=()
total=0
for target in $TARGETS; do
    corpus="$WORK/corpus/$target"
    log="$WORK/$target.log"
    mkdir -p "$corpus"
    seeds=()
    if [ -d "fuzz/seeds/$target" ]; then
        seeds=("fuzz/seeds/$target")
    fi
    dict=()
    if [ -f "fuzz/dicts/$target.dict" ]; then
        dict=(-dict="fuzz/dicts/$target.dict")
    fi
    echo "fuzz-smoke: $target for ${SECONDS_PER_TARGET}s"
    rc=0
    # The seeds are read, never written: new inputs go to the scratch corpus.
    cargo fuzz run "${OPTS[@]}" "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        -max_len=4096 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1 || rc=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    cov="$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1 || true)"
    if [ "$rc" -ne 0 ] || [ -z "$execs" ]; then
        failed+=("$target")
        summary+=("$(printf '%-16s FAILED (exit %s) after %s executions' "$target" "$rc" "${execs:-0}")")
        echo "---- $target: what went wrong" >&2
        grep -E -A4 'panicked at|ERROR: libFuzzer|==[0-9]+== ?ERROR|^SUMMARY|out-of-memory|[Tt]imeout after|error(\[E[0-9]+\])?:' "$log" |
            head -n 40 >&2 || true
        echo "---- $target: the last lines of its log" >&2
        grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|^ +[0-9]+: |^ +at ' "$log" | tail -n 25 >&2
        artifact="$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)"
        if [ -n "$artifact" ]; then
            echo "---- input: $artifact" >&2
            echo "---- replay: RUSTC_BOOTSTRAP=1 cargo fuzz run ${OPTS[*]} $target $artifact" >&2
        fi
    else
        total=$((total + execs))
        summary+=("$(printf '%-16s %9d executions in %ss (%s)' "$target" "$execs" "$SECONDS_PER_TARGET" "$cov")")
    fi
done

echo
echo "fuzz-smoke summary ($SANITIZER sanitizer):"
printf '  %s\n' "${summary[@]}"
echo "  total: $total executions"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz-smoke: ok"
