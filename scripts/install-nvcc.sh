#!/usr/bin/env bash
# Install the pinned CUDA 13.0 compiler (nvcc) from PyPI wheels into a
# virtualenv, and print where it is.
#
# Usage:
#   eval "$(scripts/install-nvcc.sh [VENV_DIR])"
#
# VENV_DIR defaults to $PRISM_NVCC_VENV, else <repo root>/target/nvcc-venv.
# A relative VENV_DIR is taken relative to the caller's working directory.
#
# stdout carries exactly two lines, meant for `eval`:
#   export NVCC=/abs/path/to/nvcc
#   export CUDA_HOME=/abs/path/to/cuda
# Everything else (progress, pip output, errors) goes to stderr.
#
# Idempotent: when the venv already holds a working nvcc 13.0 that passes the
# smoke compile below, pip is not run at all (a second run takes ~1 s).
#
# Requirements: python3 with the venv module, and a host C++ compiler (g++):
# nvcc runs the host preprocessor even for device-only (-fatbin) output.
#
# Wheel layout notes (checked with nvidia-cuda-nvcc 13.0.88):
#   - All the CUDA 13 wheels unpack into one tree, site-packages/nvidia/cu13/
#     (bin/, include/, lib/, nvvm/), which is a usable CUDA_HOME.
#   - bin/nvcc.profile finds everything relative to nvcc itself: cicc in
#     ../nvvm/bin (nvidia-nvvm), libdevice in ../nvvm/libdevice, headers in
#     ../include (cuda_runtime.h from nvidia-cuda-runtime, crt/ from
#     nvidia-cuda-crt, cccl/ from nvidia-cuda-cccl). So no symlinks or extra
#     environment variables are needed; the smoke compile below checks that
#     this still holds.
#   - nvidia-nvvm must be pinned to the same 13.0 series as nvcc: left
#     unpinned, pip takes the newest nvvm (13.5 at the time of writing), whose
#     cicc emits PTX that this ptxas rejects:
#       ptxas fatal : Unsupported .version 9.5; current version is '9.0'

# When sourced (`. scripts/install-nvcc.sh [VENV_DIR]`), run this file as a
# child process and export its two variables into the caller's shell, so that
# `set -euo pipefail` and `exit` do not leak into that shell. (Bash passes the
# caller's own positional parameters to a file sourced without arguments; a
# script that sources this should set PRISM_NVCC_VENV instead of relying on
# that.)
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    if _prism_nvcc_env="$(bash "${BASH_SOURCE[0]}" "$@")"; then
        eval "$_prism_nvcc_env"
        unset _prism_nvcc_env
        return 0
    fi
    unset _prism_nvcc_env
    return 1
fi

set -euo pipefail

# Keep the real stdout on fd 3 for the two export lines; send everything
# else, including the output of every tool we run, to stderr.
exec 3>&1 1>&2

