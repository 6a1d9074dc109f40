#!/usr/bin/env bash
# Link-time stand-ins for the CUDA libraries that candle-core's `cuda` feature
# links (cudarc's `dynamic-linking`): libcuda, libcublas, libcublasLt,
# libcurand and libnvrtc, for a machine with nvcc but without the CUDA
# toolkit's libraries or an NVIDIA driver (CI, a build machine).
#
# Usage:
#   bash examples/candle/cuda-link-stubs.sh DIR
#   CUDA_ROOT=DIR cargo build --release --manifest-path examples/candle/Cargo.toml
#
# Writes DIR/lib/lib{cuda,cublas,cublasLt,curand,nvrtc}.so: shared libraries
# whose functions do nothing, with the sonames of the real CUDA 13 libraries
# (libcuda.so.1, libcublas.so.13, libcublasLt.so.13, libcurand.so.10,
# libnvrtc.so.13), so that a binary linked against them loads the real ones
# at run time. Their function names are those cudarc declares (its
# src/*/sys/mod.rs, found through `cargo metadata`). DIR/lib/libcudart.so
# links to the real libcudart.so.13 of $CUDA_HOME/lib (candle-kernels links
# cudart). cudarc's build script adds DIR/lib to the linker's search path when
# CUDA_ROOT=DIR is set.
#
# Each stub also answers to its soname (DIR/lib/libcuda.so.1, ...), so that
# `LD_LIBRARY_PATH=DIR/lib cargo test` runs the example's unit tests, which
# call no CUDA function, on a machine without CUDA. Never put DIR on
# LD_LIBRARY_PATH where the binary runs on a GPU: the stubs do nothing.
#
# Needs: cargo, python3, a C compiler (cc), CUDA_HOME (the nvcc install).
set -euo pipefail

dir="${1:?usage: cuda-link-stubs.sh DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${CUDA_HOME:?set CUDA_HOME to the CUDA install that holds lib/libcudart.so.13}"
cudart="$CUDA_HOME/lib/libcudart.so.13"
[[ -f "$cudart" ]] || cudart="$CUDA_HOME/lib64/libcudart.so.13"
[[ -f "$cudart" ]] || { echo "cuda-link-stubs: no libcudart.so.13 in $CUDA_HOME/lib or lib64" >&2; exit 1; }

cudarc_toml="$(cargo metadata --format-version 1 --locked --manifest-path "$here/Cargo.toml" |
    python3 -c 'import json, sys
print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "cudarc"))')"
sys_dir="$(dirname "$cudarc_toml")/src"

mkdir -p "$dir/lib"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# stub NAME SONAME MODULE PREFIX: libNAME.so with every function of cudarc's
# MODULE/sys/mod.rs whose name starts with PREFIX.
stub() {
    local name="$1" soname="$2" module="$3" prefix="$4"
    local src="$tmp/$name.c"
    grep -ohE '^pub unsafe fn [A-Za-z0-9_]+' "$sys_dir/$module/sys/mod.rs" |
        awk -v p="$prefix" '{ if (index($4, p) == 1) print "void " $4 "(void) {}" }' |
        sort -u >"$src"
    [[ -s "$src" ]] || { echo "cuda-link-stubs: no functions in $sys_dir/$module/sys/mod.rs" >&2; exit 1; }
    cc -shared -fPIC -o "$dir/lib/lib$name.so" -Wl,-soname,"$soname" "$src"
    ln -sf "lib$name.so" "$dir/lib/$soname"
}

stub cuda libcuda.so.1 driver cu
stub cublas libcublas.so.13 cublas cublas
stub cublasLt libcublasLt.so.13 cublaslt cublasLt
stub curand libcurand.so.10 curand curand
stub nvrtc libnvrtc.so.13 nvrtc nvrtc
ln -sf "$cudart" "$dir/lib/libcudart.so"
ln -sf "$cudart" "$dir/lib/libcudart.so.13"
echo "cuda-link-stubs: wrote $(cd "$dir/lib" && echo *.so) in $dir/lib" >&2
