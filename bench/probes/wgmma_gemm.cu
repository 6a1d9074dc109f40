// Probe: prism::WgmmaGemm (cuda/prism/wgmma.cuh) against a naive f32
// reference, and timed against TileGemm's widest configuration, on the
// shapes of gated_mlp and lora (f16). Build on the GPU machine:
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I cuda \
//        bench/probes/wgmma_gemm.cu -o wgmma_gemm && ./wgmma_gemm
// Prints one line per (kernel, shape): max |error| / max |ref|, and the
// median time (µs, L2 flushed before every launch) with TFLOP/s. With
// -DPRISM_WGMMA_PAIR_SEPARATE=1 a pair's two GEMMs issue one wgmma each
// instead of one twice as wide (results/pair-as-one-wgmma-probe-h200-session14.txt).
#include "gemm_harness.cuh"
#include "prism/gemm.cuh"
#include "prism/wgmma.cuh"

// COLUMN: consecutive blocks walk the m tiles of one n tile first (B's
// columns read by all of them while in L2), instead of the n tiles of one
// m tile.
template <class G, bool PAIR, bool COLUMN = false, int MINB = 1>
__global__ void __launch_bounds__(G::THREADS, MINB) gemm_kernel(const __half* A, const __half* B0, const __half* B1,
                                                             __half* C, int M, int N, int K) {
  extern __shared__ __align__(16) char smem[];
  const int lin = blockIdx.y * gridDim.x + blockIdx.x;
  const int mt = COLUMN ? lin % gridDim.y : blockIdx.y, nt = COLUMN ? lin / gridDim.y : blockIdx.x;
  const int m0 = mt * G::TILE_M, n0 = nt * G::TILE_N;
  G g0, g1;
  g0.clear();
  const int m_valid = min(G::TILE_M, M - m0), n_valid = min(G::TILE_N, N - n0);
  if constexpr (PAIR) {
    g1.clear();
    G::mainloop_pair(g0, g1, A + (long long)m0 * K, K, m_valid, B0 + n0, B1 + n0, N, n_valid, 0, K, smem, gridDim.y == 1);
    g0.for_each_pair(g1, [&](int r, int c, float a, float b) {
      if (r < m_valid && c < n_valid) C[(long long)(m0 + r) * N + n0 + c] = __float2half_rn(a / (1.0f + __expf(-a)) * b);
    });
  } else {
    g0.mainloop(A + (long long)m0 * K, K, m_valid, B0 + n0, N, n_valid, 0, K, smem, gridDim.y == 1);
    g0.for_each([&](int r, int c, float a) {
      if (r < m_valid && c < n_valid) C[(long long)(m0 + r) * N + n0 + c] = __float2half_rn(a);
    });
  }
}

template <class G, bool PAIR, bool COLUMN = false, int MINB = 1>
void run(const char* name, int M, int N, int K, int reps) {
  measure(name, gemm_kernel<G, PAIR, COLUMN, MINB>, dim3((N + G::TILE_N - 1) / G::TILE_N, (M + G::TILE_M - 1) / G::TILE_M),
          G::THREADS, PAIR ? G::PAIR_SMEM_BYTES : G::SMEM_BYTES, M, N, K, PAIR, reps);
}

using W128x128s4 = prism::WgmmaGemm<__half, 128, 128, 4>;
using W128x128s6 = prism::WgmmaGemm<__half, 128, 128, 6>;
using W128x256s4 = prism::WgmmaGemm<__half, 128, 256, 4>;
using W128x64s6 = prism::WgmmaGemm<__half, 128, 64, 6>;
using W64x128s4 = prism::WgmmaGemm<__half, 64, 128, 4>;
using W64x64s6 = prism::WgmmaGemm<__half, 64, 64, 6>;
using W128x64s3 = prism::WgmmaGemm<__half, 128, 64, 3>;
using W128x128s3 = prism::WgmmaGemm<__half, 128, 128, 3>;
using W64x128s3 = prism::WgmmaGemm<__half, 64, 128, 3>;
using T128 = prism::TileGemm<__half, 128, 128, 64, 2, 4, 3>;

int main(int argc, char** argv) {
  const bool quick = argc > 1;
  // Correctness at ragged edges: M, N, K not multiples of the tiles; K % 8 != 0 (scalar loader).
  run<W128x128s4, false>("edge wgmma 128x128s4", 100, 200, 1000, 3);
  run<W128x128s4, false>("edge wgmma 128x128s4 scalar", 77, 136, 1001, 3);
  run<W128x128s4, true>("edge wgmma 128x128s4", 130, 190, 520, 3);
  run<W64x64s6, true>("edge wgmma 64x64s6", 65, 72, 72, 3);
  run<W128x256s4, false>("edge wgmma 128x256s4", 129, 300, 200, 3);
  if (quick && argv[1][0] != 'm') return 0;
  const int reps = 30;
  // Two blocks per SM (3 stages, at most 64 accumulators per thread)
  // against one: a block's barrier stalls overlap the other's MMAs.
  if (argc > 1 && argv[1][0] == 'm') {
    for (int m : {2048, 128}) {
      run<W128x128s4, true, true>("gated 128x128s4 1/SM", m, 14336, 4096, reps);
      run<W128x64s3, true, true>("gated 128x64s3 1/SM", m, 14336, 4096, reps);
      run<W128x64s3, true, true, 2>("gated 128x64s3 2/SM", m, 14336, 4096, reps);
      run<W128x128s3, false, true>("lora 128x128s3 1/SM", m, 4096, 4096, reps);
      run<W128x128s3, false, true, 2>("lora 128x128s3 2/SM", m, 4096, 4096, reps);
      run<W128x256s4, false, true>("lora 128x256s4 1/SM", m, 4096, 4096, reps);
      run<W64x128s3, false, true, 2>("lora 64x128s3 2/SM", m, 4096, 4096, reps);
      run<W64x128s3, false, true, 3>("lora 64x128s3 3/SM", m, 4096, 4096, reps);
    }
    return 0;
  }
  // Block order: row-major (as generated) against column-major.
  for (int m : {2048, 512}) {
    run<W128x128s4, true>("gated wgmma 128x128s4", m, 14336, 4096, reps);
    run<W128x128s4, true, true>("gated wgmma 128x128s4 column", m, 14336, 4096, reps);
  }
  run<W128x256s4, false>("lora wgmma 128x256s4", 2048, 4096, 4096, reps);
  run<W128x256s4, false, true>("lora wgmma 128x256s4 column", 2048, 4096, 4096, reps);
  run<W128x128s6, false>("lora wgmma 128x128s6", 2048, 4096, 4096, reps);
  run<W128x128s6, false, true>("lora wgmma 128x128s6 column", 2048, 4096, 4096, reps);
  return 0;
}
