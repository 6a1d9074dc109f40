// prism device library: block-level GEMM on Hopper's warpgroup tensor cores
// (wgmma, sm_90a).
//
//   using G = prism::WgmmaGemm<__half, 128, 128, 4>;
//   extern __shared__ char smem[];                      // >= G::SMEM_BYTES
//   G g;                                                // launched with G::THREADS threads
//   g.clear();
//   g.mainloop(A + m0 * lda, lda, M - m0, B + n0, ldb, N - n0, 0, K, smem);
//   g.for_each([&](int r, int c, float v) { ... });     // as TileGemm
//
// The same interface as TileGemm (gemm.cuh), for prefill-sized tiles: one
// warpgroup (4 warps) per 64 rows of the BM x BN tile, each issuing
// wgmma.mma_async m64nBNk16 with f32 accumulators in registers, A and B read
// by the tensor cores straight from shared memory. K walks in tiles of 64
// (one 128-byte row of 16-bit elements) through a STAGES-deep ring filled by
// cp.async (16-byte chunks, the same edge predication as TileGemm's loader).
//
// Shared-memory layouts (each stage 1024-byte aligned), both in the
// 128-byte swizzle of the wgmma descriptors (16-byte chunk c of 128-byte row
// r at chunk c ^ (r % 8)):
//   * A, K-major: BM rows of 64 k, 128 bytes each; 8-row groups 1024 bytes
//     apart (the descriptor's stride offset). A k16 step starts 32 bytes on.
//   * B, N-major (row-major B[k][n], the transposed-B form): BN / 64 atoms of
//     64 k rows x 64 n (128 bytes per row), atoms 8 KiB apart (the leading
//     offset), 8-row groups 1024 bytes apart (the stride offset). A k16 step
//     starts 2 KiB on.
//
// Pipeline: tile t's wgmmas are committed as one group and left in flight
// while the next iteration waits for its data; the copies run STAGES - 2
// tiles ahead, into the buffer whose wgmmas the previous iteration's
// wait_group 1 retired (every warpgroup, by the barrier in between).
// cp.async writes go through the generic proxy and the tensor cores read
// through the async proxy: each thread fences (fence.proxy.async) after its
// copies land and before the barrier.
//
// Only for 16-bit elements on sm_90a (`__CUDA_ARCH_FEAT_SM90_ALL`); compiled
// for anything else its main loops trap, so the tuner offers it only on
// architectures that have warpgroup MMA.
#pragma once

#include "prism/common.cuh"
#include "prism/gemm.cuh"
#include "prism/memory.cuh"
#include "prism/tma.cuh"

#include <type_traits>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define PRISM_HAS_WGMMA 1
#else
#define PRISM_HAS_WGMMA 0
#endif

namespace prism {
namespace wgmma {

// A shared-memory matrix descriptor with the 128-byte swizzle: start
// address, leading and stride byte offsets (16-byte units, 14 bits each).
__device__ __forceinline__ uint64_t desc_sw128(uint32_t addr, uint32_t leading, uint32_t stride) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((leading & 0x3FFFF) >> 4) << 16) |
         ((uint64_t)((stride & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}

#if PRISM_HAS_WGMMA
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Orders this thread's generic-proxy shared-memory writes (cp.async, st)
// before later async-proxy reads (wgmma) that a barrier makes wait for them.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// The 32-byte swizzle (a 16-column N-major B: 32-byte rows, 8-row groups
// `stride` bytes apart).
__device__ __forceinline__ uint64_t desc_sw32(uint32_t addr, uint32_t leading, uint32_t stride) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((leading & 0x3FFFF) >> 4) << 16) |
         ((uint64_t)((stride & 0x3FFFF) >> 4) << 32) | (3ull << 62);
}

// d[2][4] += A(desc_a) * B(desc_b), m64n16k16, TY: f16 or bf16.
#define PRISM_WGMMA_M64N16K16(TY, d, desc_a, desc_b) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n16k16.f32." TY "." TY " " \
      "{%0, %1, %2, %3, %4, %5, %6, %7}, %8, %9, p, 1, 1, 0, 1;\n}\n" \
      : "+f"((d)[0][0]), "+f"((d)[0][1]), "+f"((d)[0][2]), "+f"((d)[0][3]), \
        "+f"((d)[1][0]), "+f"((d)[1][1]), "+f"((d)[1][2]), "+f"((d)[1][3]) \
      : "l"(desc_a), "l"(desc_b), "r"(1))

// d[8][4] += A(desc_a) * B(desc_b), m64n64k16, TY: f16 or bf16.
#define PRISM_WGMMA_M64N64K16(TY, d, desc_a, desc_b) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " " \
      "{" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" \
      "}, %32, %33, p, 1, 1, 0, 1;\n}\n" \
      : "+f"((d)[0][0]), "+f"((d)[0][1]), "+f"((d)[0][2]), "+f"((d)[0][3]), \
        "+f"((d)[1][0]), "+f"((d)[1][1]), "+f"((d)[1][2]), "+f"((d)[1][3]), \
        "+f"((d)[2][0]), "+f"((d)[2][1]), "+f"((d)[2][2]), "+f"((d)[2][3]), \
        "+f"((d)[3][0]), "+f"((d)[3][1]), "+f"((d)[3][2]), "+f"((d)[3][3]), \
        "+f"((d)[4][0]), "+f"((d)[4][1]), "+f"((d)[4][2]), "+f"((d)[4][3]), \
        "+f"((d)[5][0]), "+f"((d)[5][1]), "+f"((d)[5][2]), "+f"((d)[5][3]), \
        "+f"((d)[6][0]), "+f"((d)[6][1]), "+f"((d)[6][2]), "+f"((d)[6][3]), \
        "+f"((d)[7][0]), "+f"((d)[7][1]), "+f"((d)[7][2]), "+f"((d)[7][3]) \
      : "l"(desc_a), "l"(desc_b), "r"(1))

