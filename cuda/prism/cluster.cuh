// prism device library: thread block clusters (sm_90+) and their
// distributed shared memory, for the combines that add a tile's splits
// inside one cluster (FlashClusterCombine, GemmAccumulators'
// add_cluster_sums). Below sm_90 every function traps: such kernels are
// compiled there (the fatbin holds every arch) but never dispatched
// (`tiles::runs_on`).
#pragma once

#include "prism/common.cuh"
#include "prism/memory.cuh"

namespace prism {
namespace cluster {

// Every thread of every block of the cluster: arrive (releasing this
// thread's shared-memory writes to the cluster), then wait for the rest
// (acquiring theirs).
__device__ __forceinline__ void sync() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#else
  __trap();
#endif
}

// This block's rank in its cluster (x fastest, then y, then z).
__device__ __forceinline__ uint32_t rank() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
#else
  __trap();
  return 0;
#endif
}

// The distributed-shared-memory address of block `r`'s copy of this
// block's shared-memory address `addr` (a `smem_addr`).
__device__ __forceinline__ uint32_t map(uint32_t addr, uint32_t r) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t out;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(out) : "r"(addr), "r"(r));
  return out;
#else
  (void)addr, (void)r;
  __trap();
  return 0;
#endif
}

// One f32 at a distributed-shared-memory address (from `map`).
__device__ __forceinline__ float load(uint32_t addr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  float v;
  asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(addr) : "memory");
  return v;
#else
  (void)addr;
  __trap();
  return 0.0f;
#endif
}

// Four f32 at a 16-byte aligned distributed-shared-memory address.
__device__ __forceinline__ float4 load4(uint32_t addr) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(addr)
               : "memory");
  return v;
#else
  (void)addr;
  __trap();
  return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#endif
}

}  // namespace cluster
}  // namespace prism
