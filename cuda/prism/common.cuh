// prism device library: common definitions included by every generated kernel.
//
// Generated `.cu` files include <prism/common.cuh>; the headers under cuda/
// are embedded into the prism library (see build.rs) and written next to the
// generated code before nvcc runs, so a downstream build needs no checkout.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

// A kernel launched as clusters of X x Y x Z blocks (thread block
// clusters, sm_90+). Compiled for an older architecture the attribute is
// left out (nvcc rejects it there); such kernels trap there and the tuner
// offers them only where clusters exist.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define PRISM_CLUSTER_DIMS(X, Y, Z)
#else
#define PRISM_CLUSTER_DIMS(X, Y, Z) __cluster_dims__(X, Y, Z)
#endif

namespace prism {

// Integer ceiling division for grid and tile counts.
__host__ __device__ constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

// The larger of two compile-time sizes (shared-memory byte counts).
__host__ __device__ constexpr int cmax(int a, int b) { return a > b ? a : b; }

// Element type conversions to and from the f32 accumulator type.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Elements of T in one 16-byte vector access.
template <typename T> struct vec16 {
  static constexpr int elems = 16 / sizeof(T);
};

}  // namespace prism
