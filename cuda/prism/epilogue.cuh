// prism device library: small epilogue functors for TileGemm::for_each.
//
// A transform maps (row, col, value) -> value, with row/col tile-local as
// for_each passes them; a sink consumes (row, col, value). Chain them with
// prism::epilogue(transform..., sink):
//
//   g.for_each(prism::epilogue(prism::Scale{alpha}, prism::RowScale{s_inv_rms},
//                              prism::StoreTo<__half>{C + m0 * ldc + n0, ldc, M - m0, N - n0}));
#pragma once

#include "prism/common.cuh"

namespace prism {

// value
struct Identity {
  __device__ __forceinline__ float operator()(int, int, float v) const { return v; }
};

// value * s
struct Scale {
  float s;
  __device__ __forceinline__ float operator()(int, int, float v) const { return v * s; }
};

// value * scale[row]: a per-row factor (e.g. RMSNorm's 1/rms), indexed by the
// tile-local row; typically points into shared memory.
struct RowScale {
  const float* scale;
  __device__ __forceinline__ float operator()(int row, int, float v) const { return v * scale[row]; }
};

// value * scale[col]: a per-column factor indexed by the tile-local column.
struct ColScale {
  const float* scale;
  __device__ __forceinline__ float operator()(int, int col, float v) const { return v * scale[col]; }
};

// Sink: ptr[row * ld + col] = T(value) for row < m_valid, col < n_valid
// (ptr already offset to the tile's origin).
template <typename T>
struct StoreTo {
  T* ptr;
  long long ld;
  int m_valid, n_valid;
  __device__ __forceinline__ void operator()(int row, int col, float v) const {
    if (row < m_valid && col < n_valid) ptr[row * ld + col] = from_float<T>(v);
  }
};

// Sink: ptr[row * ld + col] += value with atomicAdd (f32), for split-K
// partial sums; predicated like StoreTo.
struct AtomicAddTo {
  float* ptr;
  long long ld;
  int m_valid, n_valid;
  __device__ __forceinline__ void operator()(int row, int col, float v) const {
    if (row < m_valid && col < n_valid) atomicAdd(ptr + row * ld + col, v);
  }
};

// A chain of transforms ending in a sink: Chain<Sink> calls the sink,
// Chain<T0, Rest...> applies T0 and passes the value on.
template <class... Fs>
struct Chain;

template <class Sink>
struct Chain<Sink> {
  Sink sink;
  __device__ __forceinline__ void operator()(int row, int col, float v) const { sink(row, col, v); }
};

template <class F, class... Rest>
struct Chain<F, Rest...> {
  F f;
  Chain<Rest...> rest;
  __device__ __forceinline__ void operator()(int row, int col, float v) const { rest(row, col, f(row, col, v)); }
};

// epilogue(t1, t2, ..., sink): a functor for for_each that applies the
// transforms in order and hands the result to the sink.
template <class... Fs>
__device__ __forceinline__ Chain<Fs...> epilogue(Fs... fs) {
  return Chain<Fs...>{fs...};
}

}  // namespace prism
