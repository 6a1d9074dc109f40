#!/usr/bin/env bash
# Side-by-side benchmark, prism against PyTorch, in one device call.
#
# Runs in the repo root of the GPU machine, with prebuilt binaries in
# gpu-bin/ (at least gpu-bin/prism) and $OUT set (the folder that comes back):
#
#   bash scripts/bench-gpu.sh
#   ONLY=attention bash scripts/bench-gpu.sh
#   SKIP_TORCH=1 TORCH_JSON=bench/results/torch-h200.json bash scripts/bench-gpu.sh
#
# Steps (each logs to $OUT; a failing step does not stop the later ones):
#   1. nvidia-smi summary                        -> stdout
#   2. gpu-bin/prism bench prism.toml --json     -> $OUT/prism-bench.json, .log
#   3. python3 bench/torch_baselines.py          -> $OUT/torch.json, torch.log
#   4. python3 bench/compare.py                  -> $OUT/compare.md, compare.json
#   5. cat $OUT/compare.md
#
# Environment:
#   OUT           output folder (required)
#   ONLY=a,b      restrict to these workloads: forwarded to torch_baselines and
#                 compare as --only; to prism bench as --workload only when it
#                 names a single workload (otherwise prism benches all of them
#                 and compare keeps only the named ones)
#   SKIP_TORCH=1  do not run torch_baselines; use the JSON in TORCH_JSON
#   TORCH_JSON    a torch_baselines JSON (with SKIP_TORCH=1), copied to $OUT/torch.json
#   SKIP_PRISM=1  do not run prism bench; use the JSON in PRISM_JSON
#   PRISM_JSON    a prism bench JSON (with SKIP_PRISM=1), copied to $OUT/prism-bench.json
#   AUTOTUNE=0    torch_baselines --no-autotune (skip compile_at, the slow peer)
#   TORCH_MAX_S   torch_baselines --max-seconds (stop starting measurements after
#                 this many seconds, keep what was measured; default: none).
#   GRAPH=0       torch_baselines --no-graph (no CUDA-graph replay timings)
#   TIMING=call   compare.py --timing call (default graph: PyTorch's CUDA-graph
#                 replay times; call: do_bench of the Python call)
#   PRISM_BIN     default gpu-bin/prism
#   PRISM_ARGS    extra arguments for prism bench
#   TOML          default prism.toml
#
# Time: torch_baselines took 395 s on the H200 device for all 44 points with
# autotune (~110 s with AUTOTUNE=0). A device command may run 10 minutes, so
# with prism bench in the same call either set AUTOTUNE=0 / TORCH_MAX_S, or
# measure torch once (its numbers do not depend on prism) and pass it back in
# with SKIP_TORCH=1 TORCH_JSON=... on later runs.
#
# $OUT gets six files (the device tool brings back at most eight): prism-bench.json,
# prism-bench.log, torch.json, torch.log, compare.md, compare.json.
#
# Exit status: 0 when every step that ran succeeded, 1 otherwise (the report
# is still written when both JSON files exist).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"

TOML="${TOML:-prism.toml}"
PRISM_BIN="${PRISM_BIN:-gpu-bin/prism}"
ONLY="${ONLY:-}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
status=0
t0=$SECONDS

step() { echo; echo "== $* ($((SECONDS - t0)) s)"; }

step "device"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,clocks.max.mem,power.limit \
        --format=csv 2>&1
else
    echo "nvidia-smi not found"
fi
command -v nvcc >/dev/null && nvcc --version | tail -n 2
"$PY" --version

# ---- prism bench
PRISM_OUT="$OUT/prism-bench.json"
if [ "${SKIP_PRISM:-0}" = 1 ]; then
    step "prism bench: skipped, using ${PRISM_JSON:-<unset>}"
    if [ -n "${PRISM_JSON:-}" ] && [ -f "$PRISM_JSON" ]; then
        cp "$PRISM_JSON" "$PRISM_OUT"
    else
        echo "SKIP_PRISM=1 but PRISM_JSON does not name a file"; status=1
    fi
else
    prism_args=(bench "$TOML" --json "$PRISM_OUT")
    if [ -n "$ONLY" ] && [[ "$ONLY" != *,* ]]; then
        prism_args+=(--workload "$ONLY")
    fi
    # shellcheck disable=SC2206
    [ -n "${PRISM_ARGS:-}" ] && prism_args+=($PRISM_ARGS)
    step "$PRISM_BIN ${prism_args[*]}"
    if [ ! -x "$PRISM_BIN" ]; then
        echo "$PRISM_BIN is missing or not executable" | tee "$OUT/prism-bench.log"; status=1
    else
        "$PRISM_BIN" "${prism_args[@]}" >"$OUT/prism-bench.log" 2>&1
        rc=$?
        tail -n 15 "$OUT/prism-bench.log"
        if [ $rc -ne 0 ]; then echo "prism bench exited $rc"; status=1; fi
    fi
fi

# ---- torch baselines
TORCH_OUT="$OUT/torch.json"
if [ "${SKIP_TORCH:-0}" = 1 ]; then
    step "torch baselines: skipped, using ${TORCH_JSON:-<unset>}"
    if [ -n "${TORCH_JSON:-}" ] && [ -f "$TORCH_JSON" ]; then
        cp "$TORCH_JSON" "$TORCH_OUT"
    else
        echo "SKIP_TORCH=1 but TORCH_JSON does not name a file"; status=1
    fi
else
    torch_args=("$TOML" --out "$TORCH_OUT")
    [ -n "$ONLY" ] && torch_args+=(--only "$ONLY")
    [ "${AUTOTUNE:-1}" = 0 ] && torch_args+=(--no-autotune)
    [ "${GRAPH:-1}" = 0 ] && torch_args+=(--no-graph)
    [ -n "${TORCH_MAX_S:-}" ] && torch_args+=(--max-seconds "$TORCH_MAX_S")
    step "$PY bench/torch_baselines.py ${torch_args[*]}"
    "$PY" bench/torch_baselines.py "${torch_args[@]}" >"$OUT/torch.log" 2>&1
    rc=$?
    tail -n 8 "$OUT/torch.log"
    if [ $rc -ne 0 ]; then
        echo "torch_baselines exited $rc (a partial $TORCH_OUT, if any, is still compared)"; status=1
    fi
fi

# ---- compare
step "compare"
if [ -f "$PRISM_OUT" ] && [ -f "$TORCH_OUT" ]; then
    cmp_args=("$PRISM_OUT" "$TORCH_OUT" --out "$OUT/compare.json")
    [ -n "$ONLY" ] && cmp_args+=(--only "$ONLY")
    [ -n "${TIMING:-}" ] && cmp_args+=(--timing "$TIMING")
    "$PY" bench/compare.py "${cmp_args[@]}" >"$OUT/compare.md"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "compare.py exited $rc"; status=1
    else
        echo; cat "$OUT/compare.md"
    fi
else
    echo "compare skipped: missing $( [ -f "$PRISM_OUT" ] || echo "$PRISM_OUT ")$( [ -f "$TORCH_OUT" ] || echo "$TORCH_OUT")"
    status=1
fi

step "done, status $status"
exit $status
