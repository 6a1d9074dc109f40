// prism device library: the Tensor Memory Accelerator (sm_90) and the
// mbarriers its copies complete on, for WgmmaGemm's TMA main loop
// (wgmma.cuh, mainloop_tma / mainloop_pair_tma).
//
// A tensor map describes a row-major 2-D global tensor and the box one
// copy moves (here 64 columns of 16-bit elements, 128 bytes, in the
// 128-byte swizzle the wgmma descriptors read). The host encodes it
// (cuTensorMapEncodeTiled; the launchers in prism and in the generated
// runtime) and passes it as a `const __grid_constant__ prism::TensorMap`
// kernel parameter; a copy names it by its generic address.
#pragma once

#include "prism/common.cuh"
#include "prism/memory.cuh"

namespace prism {

// CUtensorMap's layout (opaque, 128 bytes, 64-byte aligned), without
// requiring cuda.h in generated sources.
struct alignas(64) TensorMap {
  unsigned long long opaque[16];
};

namespace tma {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialized barriers visible to the async proxy (the copies).
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// Spins until phase `parity` of `bar` completed.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives on `bar` and expects `bytes` more from copies before its phase
// completes.
__device__ __forceinline__ void mbar_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Copies the box of `map` at element coordinates (c0 innermost, c1) into
// shared memory at `dst` (1024-byte aligned for the 128-byte swizzle),
// completing its bytes on `bar`. Out-of-bounds elements are zeros (the
// box's bytes are counted in full).
__device__ __forceinline__ void load_2d(uint32_t dst, const TensorMap& map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}
#endif

}  // namespace tma
}  // namespace prism
