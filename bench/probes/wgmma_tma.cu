// Probe: a WgmmaGemm main loop fed by the Tensor Memory Accelerator.
// One producer warp (warp 8; one elected lane) issues the copies as 2-D
// tensor loads (cp.async.bulk.tensor, 128-byte swizzle: the same shared
// layouts as prism::WgmmaGemm, so the same wgmma descriptors) into a
// STAGES-deep ring; each stage's `full` mbarrier completes on the bytes
// landing (expect_tx), each stage's `empty` mbarrier on the consumers'
// wgmma retiring. Two consumer warpgroups (warps 0-7) only wait and issue
// wgmma on a 128 x BN tile (a pair: two B operands, one m64n(2BN)k16).
// Edges come from the tensor maps' zero fill (N, K % 8 == 0: 16-byte
// global strides). PERSIST: one block per SM walks the tiles (column-major,
// as generated), so the producer loads the next tile's stages while the
// consumers store the last one's. 288 threads: 224 registers a thread, no
// setmaxnreg. Tensor maps from cuTensorMapEncodeTiled (driver entry point
// through the runtime), passed as __grid_constant__ parameters. Checked
// against an f32 reference and timed (L2 flushed) next to
// prism::WgmmaGemm on gated_mlp's and LoRA's shapes. Build on the GPU machine:
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I cuda bench/probes/wgmma_tma.cu -o tma && ./tma
#include "gemm_harness.cuh"
#include "prism/wgmma.cuh"

#include <cuda.h>

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  while (!done)
    asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }\n"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_expect(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Box at (c0 innermost, c1) of `map` into shared `dst`, completing on `bar`.
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap* map, int c0, int c1, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
}