// d0[8][4] (columns 0-63) and d1[8][4] (columns 64-127) += A(desc_a) * B(desc_b),
// m64n128k16, TY: f16 or bf16: one GEMM's 128 columns in two halves, or two
// GEMMs sharing A whose B tiles are adjacent atoms, as one instruction.
#define PRISM_WGMMA_M64N128K16_PAIR(TY, d0, d1, desc_a, desc_b) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " " \
      "{" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63" \
      "}, %64, %65, p, 1, 1, 0, 1;\n}\n" \
      : "+f"((d0)[0][0]), "+f"((d0)[0][1]), "+f"((d0)[0][2]), "+f"((d0)[0][3]), \
        "+f"((d0)[1][0]), "+f"((d0)[1][1]), "+f"((d0)[1][2]), "+f"((d0)[1][3]), \
        "+f"((d0)[2][0]), "+f"((d0)[2][1]), "+f"((d0)[2][2]), "+f"((d0)[2][3]), \
        "+f"((d0)[3][0]), "+f"((d0)[3][1]), "+f"((d0)[3][2]), "+f"((d0)[3][3]), \
        "+f"((d0)[4][0]), "+f"((d0)[4][1]), "+f"((d0)[4][2]), "+f"((d0)[4][3]), \
        "+f"((d0)[5][0]), "+f"((d0)[5][1]), "+f"((d0)[5][2]), "+f"((d0)[5][3]), \
        "+f"((d0)[6][0]), "+f"((d0)[6][1]), "+f"((d0)[6][2]), "+f"((d0)[6][3]), \
        "+f"((d0)[7][0]), "+f"((d0)[7][1]), "+f"((d0)[7][2]), "+f"((d0)[7][3]), \
        "+f"((d1)[0][0]), "+f"((d1)[0][1]), "+f"((d1)[0][2]), "+f"((d1)[0][3]), \
        "+f"((d1)[1][0]), "+f"((d1)[1][1]), "+f"((d1)[1][2]), "+f"((d1)[1][3]), \
        "+f"((d1)[2][0]), "+f"((d1)[2][1]), "+f"((d1)[2][2]), "+f"((d1)[2][3]), \
        "+f"((d1)[3][0]), "+f"((d1)[3][1]), "+f"((d1)[3][2]), "+f"((d1)[3][3]), \
        "+f"((d1)[4][0]), "+f"((d1)[4][1]), "+f"((d1)[4][2]), "+f"((d1)[4][3]), \
        "+f"((d1)[5][0]), "+f"((d1)[5][1]), "+f"((d1)[5][2]), "+f"((d1)[5][3]), \
        "+f"((d1)[6][0]), "+f"((d1)[6][1]), "+f"((d1)[6][2]), "+f"((d1)[6][3]), \
        "+f"((d1)[7][0]), "+f"((d1)[7][1]), "+f"((d1)[7][2]), "+f"((d1)[7][3]) \
      : "l"(desc_a), "l"(desc_b), "r"(1))

