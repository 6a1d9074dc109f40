// prism device library: warp-level tensor core primitives (sm_80+).
//
// ldmatrix loads 8x8 matrices of 16-bit elements from shared memory into the
// register fragments that mma.sync expects. For .x4 every lane l passes the
// address of one 16-byte row: lanes 8j..8j+7 give the 8 rows of matrix j, and
// register r[j] receives matrix j. .trans transposes each 8x8 matrix.
//
// mma_m16n8k16: D[16x8] += A[16x16] * B[16x8], f16/bf16 inputs, f32 accumulation.
// Fragment layout (g = lane / 4, t = lane % 4):
//   a[0]: A[g][2t..2t+1]     a[1]: A[g+8][2t..2t+1]
//   a[2]: A[g][2t+8..2t+9]   a[3]: A[g+8][2t+8..2t+9]
//   b[0]: B[2t..2t+1][g]     b[1]: B[2t+8..2t+9][g]
//   c[0..1]: C[g][2t..2t+1]  c[2..3]: C[g+8][2t..2t+1]
//
// On architectures below sm_80 these functions compile to a trap: callers
// (e.g. gemm.cuh) select a SIMT path there instead.
#pragma once

#include "prism/common.cuh"
#include "prism/memory.cuh"

namespace prism {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define PRISM_HAS_MMA_SM80 1
#else
#define PRISM_HAS_MMA_SM80 0
#endif

// ---------------------------------------------------------------- ldmatrix
// Overloads taking a .shared address (uint32_t, see smem_addr) avoid a
// generic->shared conversion per call in hot loops.

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t smem) {
#if PRISM_HAS_MMA_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem));
#else
  (void)smem;
  r[0] = r[1] = r[2] = r[3] = 0;
  __trap();
#endif
}

__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], uint32_t smem) {
#if PRISM_HAS_MMA_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem));
#else
  (void)smem;
  r[0] = r[1] = 0;
  __trap();
#endif
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t smem) {
#if PRISM_HAS_MMA_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem));
#else
  (void)smem;
  r[0] = r[1] = r[2] = r[3] = 0;
  __trap();
#endif
}

__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], uint32_t smem) {
#if PRISM_HAS_MMA_SM80
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem));
#else
  (void)smem;
  r[0] = r[1] = 0;
  __trap();
#endif
}

// Generic-pointer versions: `smem` must point into shared memory, 16-byte aligned.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* smem) { ldmatrix_x4(r, smem_addr(smem)); }
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* smem) { ldmatrix_x2(r, smem_addr(smem)); }
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  ldmatrix_x4_trans(r, smem_addr(smem));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* smem) {
  ldmatrix_x2_trans(r, smem_addr(smem));
}

// ---------------------------------------------------------------- mma.sync

// acc[0..3] += A * B for one m16n8k16 tile; T is __half or __nv_bfloat16.
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&acc)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

template <>
__device__ __forceinline__ void mma_m16n8k16<__half>(float (&acc)[4], const uint32_t (&a)[4],
                                                     const uint32_t (&b)[2]) {
#if PRISM_HAS_MMA_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  (void)acc, (void)a, (void)b;
  __trap();
#endif
}

template <>
__device__ __forceinline__ void mma_m16n8k16<__nv_bfloat16>(float (&acc)[4], const uint32_t (&a)[4],
                                                            const uint32_t (&b)[2]) {
#if PRISM_HAS_MMA_SM80
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  (void)acc, (void)a, (void)b;
  __trap();
#endif
}

}  // namespace prism