template <int BN, int STAGES, bool PAIR, bool PERSIST>
__global__ void __launch_bounds__(288, 1) tma_kernel(const __grid_constant__ CUtensorMap tA,
                                                     const __grid_constant__ CUtensorMap tB0,
                                                     const __grid_constant__ CUtensorMap tB1, __half* C, int M, int N,
                                                     int K) {
#if PRISM_HAS_WGMMA
  constexpr int BM = 128, BK = 64, CONSUMERS = 256;
  constexpr int A_STAGE = BM * BK * 2, B_STAGE = BK * BN * 2, B_ATOM = BK * 128;
  constexpr int STAGE = A_STAGE + (PAIR ? 2 : 1) * B_STAGE;
  static_assert(!PAIR || BN <= 128, "a pair is one m64n(2BN)k16");
  extern __shared__ __align__(16) char smem[];
  __shared__ __align__(8) uint64_t full[STAGES], empty[STAGES];
  const uint32_t raw = prism::smem_addr(smem);
  const uint32_t base = (raw + 1023) & ~1023u;
  const int mtiles = (M + BM - 1) / BM, ntiles = (N + BN - 1) / BN, tiles = mtiles * ntiles;
  const int ktiles = (K + BK - 1) / BK;
  const int first = PERSIST ? blockIdx.x : blockIdx.y * gridDim.x + blockIdx.x;
  const int step = PERSIST ? gridDim.x : tiles;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(prism::smem_addr(&full[s]), 1);
      mbar_init(prism::smem_addr(&empty[s]), CONSUMERS);
    }
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  __syncthreads();
  if (threadIdx.x >= CONSUMERS) {
    if (threadIdx.x != CONSUMERS) return;
    int it = 0;
    for (int tile = first; tile < tiles; tile += step) {
      const int m0 = (tile % mtiles) * BM, n0 = (tile / mtiles) * BN;
      for (int t = 0; t < ktiles; ++t, ++it) {
        const int st = it % STAGES;
        if (it >= STAGES) mbar_wait(prism::smem_addr(&empty[st]), ((it / STAGES) - 1) & 1);
        const uint32_t bar = prism::smem_addr(&full[st]);
        const uint32_t sa = base + st * STAGE;
        mbar_expect(bar, STAGE);
        tma_load(sa, &tA, t * BK, m0, bar);
#pragma unroll
        for (int j = 0; j < BN / 64; ++j) tma_load(sa + A_STAGE + j * B_ATOM, &tB0, n0 + j * 64, t * BK, bar);
        if constexpr (PAIR)
#pragma unroll
          for (int j = 0; j < BN / 64; ++j)
            tma_load(sa + A_STAGE + B_STAGE + j * B_ATOM, &tB1, n0 + j * 64, t * BK, bar);
      }
    }
  } else {
    float acc0[BN / 8][4], acc1[PAIR ? BN / 8 : 1][4];
    const uint32_t a_off = (threadIdx.x / 128) * 64 * 128;
    const int lane = threadIdx.x % 32;
    const int row0 = (threadIdx.x / 128) * 64 + ((threadIdx.x % 128) / 32) * 16 + lane / 4;
    int it = 0;
    for (int tile = first; tile < tiles; tile += step) {
      const int m0 = (tile % mtiles) * BM, n0 = (tile / mtiles) * BN;
#pragma unroll
      for (int i = 0; i < BN / 8; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          acc0[i][e] = 0.f;
          if constexpr (PAIR) acc1[i][e] = 0.f;
        }
      for (int t = 0; t < ktiles; ++t, ++it) {
        const int st = it % STAGES;
        mbar_wait(prism::smem_addr(&full[st]), (it / STAGES) & 1);
        const uint32_t sa = base + st * STAGE + a_off, sb = base + st * STAGE + A_STAGE;
        prism::wgmma::fence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; ++kk) {
          const uint64_t da = prism::wgmma::desc_sw128(sa + kk * 32, 16, 1024);
          const uint64_t db = prism::wgmma::desc_sw128(sb + kk * 2048, B_ATOM, 1024);
          if constexpr (PAIR)
            prism::wgmma::mma_pair<__half, BN>(acc0, acc1, da, db);
          else
            prism::wgmma::mma<__half, BN>(acc0, da, db);
        }
        prism::wgmma::commit();
        prism::wgmma::wait<1>();
        if (t > 0) mbar_arrive(prism::smem_addr(&empty[(it - 1) % STAGES]));
      }
      prism::wgmma::wait<0>();
      mbar_arrive(prism::smem_addr(&empty[(it - 1) % STAGES]));
#pragma unroll
      for (int i = 0; i < BN / 8; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = m0 + row0 + h * 8, c = n0 + i * 8 + (lane % 4) * 2;
          if (r >= M) continue;
          float v[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float a = acc0[i][h * 2 + e];
            v[e] = PAIR ? a / (1.0f + __expf(-a)) * acc1[PAIR ? i : 0][h * 2 + e] : a;
          }
          if (c + 1 < N)
            *reinterpret_cast<__half2*>(C + (long long)r * N + c) = __floats2half2_rn(v[0], v[1]);
          else if (c < N)
            C[(long long)r * N + c] = __float2half_rn(v[0]);
        }
    }
  }
#endif
}

// prism::WgmmaGemm, as generated (column-major block order), for comparison.
template <class G, bool PAIR>
__global__ void __launch_bounds__(G::THREADS, 1) ref_gemm(const __half* A, const __half* B0, const __half* B1, __half* C,
                                                          int M, int N, int K) {
  extern __shared__ __align__(16) char smem[];
  const int lin = blockIdx.y * gridDim.x + blockIdx.x;
  const int m0 = (lin % gridDim.y) * G::TILE_M, n0 = (lin / gridDim.y) * G::TILE_N;
  G g0, g1;
  g0.clear();
  g1.clear();
  const int mv = min(G::TILE_M, M - m0), nv = min(G::TILE_N, N - n0);
  if constexpr (PAIR) G::mainloop_pair(g0, g1, A + (long long)m0 * K, K, mv, B0 + n0, B1 + n0, N, nv, 0, K, smem);
  else g0.mainloop(A + (long long)m0 * K, K, mv, B0 + n0, N, nv, 0, K, smem);
  g0.for_each_pair(g1, [&](int r, int c, float a, float b) {
    if (r < mv && c < nv) C[(long long)(m0 + r) * N + n0 + c] = __float2half_rn(PAIR ? a / (1.0f + __expf(-a)) * b : a);
  });
}

using EncodeTiled = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                 const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                 CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