// d0[16][4] (columns 0-127) and d1[16][4] (columns 128-255) += A(desc_a) * B(desc_b),
// m64n256k16, TY: f16 or bf16: one GEMM's 256 columns in two halves, or two
// GEMMs sharing A whose B tiles are adjacent atoms, as one instruction.
#define PRISM_WGMMA_M64N256K16_PAIR(TY, d0, d1, desc_a, desc_b) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n256k16.f32." TY "." TY " " \
      "{" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127" \
      "}, %128, %129, p, 1, 1, 0, 1;\n}\n" \
      : "+f"((d0)[0][0]), "+f"((d0)[0][1]), "+f"((d0)[0][2]), "+f"((d0)[0][3]), \
        "+f"((d0)[1][0]), "+f"((d0)[1][1]), "+f"((d0)[1][2]), "+f"((d0)[1][3]), \
        "+f"((d0)[2][0]), "+f"((d0)[2][1]), "+f"((d0)[2][2]), "+f"((d0)[2][3]), \
        "+f"((d0)[3][0]), "+f"((d0)[3][1]), "+f"((d0)[3][2]), "+f"((d0)[3][3]), \
        "+f"((d0)[4][0]), "+f"((d0)[4][1]), "+f"((d0)[4][2]), "+f"((d0)[4][3]), \
        "+f"((d0)[5][0]), "+f"((d0)[5][1]), "+f"((d0)[5][2]), "+f"((d0)[5][3]), \
        "+f"((d0)[6][0]), "+f"((d0)[6][1]), "+f"((d0)[6][2]), "+f"((d0)[6][3]), \
        "+f"((d0)[7][0]), "+f"((d0)[7][1]), "+f"((d0)[7][2]), "+f"((d0)[7][3]), \
        "+f"((d0)[8][0]), "+f"((d0)[8][1]), "+f"((d0)[8][2]), "+f"((d0)[8][3]), \
        "+f"((d0)[9][0]), "+f"((d0)[9][1]), "+f"((d0)[9][2]), "+f"((d0)[9][3]), \
        "+f"((d0)[10][0]), "+f"((d0)[10][1]), "+f"((d0)[10][2]), "+f"((d0)[10][3]), \
        "+f"((d0)[11][0]), "+f"((d0)[11][1]), "+f"((d0)[11][2]), "+f"((d0)[11][3]), \
        "+f"((d0)[12][0]), "+f"((d0)[12][1]), "+f"((d0)[12][2]), "+f"((d0)[12][3]), \
        "+f"((d0)[13][0]), "+f"((d0)[13][1]), "+f"((d0)[13][2]), "+f"((d0)[13][3]), \
        "+f"((d0)[14][0]), "+f"((d0)[14][1]), "+f"((d0)[14][2]), "+f"((d0)[14][3]), \
        "+f"((d0)[15][0]), "+f"((d0)[15][1]), "+f"((d0)[15][2]), "+f"((d0)[15][3]), \
        "+f"((d1)[0][0]), "+f"((d1)[0][1]), "+f"((d1)[0][2]), "+f"((d1)[0][3]), \
        "+f"((d1)[1][0]), "+f"((d1)[1][1]), "+f"((d1)[1][2]), "+f"((d1)[1][3]), \
        "+f"((d1)[2][0]), "+f"((d1)[2][1]), "+f"((d1)[2][2]), "+f"((d1)[2][3]), \
        "+f"((d1)[3][0]), "+f"((d1)[3][1]), "+f"((d1)[3][2]), "+f"((d1)[3][3]), \
        "+f"((d1)[4][0]), "+f"((d1)[4][1]), "+f"((d1)[4][2]), "+f"((d1)[4][3]), \
        "+f"((d1)[5][0]), "+f"((d1)[5][1]), "+f"((d1)[5][2]), "+f"((d1)[5][3]), \
        "+f"((d1)[6][0]), "+f"((d1)[6][1]), "+f"((d1)[6][2]), "+f"((d1)[6][3]), \
        "+f"((d1)[7][0]), "+f"((d1)[7][1]), "+f"((d1)[7][2]), "+f"((d1)[7][3]), \
        "+f"((d1)[8][0]), "+f"((d1)[8][1]), "+f"((d1)[8][2]), "+f"((d1)[8][3]), \
        "+f"((d1)[9][0]), "+f"((d1)[9][1]), "+f"((d1)[9][2]), "+f"((d1)[9][3]), \
        "+f"((d1)[10][0]), "+f"((d1)[10][1]), "+f"((d1)[10][2]), "+f"((d1)[10][3]), \
        "+f"((d1)[11][0]), "+f"((d1)[11][1]), "+f"((d1)[11][2]), "+f"((d1)[11][3]), \
        "+f"((d1)[12][0]), "+f"((d1)[12][1]), "+f"((d1)[12][2]), "+f"((d1)[12][3]), \
        "+f"((d1)[13][0]), "+f"((d1)[13][1]), "+f"((d1)[13][2]), "+f"((d1)[13][3]), \
        "+f"((d1)[14][0]), "+f"((d1)[14][1]), "+f"((d1)[14][2]), "+f"((d1)[14][3]), \
        "+f"((d1)[15][0]), "+f"((d1)[15][1]), "+f"((d1)[15][2]), "+f"((d1)[15][3]) \
      : "l"(desc_a), "l"(desc_b), "r"(1))

// g0 += A * B0 and g1 += A * B1 for one k16 step of a warpgroup, B1's
// atoms right after B0's (one m64n(2 BN)k16).
template <typename T, int BN>
__device__ __forceinline__ void mma_pair(float (&d0)[BN / 8][4], float (&d1)[BN / 8][4], uint64_t desc_a,
                                         uint64_t desc_b) {
  static_assert(BN == 64 || BN == 128, "wgmma::mma_pair: BN must be 64 or 128");
  if constexpr (std::is_same<T, __half>::value) {
    if constexpr (BN == 64) PRISM_WGMMA_M64N128K16_PAIR("f16", d0, d1, desc_a, desc_b);
    if constexpr (BN == 128) PRISM_WGMMA_M64N256K16_PAIR("f16", d0, d1, desc_a, desc_b);
  } else {
    if constexpr (BN == 64) PRISM_WGMMA_M64N128K16_PAIR("bf16", d0, d1, desc_a, desc_b);
    if constexpr (BN == 128) PRISM_WGMMA_M64N256K16_PAIR("bf16", d0, d1, desc_a, desc_b);
  }
}

