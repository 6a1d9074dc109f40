#!/usr/bin/env bash
# Run candle_example with the CUDA libraries it is linked against on the
# loader's path. candle-core's `cuda` feature links libcublas.so.13,
# libcurand.so.10 and libcudart.so.13 (and libcuda.so.1, the driver's), which
# a machine may hold outside the default search path: in the CUDA toolkit's
# lib64, or in the pip packages of PyTorch's CUDA 13 build (nvidia/cu13/lib).
# This adds every such folder found to LD_LIBRARY_PATH, then runs the binary.
#
# Usage: run.sh [BINARY] OUT.json [--reps N] [--seed N]
#   BINARY defaults to candle_example beside this script, else
#   target/release/candle_example of this crate.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -gt 0 && -x "$1" && ! -d "$1" ]]; then
    bin="$1"
    shift
elif [[ -x "$here/candle_example" ]]; then
    bin="$here/candle_example"
else
    bin="$here/target/release/candle_example"
fi
[[ -x "$bin" ]] || { echo "run.sh: no candle_example binary at $bin" >&2; exit 2; }

dirs=()
for d in "${CUDA_HOME:-}/lib64" "${CUDA_HOME:-}/lib" /usr/local/cuda/lib64 \
    /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -e "$d/libcublas.so.13" ]] && dirs+=("$d")
done
for py in python3 python; do
    command -v "$py" >/dev/null || continue
    while IFS= read -r d; do
        [[ -n "$d" ]] && dirs+=("$d")
    done < <("$py" - <<'EOF' 2>/dev/null || true
import os
try:
    import nvidia
except ImportError:
    raise SystemExit
for root in nvidia.__path__:
    for sub in ("cu13/lib", "cublas/lib", "curand/lib", "cuda_runtime/lib", "cuda_nvrtc/lib"):
        d = os.path.join(root, sub)
        if os.path.isdir(d):
            print(d)
EOF
    )
    break
done
if [[ ${#dirs[@]} -gt 0 ]]; then
    path="$(IFS=:; echo "${dirs[*]}")"
    export LD_LIBRARY_PATH="$path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if missing="$(ldd "$bin" 2>/dev/null | grep 'not found')"; then
    echo "run.sh: libraries $bin needs are not found (searched: ${dirs[*]:-none}):" >&2
    echo "$missing" >&2
    echo "run.sh: install the CUDA 13 toolkit or the nvidia-cublas, nvidia-curand and" \
        "nvidia-cuda-runtime wheels, or add their folders to LD_LIBRARY_PATH" >&2
    exit 1
fi
exec "$bin" "$@"