log() { printf 'install-nvcc: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

PACKAGES=(
    'nvidia-cuda-nvcc==13.0.*'
    'nvidia-cuda-runtime==13.0.*'
    'nvidia-cuda-crt==13.0.*'
    'nvidia-cuda-cccl==13.0.*'
    'nvidia-nvvm==13.0.*' # must be pinned too, or ptxas rejects cicc's PTX
)

# Resolve the repo root from this script's own location, so that the script
# works from any working directory.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd -P)"

VENV="${1:-${PRISM_NVCC_VENV:-$REPO_ROOT/target/nvcc-venv}}"
[[ -n "$VENV" ]] || die "empty venv path"
[[ "$VENV" = /* ]] || VENV="$PWD/$VENV"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/prism-install-nvcc.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Print the CUDA_HOME inside the venv (the dir holding bin/nvcc), or nothing.
find_cuda_home() {
    local d
    for d in "$VENV"/lib/python3.*/site-packages/nvidia/cu13; do
        if [[ -x "$d/bin/nvcc" ]]; then
            (cd "$d" && pwd -P)
            return 0
        fi
    done
    return 0
}

# True when $1 is an nvcc that runs and reports release 13.0.
nvcc_is_13_0() {
    local out
    out="$("$1" --version 2>&1)" || return 1
    grep -q 'release 13\.0,' <<<"$out"
}

# Compile a tiny kernel that uses the fp16/bf16 headers to a fatbin for sm_80
# and sm_90a: this exercises the host preprocessor, cicc, ptxas, fatbinary
# and the header tree, i.e. everything prism needs from the toolkit.
smoke_compile() {
    local nvcc="$1"
    cat >"$WORK/smoke.cu" <<'EOF'
#include <cuda_fp16.h>
#include <cuda_bf16.h>

extern "C" __global__ void prism_smoke(const __half* a, const __nv_bfloat16* b,
                                       float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = __half2float(a[i]) + __bfloat162float(b[i]);
    }
}
EOF
    rm -f "$WORK/smoke.fatbin"
    "$nvcc" -fatbin \
        -gencode arch=compute_80,code=sm_80 \
        -gencode arch=compute_90a,code=sm_90a \
        -o "$WORK/smoke.fatbin" "$WORK/smoke.cu" >"$WORK/smoke.log" 2>&1 &&
        [[ -s "$WORK/smoke.fatbin" ]]
}

# Fast path: a previous run already left a working toolchain.
CUDA_HOME="$(find_cuda_home)"
if [[ -n "$CUDA_HOME" ]] && nvcc_is_13_0 "$CUDA_HOME/bin/nvcc" &&
    smoke_compile "$CUDA_HOME/bin/nvcc"; then
    log "nvcc 13.0 already installed in $VENV"
else
    command -v python3 >/dev/null || die "python3 not found"
    # --force-reinstall repairs a venv whose packages pip thinks are installed
    # but whose files are damaged or missing; on a fresh venv it costs nothing.
    PIP_FORCE=()
    if [[ -n "$CUDA_HOME" ]]; then
        log "existing nvcc in $VENV failed its checks; reinstalling"
        PIP_FORCE=(--force-reinstall)
    fi

    # A venv whose interpreter no longer runs (e.g. python3 was upgraded
    # underneath it) cannot be repaired by pip: recreate it.
    if [[ -e "$VENV" ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
        [[ -f "$VENV/pyvenv.cfg" ]] ||
            die "$VENV exists but is not a virtualenv; remove it or pick another path"
        log "removing broken virtualenv $VENV"
        rm -rf "$VENV"
    fi
    if [[ ! -e "$VENV" ]]; then
        log "creating virtualenv $VENV"
        mkdir -p "$(dirname "$VENV")"
        python3 -m venv "$VENV"
    fi

    log "installing ${PACKAGES[*]} (a few hundred MB on a first run)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
        --quiet "${PIP_FORCE[@]}" "${PACKAGES[@]}"

    CUDA_HOME="$(find_cuda_home)"
    [[ -n "$CUDA_HOME" ]] ||
        die "nvcc not found under $VENV/lib/python3.*/site-packages/nvidia/cu13/bin"
    NVCC="$CUDA_HOME/bin/nvcc"
    "$NVCC" --version >"$WORK/version.log" 2>&1 || {
        cat "$WORK/version.log" >&2
        die "$NVCC does not run"
    }
    nvcc_is_13_0 "$NVCC" || {
        cat "$WORK/version.log" >&2
        die "$NVCC is not release 13.0"
    }
    if ! smoke_compile "$NVCC"; then
        cat "$WORK/smoke.log" >&2
        command -v g++ >/dev/null ||
            log "hint: no g++ found; nvcc needs a host C++ compiler (apt-get install g++)"
        die "nvcc cannot compile a test kernel for sm_80 and sm_90a"
    fi
fi

NVCC="$CUDA_HOME/bin/nvcc"
log "$("$NVCC" --version | grep 'release')"
log "smoke compile (sm_80, sm_90a, cuda_fp16.h, cuda_bf16.h) ok"
log "CUDA_HOME=$CUDA_HOME"
log "hint: run  eval \"\$(scripts/install-nvcc.sh)\"  to set NVCC and CUDA_HOME in your shell"

printf 'export NVCC=%q\n' "$NVCC" >&3
printf 'export CUDA_HOME=%q\n' "$CUDA_HOME" >&3