// acc[BN / 8][4] += A * B for one k16 step of a warpgroup.
template <typename T, int BN>
__device__ __forceinline__ void mma(float (&d)[BN / 8][4], uint64_t desc_a, uint64_t desc_b) {
  static_assert(BN == 16 || BN == 64 || BN == 128 || BN == 256, "wgmma::mma: BN must be 16, 64, 128 or 256");
  if constexpr (BN == 16) {
    if constexpr (std::is_same<T, __half>::value)
      PRISM_WGMMA_M64N16K16("f16", d, desc_a, desc_b);
    else
      PRISM_WGMMA_M64N16K16("bf16", d, desc_a, desc_b);
  } else if constexpr (BN == 64) {
    if constexpr (std::is_same<T, __half>::value)
      PRISM_WGMMA_M64N64K16("f16", d, desc_a, desc_b);
    else
      PRISM_WGMMA_M64N64K16("bf16", d, desc_a, desc_b);
  } else {
    // The two halves of d's columns, as a pair's two accumulators.
    using Half = float[BN / 16][4];
    mma_pair<T, BN / 2>(*reinterpret_cast<Half*>(&d[0]), *reinterpret_cast<Half*>(&d[BN / 16]), desc_a, desc_b);
  }
}
#endif
}  // namespace wgmma

template <typename T, int BM, int BN, int STAGES>
struct WgmmaGemm : GemmAccumulators<WgmmaGemm<T, BM, BN, STAGES>, BN / 8> {
  // ------------------------------------------------------------ configuration
  using Element = T;
  static constexpr int BK = 64;  // one 128-byte swizzle row of 16-bit elements
  static constexpr int TILE_M = BM, TILE_N = BN, TILE_K = BK, NUM_STAGES = STAGES;
  static constexpr int WARPGROUPS = BM / 64;
  static constexpr int THREADS = WARPGROUPS * 128;
  // Every thread holds sums; a split's sums staged for a cluster's combine.
  static constexpr int SUM_THREADS = THREADS;
  static constexpr int SPLIT_STAGE_BYTES = BM * BN * (int)sizeof(float);
  static constexpr int VEC = 8;  // elements per 16-byte chunk
  static constexpr int A_STAGE = BM * BK * 2;  // bytes
  static constexpr int B_STAGE = BK * BN * 2;
  static constexpr int B_ATOM = BK * 128;  // bytes of one 64-column atom of B
  // The stages start on a 1024-byte boundary (the swizzle's period): room
  // to align the buffer given.
  static constexpr int ALIGN = 1024;
  static constexpr int SMEM_BYTES = STAGES * (A_STAGE + B_STAGE) + ALIGN;
  static constexpr int PAIR_SMEM_BYTES = STAGES * (A_STAGE + 2 * B_STAGE) + ALIGN;
  // Low-rank side product (mainloop_side; low_rank.cuh): the side tile is
  // a third buffer per stage (2 KiB, 32-byte swizzle: the stages stay
  // 1024-byte aligned), read by one more wgmma (m64n16k16) per k16 step
  // beside the GEMM's, in the same commit group: each warp holds the side
  // sums of its 16 rows.
  using SideTile = prism::SideTile<T, BK, THREADS, true>;
  static constexpr int SIDE_PARTS = 1;
  using LowRank = LowRankEpilogue<T, BM, BN, SIDE_PARTS>;
  static constexpr int SIDE_PIPE_BYTES = STAGES * (A_STAGE + B_STAGE + SideTile::STAGE_BYTES) + ALIGN;
  static constexpr int SIDE_SMEM_BYTES = cmax(SIDE_PIPE_BYTES, LowRank::SMEM_BYTES);
  // mainloop (or mainloop_tma), then add_low_rank_input.
  static constexpr int INPUT_RANK_SMEM_BYTES = cmax(SMEM_BYTES, LowRank::INPUT_SMEM_BYTES);
  static_assert(SideTile::STAGE_BYTES % ALIGN == 0, "WgmmaGemm: the side tile keeps the stages aligned");
  static_assert(B_STAGE == (BN / 64) * B_ATOM, "WgmmaGemm: a B stage is whole atoms");
  // mainloop_pair's two GEMMs as one wgmma of 2 BN columns (BN 64, 128);
  // PRISM_WGMMA_PAIR_SEPARATE=1 (probes) issues one per GEMM instead.
#ifndef PRISM_WGMMA_PAIR_SEPARATE
#define PRISM_WGMMA_PAIR_SEPARATE 0
#endif
  static constexpr bool PAIR_AS_ONE = BN <= 128 && !PRISM_WGMMA_PAIR_SEPARATE;

  static_assert(sizeof(T) == 2, "WgmmaGemm: T must be __half or __nv_bfloat16");
  static_assert(BM % 64 == 0 && BM >= 64 && BM <= 256, "WgmmaGemm: BM must be 64, 128, 192 or 256");
  static_assert(BN == 64 || BN == 128 || BN == 256, "WgmmaGemm: BN must be 64, 128 or 256");
  static_assert(STAGES >= 3 && STAGES <= 8, "WgmmaGemm: STAGES must be in [3, 8]");

  using Accumulators = GemmAccumulators<WgmmaGemm, BN / 8>;
  using Accumulators::acc_;
  // The side product's sums (mainloop_side): columns 0-7, 8-15.
  float side_[2][4];

