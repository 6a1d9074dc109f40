// Probe: prism::WgmmaGemm (cuda/prism/wgmma.cuh) against a naive f32
// reference, and timed against TileGemm's widest configuration, on the
// shapes of gated_mlp and lora (f16). Build on the GPU machine:
//   nvcc -O3 -std=c++17 -gencode=arch=compute_90a,code=sm_90a -I cuda \
//        bench/probes/wgmma_gemm.cu -o wgmma_gemm && ./wgmma_gemm
// Prints one line per (kernel, shape): max |error| / max |ref|, and the
// median time (µs, L2 flushed before every launch) with TFLOP/s.
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <cmath>

#include "prism/gemm.cuh"
#include "prism/wgmma.cuh"

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); exit(1); } } while (0)

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

__global__ void ref_kernel(const __half* A, const __half* B0, const __half* B1, float* C, int M, int N, int K, bool pair) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x, m = blockIdx.y;
  if (n >= N) return;
  float a = 0.f, b = 0.f;
  for (int k = 0; k < K; ++k) {
    const float x = __half2float(A[(long long)m * K + k]);
    a += x * __half2float(B0[(long long)k * N + n]);
    if (pair) b += x * __half2float(B1[(long long)k * N + n]);
  }
  C[(long long)m * N + n] = pair ? a / (1.0f + expf(-a)) * b : a;
}

__global__ void fill(__half* p, long long n, unsigned seed, float scale) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    unsigned x = (unsigned)i * 2654435761u ^ seed;
    x ^= x >> 13; x *= 0x5bd1e995u; x ^= x >> 15;
    p[i] = __float2half_rn(((x & 0xFFFF) / 65535.0f * 2.0f - 1.0f) * scale);
  }
}

static char* g_flush;
static const size_t FLUSH = 256ull << 20;

template <class G, bool PAIR, bool COLUMN = false, int MINB = 1>
void run(const char* name, int M, int N, int K, int reps) {
  __half *A, *B0, *B1, *C;
  float* R;
  CK(cudaMalloc(&A, (size_t)M * K * 2 + 16));
  CK(cudaMalloc(&B0, (size_t)K * N * 2 + 16));
  CK(cudaMalloc(&B1, (size_t)K * N * 2 + 16));
  CK(cudaMalloc(&C, (size_t)M * N * 2));
  CK(cudaMalloc(&R, (size_t)M * N * 4));
  fill<<<1024, 256>>>(A, (long long)M * K, 1, 1.0f);
  fill<<<1024, 256>>>(B0, (long long)K * N, 2, 1.0f / sqrtf((float)K));
  fill<<<1024, 256>>>(B1, (long long)K * N, 3, 1.0f / sqrtf((float)K));
  CK(cudaMemset(C, 0xFF, (size_t)M * N * 2));  // NaN poison
  const int smem = PAIR ? G::PAIR_SMEM_BYTES : G::SMEM_BYTES;
  auto k = gemm_kernel<G, PAIR, COLUMN, MINB>;
  CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  dim3 grid((N + G::TILE_N - 1) / G::TILE_N, (M + G::TILE_M - 1) / G::TILE_M);
  k<<<grid, G::THREADS, smem>>>(A, B0, B1, C, M, N, K);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  ref_kernel<<<dim3((N + 127) / 128, M), 128>>>(A, B0, B1, R, M, N, K, PAIR);
  CK(cudaDeviceSynchronize());
  std::vector<__half> hc((size_t)M * N);
  std::vector<float> hr((size_t)M * N);
  CK(cudaMemcpy(hc.data(), C, hc.size() * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(hr.data(), R, hr.size() * 4, cudaMemcpyDeviceToHost));
  double err = 0, mx = 0;
  size_t bad = 0;
  for (size_t i = 0; i < hc.size(); ++i) {
    const double g = __half2float(hc[i]);
    if (!std::isfinite(g)) { ++bad; continue; }
    err = std::max(err, std::fabs(g - hr[i]));
    mx = std::max(mx, (double)std::fabs(hr[i]));
  }
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<float> ts;
  for (int r = 0; r < reps + 3; ++r) {
    CK(cudaMemsetAsync(g_flush, r & 0xFF, FLUSH));
    CK(cudaEventRecord(e0));
    k<<<grid, G::THREADS, smem>>>(A, B0, B1, C, M, N, K);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (r >= 3) ts.push_back(ms * 1000.f);
  }
  std::sort(ts.begin(), ts.end());
  const double us = ts[ts.size() / 2];
  const double flops = 2.0 * M * N * K * (PAIR ? 2 : 1);
  printf("%-34s M=%5d N=%5d K=%5d %s  err/max %.2e (max %.3g, nonfinite %zu)  %9.1f us  %6.1f TFLOP/s\n", name, M, N, K,
         PAIR ? "pair" : "one ", err / (mx > 0 ? mx : 1), mx, bad, us, flops / us * 1e-6);
  CK(cudaFree(A)); CK(cudaFree(B0)); CK(cudaFree(B1)); CK(cudaFree(C)); CK(cudaFree(R));
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
  CK(cudaMalloc(&g_flush, FLUSH));
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
