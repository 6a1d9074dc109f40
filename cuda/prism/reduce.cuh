// prism device library: warp and block reductions of f32 values.
//
//   float s = prism::block_reduce<prism::SumOp, 256>(v, scratch);  // all threads get s
//   float m = prism::warp_reduce<prism::MaxOp>(v);                 // all lanes get m
//
// An Op is a struct with `static float identity()` and
// `float operator()(float, float) const`, associative and commutative.
#pragma once

#include "prism/common.cuh"

namespace prism {

struct SumOp {
  __device__ __forceinline__ static float identity() { return 0.0f; }
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};

struct MaxOp {
  __device__ __forceinline__ static float identity() { return -INFINITY; }
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Reduce `v` over the 32 lanes of a warp (butterfly with shfl_xor); every lane
// receives the result. All 32 lanes must call it.
template <class Op>
__device__ __forceinline__ float warp_reduce(float v) {
  Op op;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Reduce `v` over the THREADS threads of a 1-D block (blockDim.x == THREADS);
// every thread receives the result. All threads must call it.
// `scratch`: at least 32 floats of shared memory (THREADS / 32 are used).
// It starts and ends with __syncthreads(), so it can be called several times
// in a row with the same scratch, and scratch may be reused right after it.
template <class Op, int THREADS>
__device__ __forceinline__ float block_reduce(float v, float* scratch) {
  static_assert(THREADS % 32 == 0 && THREADS >= 32 && THREADS <= 1024,
                "block_reduce: THREADS must be a multiple of 32 in [32, 1024]");
  constexpr int WARPS = THREADS / 32;
  Op op;
  v = warp_reduce<Op>(v);
  if constexpr (WARPS == 1) {
    return v;
  } else {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    __syncthreads();  // earlier readers of scratch are done
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    // Every thread reads the WARPS partials (a broadcast) and folds them in
    // the same order, so all threads return bit-identical results.
    float r = scratch[0];
#pragma unroll
    for (int w = 1; w < WARPS; ++w) r = op(r, scratch[w]);
    __syncthreads();  // scratch free again for the caller
    return r;
  }
}

}  // namespace prism
