// Probe: what the low-rank side product (low_rank.cuh, `mainloop_side`)
// costs beside a WgmmaGemm, on LoRA's x·W at 2048×4096×4096 (f16): the
// GEMM alone against the GEMM with the side product of x and a 16-column
// operand in the same pipeline and the rank update after it. The update's
// B is zeros, so both kernels compute x·W and the harness checks them
// against the same f32 reference. Build and run on the GPU machine (ncu
// over the two kernels for what they spend):
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I cuda \
//        bench/probes/low_rank_side.cu -o low_rank_side && ./low_rank_side
//   ncu --section SpeedOfLight --section MemoryWorkloadAnalysis --launch-skip 1 \
//       --launch-count 1 -k regex:side_kernel ./low_rank_side ncu 1
#include "gemm_harness.cuh"
#include "prism/gemm.cuh"
#include "prism/wgmma.cuh"

// The rank update's B: zeros (16 rows of the widest N below).
__device__ __half zero_b[16 * 4096];

// SIDE: the side product reads B1's first 16 columns (row stride N).
template <class G, bool SIDE>
__global__ void __launch_bounds__(G::THREADS, 1) side_kernel(const __half* A, const __half* B0, const __half* B1,
                                                           __half* C, int M, int N, int K) {
  extern __shared__ __align__(16) char smem[];
  const int lin = blockIdx.y * gridDim.x + blockIdx.x;
  const int mt = lin % gridDim.y, nt = lin / gridDim.y;  // a column's row tiles first
  const int m0 = mt * G::TILE_M, n0 = nt * G::TILE_N;
  const int m_valid = min(G::TILE_M, M - m0), n_valid = min(G::TILE_N, N - n0);
  G g;
  g.clear();
  if constexpr (SIDE) {
    g.mainloop_side(A + (long long)m0 * K, K, m_valid, B0 + n0, N, n_valid, B1, N, 16, 0, K, smem);
    g.add_low_rank(zero_b + n0, N, 16, n_valid, smem);
  } else {
    g.mainloop(A + (long long)m0 * K, K, m_valid, B0 + n0, N, n_valid, 0, K, smem);
  }
  g.for_each([&](int r, int c, float a) {
    if (r < m_valid && c < n_valid) C[(long long)(m0 + r) * N + n0 + c] = __float2half_rn(a);
  });
}

template <class G, bool SIDE>
void run(const char* name, int M, int N, int K, int reps) {
  measure(name, side_kernel<G, SIDE>, dim3((N + G::TILE_N - 1) / G::TILE_N, (M + G::TILE_M - 1) / G::TILE_M),
          G::THREADS, SIDE ? G::SIDE_SMEM_BYTES : G::SMEM_BYTES, M, N, K, false, reps);
}

using W128x256s4 = prism::WgmmaGemm<__half, 128, 256, 4>;
using W128x128s4 = prism::WgmmaGemm<__half, 128, 128, 4>;
using W64x64s6 = prism::WgmmaGemm<__half, 64, 64, 6>;

int main(int argc, char** argv) {
  // `ncu 0` / `ncu 1`: only the 128x256 GEMM without / with the side
  // product, one timed launch (for a profiler).
  if (argc > 2) {
    if (argv[2][0] == '0')
      run<W128x256s4, false>("x·W        128x256s4", 2048, 4096, 4096, 1);
    else
      run<W128x256s4, true>("x·W + side 128x256s4", 2048, 4096, 4096, 1);
    return 0;
  }
  const int reps = 30;
  run<W128x256s4, false>("x·W        128x256s4", 2048, 4096, 4096, reps);
  run<W128x256s4, true>("x·W + side 128x256s4", 2048, 4096, 4096, reps);
  run<W128x128s4, false>("x·W        128x128s4", 2048, 4096, 4096, reps);
  run<W128x128s4, true>("x·W + side 128x128s4", 2048, 4096, 4096, reps);
  run<W64x64s6, false>("x·W        64x64s6 m=128", 128, 4096, 4096, reps);
  run<W64x64s6, true>("x·W + side 64x64s6 m=128", 128, 4096, 4096, reps);
  return 0;
}
