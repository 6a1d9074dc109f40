// prism device library: vectorized global memory access and cp.async.
//
// 16-byte accesses (uint4) are the widest single global load/store; callers
// must pass 16-byte aligned addresses (use the scalar path otherwise).
//
// cp.async (sm_80+) copies global -> shared without staging through
// registers. On older architectures the same functions fall back to a plain
// load followed by a shared-memory store, so code written against them
// compiles and runs everywhere (cp_async_commit / cp_async_wait become
// no-ops there, the copy having already completed).
#pragma once

#include "prism/common.cuh"

namespace prism {

// ---------------------------------------------------------------- 16-byte global access

// Load 16 bytes from global memory. `p` must be 16-byte aligned.
__device__ __forceinline__ uint4 load16(const void* p) { return *reinterpret_cast<const uint4*>(p); }

// Load 16 bytes through the read-only (non-coherent) cache: only for data that
// no thread writes during the kernel. `p` must be 16-byte aligned.
__device__ __forceinline__ uint4 load16_nc(const void* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }

// Store 16 bytes to global (or shared) memory. `p` must be 16-byte aligned.
__device__ __forceinline__ void store16(void* p, uint4 v) { *reinterpret_cast<uint4*>(p) = v; }

// Load vec16<T>::elems elements of T into `out` with one 16-byte access.
template <typename T>
__device__ __forceinline__ void load_vec16(const T* p, T (&out)[vec16<T>::elems]) {
  uint4 v = load16(p);
  const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
  for (int i = 0; i < vec16<T>::elems; ++i) out[i] = e[i];
}

// Store vec16<T>::elems elements of T from `in` with one 16-byte access.
template <typename T>
__device__ __forceinline__ void store_vec16(T* p, const T (&in)[vec16<T>::elems]) {
  uint4 v;
  T* e = reinterpret_cast<T*>(&v);
#pragma unroll
  for (int i = 0; i < vec16<T>::elems; ++i) e[i] = in[i];
  store16(p, v);
}

// True when `p` is aligned to `bytes` (a power of two).
__host__ __device__ __forceinline__ bool is_aligned(const void* p, unsigned bytes) {
  return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

// ---------------------------------------------------------------- cp.async

// Shared-memory address (the .shared state space) of a generic pointer.
__device__ __forceinline__ uint32_t smem_addr(const void* smem) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(smem));
}

// Copy 16 bytes global -> shared, bypassing L1 (cp.async.cg). When `pred` is
// false nothing is read (src-size 0) and the 16 shared bytes are zero-filled;
// `gmem` must still be some valid pointer value (e.g. the tensor's base).
// Both addresses must be 16-byte aligned.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool pred) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const int src_size = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_size)
               : "memory");
#else
  *reinterpret_cast<uint4*>(smem) = pred ? *reinterpret_cast<const uint4*>(gmem) : make_uint4(0, 0, 0, 0);
#endif
}

// An L2 cache policy (sm_80+; 0 elsewhere, where nothing uses it). Data read
// once (a decode GEMM's weights) is best loaded evict_first: it then replaces
// itself in L2 instead of lines other work still needs, or dirty lines whose
// eviction would cost a DRAM write (e.g. the previous kernel's outputs).
__device__ __forceinline__ uint64_t l2_evict_first_policy() {
  uint64_t policy = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
#endif
  return policy;
}

// cp_async16 under an L2 cache policy (from l2_evict_first_policy).
__device__ __forceinline__ void cp_async16_policy(void* smem, const void* gmem, bool pred, uint64_t policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const int src_size = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(smem_addr(smem)),
               "l"(gmem), "r"(src_size), "l"(policy)
               : "memory");
#else
  (void)policy;
  cp_async16(smem, gmem, pred);
#endif
}

// Copy 4 bytes global -> shared (cp.async.ca), zero-filling when !pred.
// Both addresses must be 4-byte aligned.
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, bool pred) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const int src_size = pred ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
               "r"(src_size)
               : "memory");
#else
  *reinterpret_cast<uint32_t*>(smem) = pred ? *reinterpret_cast<const uint32_t*>(gmem) : 0u;
#endif
}

// Close the current group of cp.async operations issued by this thread.
__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Wait until at most N of this thread's committed groups are still in flight.
// Only orders this thread's copies: follow with __syncthreads() before other
// threads read the data.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  static_assert(N >= 0, "cp_async_wait<N>: N must be >= 0");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// ---------------------------------------------------------------- tile loaders

namespace detail {
// Up to vec16<T>::elems elements src[0..n) into a 16-byte smem chunk, zeros
// after. 4-byte elements go through cp.async (4 bytes each, zero-filled past
// n), 16-bit ones through registers.
template <typename T>
__device__ __forceinline__ void copy_partial(T* dst, const T* src, int n) {
  constexpr int VEC = vec16<T>::elems;
  if constexpr (sizeof(T) == 4) {
#pragma unroll
    for (int e = 0; e < VEC; ++e) cp_async4(dst + e, e < n ? src + e : src, e < n);
  } else {
    T v[VEC];
#pragma unroll
    for (int e = 0; e < VEC; ++e) v[e] = e < n ? src[e] : from_float<T>(0.0f);
    store_vec16(dst, v);
  }
}

// One 16-byte chunk of vec16<T>::elems elements, of which `n` (<= elems, may
// be <= 0) are valid. VECTOR: full chunks by cp.async (src 16-byte
// aligned), else element by element. STREAM: full chunks are copied L2
// evict_first (`policy`). `base`: a valid pointer for zero-fill copies.
template <typename T, bool VECTOR, bool STREAM = false>
__device__ __forceinline__ void load_chunk(T* dst, const T* src, int n, const T* base, uint64_t policy = 0) {
  constexpr int VEC = vec16<T>::elems;
  if (VECTOR) {
    if (n >= VEC && STREAM)
      cp_async16_policy(dst, src, true, policy);
    else if (n >= VEC)
      cp_async16(dst, src, true);
    else if (n <= 0)
      cp_async16(dst, base, false);  // zero-fill, reads nothing
    else
      copy_partial(dst, src, n);  // straddles the edge
  } else {
    copy_partial(dst, src, n <= 0 ? 0 : (n >= VEC ? VEC : n));
  }
}
}  // namespace detail

}  // namespace prism