static EncodeTiled encoder() {
  static EncodeTiled fn = nullptr;
  if (!fn) {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q;
    CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
    if (!p || q != cudaDriverEntryPointSuccess) {
      printf("cuTensorMapEncodeTiled not found\n");
      exit(1);
    }
    fn = reinterpret_cast<EncodeTiled>(p);
  }
  return fn;
}

// A row-major f16 [rows, cols] tensor in boxes of box_rows x 64 columns
// (128 bytes: the swizzle's span), 128-byte swizzle, zero fill outside.
static CUtensorMap tensor_map(const __half* p, int rows, int cols, int box_rows) {
  CUtensorMap m;
  const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows};
  const cuuint64_t strides[1] = {(cuuint64_t)cols * 2};
  const cuuint32_t box[2] = {64, (cuuint32_t)box_rows};
  const cuuint32_t estr[2] = {1, 1};
  const CUresult r = encoder()(&m, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, const_cast<__half*>(p), dims, strides, box, estr,
                               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    printf("cuTensorMapEncodeTiled failed: %d\n", (int)r);
    exit(1);
  }
  return m;
}

static int sm_count() {
  int n = 0;
  CK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0));
  return n;
}

// Tensor maps are host work: built once per buffer set, outside the timed launches.
template <int BN, int STAGES, bool PAIR, bool PERSIST>
void tma(const char* name, int M, int N, int K, int reps) {
  constexpr int smem = STAGES * (128 * 64 * 2 + (PAIR ? 2 : 1) * 64 * BN * 2) + 1024;
  auto kern = tma_kernel<BN, STAGES, PAIR, PERSIST>;
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const int tiles = ((M + 127) / 128) * ((N + BN - 1) / BN);
  const dim3 grid = PERSIST ? dim3(std::min(tiles, sm_count())) : dim3((N + BN - 1) / BN, (M + 127) / 128);
  const __half* cached = nullptr;
  CUtensorMap ta, tb0, tb1;
  measure_launch(name, M, N, K, PAIR, reps, [&](const __half* A, const __half* B0, const __half* B1, __half* C) {
    if (A != cached) {
      ta = tensor_map(A, M, K, 128);
      tb0 = tensor_map(B0, K, N, 64);
      tb1 = tensor_map(B1, K, N, 64);
      cached = A;
    }
    kern<<<grid, 288, smem>>>(ta, tb0, tb1, C, M, N, K);
  });
}

template <class G, bool PAIR>
void ref(const char* name, int M, int N, int K, int reps) {
  measure(name, ref_gemm<G, PAIR>, dim3((N + G::TILE_N - 1) / G::TILE_N, (M + G::TILE_M - 1) / G::TILE_M), G::THREADS,
          PAIR ? G::PAIR_SMEM_BYTES : G::SMEM_BYTES, M, N, K, PAIR, reps);
}

int main() {
  tma<128, 4, true, false>("edge tma 128x128 pair", 130, 200, 520, 2);
  tma<128, 4, true, true>("edge tma 128x128 pair persist", 300, 264, 1000, 2);
  tma<256, 4, false, true>("edge tma 128x256 persist", 100, 312, 1000, 2);
  for (int m : {2048, 128}) {
    ref<prism::WgmmaGemm<__half, 128, 128, 4>, true>("gated WgmmaGemm 128x128s4", m, 14336, 4096, 20);
    tma<128, 4, true, false>("gated tma 128x128s4", m, 14336, 4096, 20);
    tma<128, 4, true, true>("gated tma 128x128s4 persist", m, 14336, 4096, 20);
    tma<64, 6, true, true>("gated tma 128x64s6 persist", m, 14336, 4096, 20);
    ref<prism::WgmmaGemm<__half, 128, 256, 4>, false>("lora WgmmaGemm 128x256s4", m, 4096, 4096, 20);
    tma<256, 4, false, false>("lora tma 128x256s4", m, 4096, 4096, 20);
    tma<256, 4, false, true>("lora tma 128x256s4 persist", m, 4096, 4096, 20);
    tma<128, 6, false, true>("lora tma 128x128s6 persist", m, 4096, 4096, 20);
  }
  return 0;
}
