// Probe: a warp-specialized WgmmaGemm main loop. Two consumer warpgroups
// issue wgmma on 128 x BN tiles (as prism::WgmmaGemm); a third, producer,
// warpgroup only issues the cp.async copies, STAGES - 1 tiles ahead, and
// signals each stage through an mbarrier (cp.async.mbarrier.arrive.noinc);
// the consumers free a stage through a second mbarrier once its wgmma
// retired. No block-wide barrier in the main loop. Optional setmaxnreg
// (producer 40 registers, consumers 232). Checked against an f32
// reference and timed (L2 flushed) next to prism::WgmmaGemm's 128 x 128
// pair and 128 x 256 single on gated_mlp's and LoRA's shapes. Build on the
// GPU machine:
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I cuda bench/probes/wgmma_ws.cu -o ws && ./ws
#include "gemm_harness.cuh"
#include "prism/wgmma.cuh"

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
// Arrives on `bar` when every cp.async this thread issued so far has landed.
__device__ __forceinline__ void cp_async_arrive(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void cp16(uint32_t dst, const void* src, bool pred) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(pred ? 16 : 0) : "memory");
}

template <int BN, int STAGES, bool PAIR, bool MAXNREG>
__global__ void __launch_bounds__(384, 1) ws_kernel(const __half* A, const __half* B0, const __half* B1, __half* C,
                                                    int M, int N, int K) {
#if PRISM_HAS_WGMMA
  constexpr int BM = 128, BK = 64, CONSUMERS = 256;
  constexpr int A_STAGE = BM * BK * 2, B_STAGE = BK * BN * 2, B_ATOM = BK * 128;
  constexpr int STAGE = A_STAGE + (PAIR ? 2 : 1) * B_STAGE;
  extern __shared__ __align__(16) char smem[];
  __shared__ __align__(8) uint64_t full[STAGES], empty[STAGES];
  const uint32_t raw = prism::smem_addr(smem);
  const uint32_t base = (raw + 1023) & ~1023u;
  const int lin = blockIdx.y * gridDim.x + blockIdx.x;  // column-major block order
  const int m0 = (lin % gridDim.y) * BM, n0 = (lin / gridDim.y) * BN;
  const int tiles = (K + BK - 1) / BK;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(prism::smem_addr(&full[s]), 128);
      mbar_init(prism::smem_addr(&empty[s]), CONSUMERS);
    }
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  __syncthreads();
  if (threadIdx.x >= CONSUMERS) {
    if constexpr (MAXNREG) asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    const int p = threadIdx.x - CONSUMERS;
    constexpr int BROW = BN / 8, BSTEP = 128 / BROW;
    for (int t = 0; t < tiles; ++t) {
      const int st = t % STAGES;
      if (t >= STAGES) mbar_wait(prism::smem_addr(&empty[st]), ((t / STAGES) - 1) & 1);
      const uint32_t sa = base + st * STAGE;
      const int k0 = t * BK;
      {
        const int c = p % 8;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          const int r = p / 8 + i * 16;
          const bool ok = m0 + r < M && k0 + c * 8 < K;
          cp16(sa + r * 128 + ((c ^ (r & 7)) << 4), ok ? A + (long long)(m0 + r) * K + k0 + c * 8 : A, ok);
        }
      }
#pragma unroll
      for (int b = 0; b < (PAIR ? 2 : 1); ++b) {
        const __half* B = b ? B1 : B0;
        const uint32_t sb = sa + A_STAGE + b * B_STAGE;
        const int nc = p % BROW;
#pragma unroll
        for (int i = 0; i < BK / BSTEP; ++i) {
          const int kr = p / BROW + i * BSTEP;
          const bool ok = k0 + kr < K && n0 + nc * 8 < N;
          cp16(sb + (nc / 8) * B_ATOM + kr * 128 + (((nc % 8) ^ (kr & 7)) << 4),
               ok ? B + (long long)(k0 + kr) * N + n0 + nc * 8 : B, ok);
        }
      }
      cp_async_arrive(prism::smem_addr(&full[st]));
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
  } else {
    if constexpr (MAXNREG) asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    float acc0[BN / 8][4], acc1[BN / 8][4];
#pragma unroll
    for (int i = 0; i < BN / 8; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc0[i][e] = 0.f, acc1[i][e] = 0.f;
    const uint32_t a_off = (threadIdx.x / 128) * 64 * 128;
    for (int t = 0; t < tiles; ++t) {
      const int st = t % STAGES;
      mbar_wait(prism::smem_addr(&full[st]), (t / STAGES) & 1);
      prism::wgmma::fence_proxy_async();
      const uint32_t sa = base + st * STAGE + a_off, sb = base + st * STAGE + A_STAGE;
      prism::wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        const uint64_t da = prism::wgmma::desc_sw128(sa + kk * 32, 16, 1024);
        prism::wgmma::mma<__half, BN>(acc0, da, prism::wgmma::desc_sw128(sb + kk * 2048, B_ATOM, 1024));
        if constexpr (PAIR)
          prism::wgmma::mma<__half, BN>(acc1, da, prism::wgmma::desc_sw128(sb + B_STAGE + kk * 2048, B_ATOM, 1024));
      }
      prism::wgmma::commit();
      prism::wgmma::wait<1>();
      if (t > 0) mbar_arrive(prism::smem_addr(&empty[(t - 1) % STAGES]));
    }
    prism::wgmma::wait<0>();
    const int lane = threadIdx.x % 32;
    const int row0 = (threadIdx.x / 128) * 64 + ((threadIdx.x % 128) / 32) * 16 + lane / 4;
#pragma unroll
    for (int i = 0; i < BN / 8; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = m0 + row0 + (e / 2) * 8, c = n0 + i * 8 + (lane % 4) * 2 + (e % 2);
        if (r < M && c < N) {
          const float a = acc0[i][e];
          C[(long long)r * N + c] = __float2half_rn(PAIR ? a / (1.0f + __expf(-a)) * acc1[i][e] : a);
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

template <int BN, int STAGES, bool PAIR, bool MAXNREG>
void ws(const char* name, int M, int N, int K, int reps) {
  const int smem = STAGES * (128 * 64 * 2 + (PAIR ? 2 : 1) * 64 * BN * 2) + 1024;
  measure(name, ws_kernel<BN, STAGES, PAIR, MAXNREG>, dim3((N + BN - 1) / BN, (M + 127) / 128), 384, smem, M, N, K,
          PAIR, reps);
}
template <class G, bool PAIR>
void ref(const char* name, int M, int N, int K, int reps) {
  measure(name, ref_gemm<G, PAIR>, dim3((N + G::TILE_N - 1) / G::TILE_N, (M + G::TILE_M - 1) / G::TILE_M), G::THREADS,
          PAIR ? G::PAIR_SMEM_BYTES : G::SMEM_BYTES, M, N, K, PAIR, reps);
}

int main() {
  ws<128, 4, true, true>("edge ws 128x128 pair", 130, 200, 520, 2);
  ws<256, 4, false, true>("edge ws 128x256", 100, 312, 1000, 2);  // the probe needs N, K % 8 == 0
  for (int m : {2048, 128}) {
    ref<prism::WgmmaGemm<__half, 128, 128, 4>, true>("gated WgmmaGemm 128x128s4", m, 14336, 4096, 20);
    ws<128, 4, true, true>("gated ws 128x128s4 maxnreg", m, 14336, 4096, 20);
    ws<128, 4, true, false>("gated ws 128x128s4", m, 14336, 4096, 20);
    ref<prism::WgmmaGemm<__half, 128, 256, 4>, false>("lora WgmmaGemm 128x256s4", m, 4096, 4096, 20);
    ws<256, 4, false, true>("lora ws 128x256s4 maxnreg", m, 4096, 4096, 20);
    ws<128, 6, false, true>("lora ws 128x128s6 maxnreg", m, 4096, 4096, 20);
  }
  return 0;
}