  // acc[BM,BN] += A[0:BM, k_begin:k_end] * B[k_begin:k_end, 0:BN], as
  // TileGemm::mainloop. `stream_b` is ignored: these tiles are for
  // prefill-sized m, where B is shared by the blocks of a column (and an
  // L2::cache_hint copy faulted as an illegal instruction in some of
  // these kernels on an H200 under nvcc 13.0).
  __device__ __forceinline__ void mainloop(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                           int n_valid, long long k_begin, long long k_end, char* smem,
                                           bool stream_b = false) {
    (void)stream_b;
    if (k_end <= k_begin) return;
    const bool vector = is_aligned(A, 16) && is_aligned(B, 16) && lda % VEC == 0 && ldb % VEC == 0 &&
                        k_begin % VEC == 0;
    if (vector)
      run<true, false, false>(this, this, nullptr, A, lda, m_valid, B, B, ldb, n_valid, k_begin, k_end, smem);
    else
      run<false, false, false>(this, this, nullptr, A, lda, m_valid, B, B, ldb, n_valid, k_begin, k_end, smem);
  }

  // As mainloop, and the side product from the same A tiles, as
  // TileGemm::mainloop_side (smem holds SIDE_SMEM_BYTES).
  __device__ __forceinline__ void mainloop_side(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                                int n_valid, const T* S, long long lds, int rank, long long k_begin,
                                                long long k_end, char* smem, bool stream_b = false) {
    (void)stream_b;
    detail::zero(side_);
    if (k_end <= k_begin) return;
    SideTile side(S, lds, rank, k_begin, k_end);
    const bool vector = is_aligned(A, 16) && is_aligned(B, 16) && lda % VEC == 0 && ldb % VEC == 0 &&
                        k_begin % VEC == 0 && side.vector_ok();
    if (vector)
      run<true, false, true>(this, this, &side, A, lda, m_valid, B, B, ldb, n_valid, k_begin, k_end, smem);
    else
      run<false, false, true>(this, this, &side, A, lda, m_valid, B, B, ldb, n_valid, k_begin, k_end, smem);
  }

  // acc += round_T(S) * B_op[0:rank, 0:n_valid], as TileGemm::add_low_rank.
  __device__ __forceinline__ void add_low_rank(const T* B, long long ldb, int rank, int n_valid, char* smem) {
    LowRank::apply(*this, B, ldb, rank, n_valid, smem);
  }

  // acc += S·B with S an input, as TileGemm::add_low_rank_input (smem
  // holds INPUT_RANK_SMEM_BYTES).
  __device__ __forceinline__ void add_low_rank_input(const T* S, long long lds, int m_valid, const T* B,
                                                     long long ldb, int rank, int n_valid, char* smem) {
    LowRank::apply_input(*this, S, lds, m_valid, B, ldb, rank, n_valid, smem);
  }

  // LowRankEpilogue's view of the side sums: f(part, row, col, value).
  template <class F>
  __device__ __forceinline__ void side_partials(F&& f) const {
    if (!holds_sums()) return;
    const int lane = threadIdx.x % 32;
    const int row0 = (threadIdx.x / 128) * 64 + ((threadIdx.x % 128) / 32) * 16 + lane / 4;
#pragma unroll
    for (int c = 0; c < 2; ++c)
#pragma unroll
      for (int e = 0; e < 4; ++e) f(0, row0 + (e / 2) * 8, c * 8 + (lane % 4) * 2 + e % 2, side_[c][e]);
  }

  // acc += sS[BM][16] * sB[16][BN] (shared memory, row strides lds, ldb).
  __device__ __forceinline__ void rank_update(const T* sS, int lds, const T* sB, int ldb) {
    if (!holds_sums()) return;
    const int row0 = (threadIdx.x / 128) * 64 + ((threadIdx.x % 128) / 32) * 16;
#pragma unroll
    for (int i = 0; i < BN / 8; ++i) detail::rank16_fragment<T>(acc_[i], sS, lds, sB, ldb, row0, i * 8);
  }

  // g0 += A * B0 and g1 += A * B1 in one pipeline, as TileGemm::mainloop_pair
  // (smem holds PAIR_SMEM_BYTES; `stream_b` ignored, as in mainloop).
  __device__ __forceinline__ static void mainloop_pair(WgmmaGemm& g0, WgmmaGemm& g1, const T* A, long long lda,
                                                       int m_valid, const T* B0, const T* B1, long long ldb,
                                                       int n_valid, long long k_begin, long long k_end, char* smem,
                                                       bool stream_b = false) {
    (void)stream_b;
    if (k_end <= k_begin) return;
    const bool vector = is_aligned(A, 16) && is_aligned(B0, 16) && is_aligned(B1, 16) && lda % VEC == 0 &&
                        ldb % VEC == 0 && k_begin % VEC == 0;
    if (vector)
      run<true, true, false>(&g0, &g1, nullptr, A, lda, m_valid, B0, B1, ldb, n_valid, k_begin, k_end, smem);
    else
      run<false, true, false>(&g0, &g1, nullptr, A, lda, m_valid, B0, B1, ldb, n_valid, k_begin, k_end, smem);
  }

  // Every consumer thread holds sums (a TMA kernel's producer warp, the
  // threads from THREADS on, holds none).
  __device__ __forceinline__ bool holds_sums() const { return threadIdx.x < THREADS; }

