// Shared by the GEMM probes (wgmma_gemm.cu, wgmma_ws.cu): inputs, an f32
// reference, and one line per kernel and shape: max |error| / max |ref| of
// its output (poisoned with NaN first) and its median time (µs, 256 MiB
// written before every launch to flush L2) with TFLOP/s. A kernel takes
// (A[M,K], B0[K,N], B1[K,N], C[M,N], M, N, K) in f16, row-major; `pair`:
// C = silu(A·B0) ⊙ (A·B1), else C = A·B0.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <cmath>

#include <cuda_fp16.h>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %s:%d\n", cudaGetErrorString(e), __FILE__, __LINE__); exit(1); } } while (0)

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

static const size_t FLUSH = 256ull << 20;

// launch(A, B0, B1, C) enqueues the kernel under test.
template <class Launch>
void measure_launch(const char* name, int M, int N, int K, bool pair, int reps, Launch launch) {
  static char* flush = nullptr;
  if (!flush) CK(cudaMalloc(&flush, FLUSH));
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
  launch(A, B0, B1, C);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  ref_kernel<<<dim3((N + 127) / 128, M), 128>>>(A, B0, B1, R, M, N, K, pair);
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
    CK(cudaMemsetAsync(flush, r & 0xFF, FLUSH));
    CK(cudaEventRecord(e0));
    launch(A, B0, B1, C);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    if (r >= 3) ts.push_back(ms * 1000.f);
  }
  std::sort(ts.begin(), ts.end());
  const double us = ts[ts.size() / 2];
  const double flops = 2.0 * M * N * K * (pair ? 2 : 1);
  printf("%-34s M=%5d N=%5d K=%5d %s  err/max %.2e (max %.3g, nonfinite %zu)  %9.1f us (min %9.1f)  %6.1f TFLOP/s\n",
         name, M, N, K, pair ? "pair" : "one ", err / (mx > 0 ? mx : 1), mx, bad, us, ts[0], flops / us * 1e-6);
  CK(cudaEventDestroy(e0)); CK(cudaEventDestroy(e1));
  CK(cudaFree(A)); CK(cudaFree(B0)); CK(cudaFree(B1)); CK(cudaFree(C)); CK(cudaFree(R));
}

template <class Kern>
void measure(const char* name, Kern k, dim3 grid, int threads, int smem, int M, int N, int K, bool pair, int reps) {
  CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  measure_launch(name, M, N, K, pair, reps, [&](const __half* A, const __half* B0, const __half* B1, __half* C) {
    k<<<grid, threads, smem>>>(A, B0, B1, C, M, N, K);
  });
}