  // Calls f(i, e, row, col) for every accumulator element acc_[i][e] at its
  // tile position: warpgroup w's warp v holds rows 64w + 16v .. +15 in the
  // layout of an mma.sync m16n8 fragment per 8 columns (fragment i).
  template <class F>
  __device__ __forceinline__ void visit(F&& f) const {
    if (!holds_sums()) return;
    const int lane = threadIdx.x % 32;
    const int row0 = (threadIdx.x / 128) * 64 + ((threadIdx.x % 128) / 32) * 16 + lane / 4;
    const int col0 = (lane % 4) * 2;
#pragma unroll
    for (int i = 0; i < BN / 8; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) f(i, e, row0 + (e / 2) * 8, col0 + i * 8 + (e % 2));
  }

  // ------------------------------------------------------------ TMA
  // The main loops fed by the Tensor Memory Accelerator: the kernel runs
  // TMA_THREADS threads, THREADS consumers (the warpgroups, which only wait
  // for stages and issue wgmma) and one producer warp whose first lane
  // issues each stage's copies (one box of A, BN / 64 boxes of each B:
  // tma.cuh) STAGES tiles ahead. A stage's `full` mbarrier completes when
  // its bytes have landed, its `empty` mbarrier when every consumer's
  // wgmma on it retired. No block-wide barrier in the loop. The shared
  // layouts are mainloop's, so are the sums (the producer holds none).
  //
  // `ta` maps A as a row-major [M, K] tensor in boxes of 64 k x BM rows,
  // `tb*` map B as [K, N] in boxes of 64 n x 64 k, both with the 128-byte
  // swizzle; the tile starts at row m0 and column n0. The last K tile
  // ends at k_end only when k_end - k_begin is a multiple of BK or k_end
  // is K (the maps' zero fill makes that edge): a split-K range is whole
  // BK tiles but for the last split's. Every thread of the block
  // calls these; all have synchronized when they return. The launchers
  // encode the maps on the host (a pointer and row stride 16-byte aligned;
  // codegen::TensorMapPlan).
  static constexpr int TMA_THREADS = THREADS + 32;

  __device__ __forceinline__ void mainloop_tma(const TensorMap& ta, const TensorMap& tb, int m0, int n0,
                                               long long k_begin, long long k_end, char* smem) {
    run_tma<false, false>(this, this, ta, tb, tb, ta, m0, n0, k_begin, k_end, smem);
    __syncthreads();
  }

  // As mainloop_tma, and the low-rank side product (as mainloop_side) from
  // the same A tiles: `ts` maps the side operand as [K, r] in boxes of 16
  // columns x 64 k with the 32-byte swizzle (SideTile's layout; zeros past
  // r). smem holds SIDE_SMEM_BYTES.
  __device__ __forceinline__ void mainloop_side_tma(const TensorMap& ta, const TensorMap& tb, const TensorMap& ts,
                                                    int m0, int n0, long long k_begin, long long k_end, char* smem) {
    detail::zero(side_);
    run_tma<false, true>(this, this, ta, tb, tb, ts, m0, n0, k_begin, k_end, smem);
    __syncthreads();
  }

  __device__ __forceinline__ static void mainloop_pair_tma(WgmmaGemm& g0, WgmmaGemm& g1, const TensorMap& ta,
                                                           const TensorMap& tb0, const TensorMap& tb1, int m0, int n0,
                                                           long long k_begin, long long k_end, char* smem) {
    run_tma<true, false>(&g0, &g1, ta, tb0, tb1, ta, m0, n0, k_begin, k_end, smem);
    __syncthreads();
  }

 private:

#if PRISM_HAS_WGMMA
  // One stage's wgmmas, committed as one group: this warpgroup's A rows at
  // `sa`, the stage's B tiles from `sb` (then, SIDE, the side tile after
  // the B tile). Both main loops (cp.async and TMA) issue through this.
  template <bool PAIR, bool SIDE>
  __device__ __forceinline__ static void issue_stage(WgmmaGemm* g0, WgmmaGemm* g1, uint32_t sa, uint32_t sb) {
    wgmma::fence();
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      const uint64_t da = wgmma::desc_sw128(sa + kk * 32, 16, 1024);
      const uint64_t db = wgmma::desc_sw128(sb + kk * 2048, B_ATOM, 1024);
      // A pair's B1 atoms follow B0's at the same leading offset (B_STAGE
      // is BN / 64 atoms): one wgmma twice as wide.
      if constexpr (PAIR && PAIR_AS_ONE)
        wgmma::mma_pair<T, BN>(g0->acc_, g1->acc_, da, db);
      else
        wgmma::mma<T, BN>(g0->acc_, da, db);
      if constexpr (PAIR && !PAIR_AS_ONE)
        wgmma::mma<T, BN>(g1->acc_, da, wgmma::desc_sw128(sb + B_STAGE + kk * 2048, B_ATOM, 1024));
      // The side tile: 16 k rows (two 256-byte groups) per k16 step.
      if constexpr (SIDE) wgmma::mma<T, 16>(g0->side_, da, wgmma::desc_sw32(sb + B_STAGE + kk * 512, 256, 256));
    }
    wgmma::commit();
  }
#endif

  template <bool PAIR, bool SIDE>
  __device__ __forceinline__ static void run_tma(WgmmaGemm* g0, WgmmaGemm* g1, const TensorMap& ta,
                                                 const TensorMap& tb0, const TensorMap& tb1, const TensorMap& ts,
                                                 int m0, int n0, long long k_begin, long long k_end, char* smem) {
#if PRISM_HAS_WGMMA
    static_assert(!(PAIR && SIDE), "WgmmaGemm: a side product runs beside one GEMM");
    constexpr int stage_bytes = A_STAGE + (PAIR ? 2 : 1) * B_STAGE + (SIDE ? SideTile::STAGE_BYTES : 0);
    __shared__ __align__(8) uint64_t full[STAGES], empty[STAGES];
    const uint32_t raw = smem_addr(smem);
    const uint32_t base = (raw + ALIGN - 1) & ~(uint32_t)(ALIGN - 1);
    const int tiles = k_end > k_begin ? (int)((k_end - k_begin + BK - 1) / BK) : 0;
    if (threadIdx.x == 0) {
#pragma unroll
      for (int s = 0; s < STAGES; ++s) {
        tma::mbar_init(smem_addr(&full[s]), 1);
        tma::mbar_init(smem_addr(&empty[s]), THREADS);
      }
      tma::mbar_init_fence();
    }
    __syncthreads();
    if (threadIdx.x >= THREADS) {
      if (threadIdx.x == THREADS) {
        for (int t = 0; t < tiles; ++t) {
          const int st = t % STAGES;
          if (t >= STAGES) tma::mbar_wait(smem_addr(&empty[st]), ((t / STAGES) - 1) & 1);
          const uint32_t bar = smem_addr(&full[st]);
          const uint32_t sa = base + st * stage_bytes;
          const int k = (int)(k_begin + (long long)t * BK);
          tma::mbar_expect(bar, stage_bytes);
          tma::load_2d(sa, ta, k, m0, bar);
#pragma unroll
          for (int j = 0; j < BN / 64; ++j) tma::load_2d(sa + A_STAGE + j * B_ATOM, tb0, n0 + j * 64, k, bar);
          if constexpr (PAIR)
#pragma unroll
            for (int j = 0; j < BN / 64; ++j)
              tma::load_2d(sa + A_STAGE + B_STAGE + j * B_ATOM, tb1, n0 + j * 64, k, bar);
          if constexpr (SIDE) tma::load_2d(sa + A_STAGE + B_STAGE, ts, 0, k, bar);
        }
      }
      return;
    }
    const uint32_t a_off = (threadIdx.x / 128) * 64 * 128;  // this warpgroup's 64 rows
    for (int t = 0; t < tiles; ++t) {
      const int st = t % STAGES;
      tma::mbar_wait(smem_addr(&full[st]), (t / STAGES) & 1);
      issue_stage<PAIR, SIDE>(g0, g1, base + st * stage_bytes + a_off, base + st * stage_bytes + A_STAGE);
      wgmma::wait<1>();
      // Tile t - 1's wgmmas retired: its stage is free.
      if (t > 0) tma::mbar_arrive(smem_addr(&empty[(t - 1) % STAGES]));
    }
    wgmma::wait<0>();
#else
    (void)g0, (void)g1, (void)ta, (void)tb0, (void)tb1, (void)ts, (void)m0, (void)n0, (void)k_begin, (void)k_end;
    (void)smem;
    __trap();
#endif
  }

  // ------------------------------------------------------------ loading
  // Thread `tid` copies the A chunks of column tid % 8 in rows tid / 8 +
  // i * THREADS / 8, and the B chunks of column tid % (BN / 8) in k rows
  // tid / (BN / 8) + i * THREADS / (BN / 8): consecutive threads take
  // consecutive 16-byte chunks of a row (coalesced reads).
  static constexpr int A_RSTEP = THREADS / 8, A_ITERS = BM / A_RSTEP;
  static constexpr int B_ROW = BN / VEC, B_RSTEP = THREADS / B_ROW, B_ITERS = BK / B_RSTEP;
  static_assert(BM % A_RSTEP == 0 && THREADS % B_ROW == 0 && BK % B_RSTEP == 0,
                "WgmmaGemm: the threads must cover the A and B tiles in whole rows");

  struct Loader {
    const T* a;        // this thread's first A chunk of the next tile
    const T* b0;       // ... B chunk (first B, second B)
    const T* b1;
    const T* a_base;   // valid pointers for zero-fill copies
    const T* b_base;
    long long a_step;  // A_RSTEP rows of A
    long long b_step;  // B_RSTEP rows of B
    long long b_tile;  // BK rows of B
    int a_rows;        // valid rows from this thread's first A row
    int a_k_left;      // valid K elements from this thread's A chunk
    int b_k_left;      // valid K rows from this thread's first B row
    int b_n_left;      // valid N elements from this thread's B chunk
    uint32_t sa;       // this thread's first A chunk in a stage (bytes, swizzled)
    uint32_t sb;       // ... first B chunk, before the row swizzle
    int b_c, b_r0;     // B chunk column within its atom, first k row

    __device__ __forceinline__ Loader(const T* A, long long lda, int m_valid, const T* B0, const T* B1,
                                      long long ldb, int n_valid, long long k_begin, long long k_end) {
      const int tid = threadIdx.x;
      const int r0 = tid / 8, c = tid % 8;
      const int kr0 = tid / B_ROW, nc = tid % B_ROW;
      const int k_len = (int)(k_end - k_begin);
      a = A + (r0 * lda + k_begin + c * VEC);
      b0 = B0 + ((k_begin + kr0) * ldb + nc * VEC);
      b1 = B1 + ((k_begin + kr0) * ldb + nc * VEC);
      a_base = A, b_base = B0;
      a_step = A_RSTEP * lda, b_step = B_RSTEP * ldb, b_tile = BK * ldb;
      a_rows = m_valid - r0, a_k_left = k_len - c * VEC;
      b_k_left = k_len - kr0, b_n_left = n_valid - nc * VEC;
      // A_RSTEP is a multiple of 8: every row of this thread has the swizzle phase r0 % 8.
      sa = r0 * 128 + ((c ^ (r0 % 8)) << 4);
      b_c = nc % 8, b_r0 = kr0;
      sb = (nc / 8) * B_ATOM;
    }

    template <bool VECTOR>
    __device__ __forceinline__ void load_b(char* sB, const T* src) const {
#pragma unroll
      for (int i = 0; i < B_ITERS; ++i) {
        const int r = b_r0 + i * B_RSTEP;
        T* dst = reinterpret_cast<T*>(sB + sb + r * 128 + ((b_c ^ (r % 8)) << 4));
        detail::load_chunk<T, VECTOR>(dst, src, i * B_RSTEP < b_k_left ? b_n_left : 0, b_base);
        src += b_step;
      }
    }

    // Stage the next K tile (A, and one or two B tiles) and advance by BK.
    template <bool VECTOR, bool PAIR>
    __device__ __forceinline__ void load(char* sA, char* sB0, char* sB1) {
      const T* src = a;
#pragma unroll
      for (int i = 0; i < A_ITERS; ++i) {
        T* dst = reinterpret_cast<T*>(sA + sa + i * A_RSTEP * 128);
        detail::load_chunk<T, VECTOR>(dst, src, i * A_RSTEP < a_rows ? a_k_left : 0, a_base);
        src += a_step;
      }
      load_b<VECTOR>(sB0, b0);
      if constexpr (PAIR) load_b<VECTOR>(sB1, b1);
      a += BK, b0 += b_tile;
      if constexpr (PAIR) b1 += b_tile;
      a_k_left -= BK, b_k_left -= BK;
    }
  };

  // ------------------------------------------------------------ pipeline
  // g0 += A * B0 (and, PAIR, g1 += A * B1; SIDE, g0's side product from
  // `side`'s tiles); see the header comment.
  template <bool VECTOR, bool PAIR, bool SIDE>
  __device__ __forceinline__ static void run(WgmmaGemm* g0, WgmmaGemm* g1, SideTile* side, const T* A, long long lda,
                                             int m_valid, const T* B0, const T* B1, long long ldb, int n_valid,
                                             long long k_begin, long long k_end, char* smem) {
#if PRISM_HAS_WGMMA
    const uint32_t raw = smem_addr(smem);
    const uint32_t base = (raw + ALIGN - 1) & ~(uint32_t)(ALIGN - 1);
    char* s = smem + (base - raw);
    static_assert(!(PAIR && SIDE), "WgmmaGemm: a side product runs beside one GEMM");
    constexpr int stage_bytes = A_STAGE + (PAIR ? 2 : 1) * B_STAGE + (SIDE ? SideTile::STAGE_BYTES : 0);
    Loader ld(A, lda, m_valid, B0, B1, ldb, n_valid, k_begin, k_end);
    const int tiles = (int)((k_end - k_begin + BK - 1) / BK);
    const auto load = [&](int stage) {
      char* st = s + stage * stage_bytes;
      ld.template load<VECTOR, PAIR>(st, st + A_STAGE, st + A_STAGE + B_STAGE);
      if constexpr (SIDE) side->template load<VECTOR>(reinterpret_cast<T*>(st + A_STAGE + B_STAGE));
    };
    const uint32_t a_off = (threadIdx.x / 128) * 64 * 128;  // this warpgroup's 64 rows
#pragma unroll
    for (int p = 0; p < STAGES - 2; ++p) {
      if (p < tiles) load(p);
      cp_async_commit();
    }
    int read = 0, write = STAGES - 2;
    for (int t = 0; t < tiles; ++t) {
      cp_async_wait<STAGES - 3>();
      wgmma::fence_proxy_async();
      __syncthreads();
      if (t + STAGES - 2 < tiles) load(write);
      cp_async_commit();
      issue_stage<PAIR, SIDE>(g0, g1, base + read * stage_bytes + a_off, base + read * stage_bytes + A_STAGE);
      wgmma::wait<1>();
      read = read == STAGES - 1 ? 0 : read + 1;
      write = write == STAGES - 1 ? 0 : write + 1;
    }
    wgmma::wait<0>();
    cp_async_wait<0>();
    __syncthreads();
#else
    (void)g0, (void)g1, (void)side, (void)A, (void)lda, (void)m_valid, (void)B0, (void)B1, (void)ldb, (void)n_valid;
    (void)k_begin, (void)k_end, (void)smem;
    __trap();
#endif
  }
};

}  // namespace prism
