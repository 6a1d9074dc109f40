// Standalone GPU correctness check of prism::TileGemm (and a smoke test of
// reduce.cuh / math.cuh). Not part of the embedded device library.
//
//   nvcc -std=c++17 -O3 -arch=sm_90a -Icuda cuda/tests/gemm_check.cu -o gemm_check && ./gemm_check
//
// For f16, bf16 and f32, every listed tile configuration and STAGES 1..4, it
// runs a set of shapes (edges in M/N/K, K and N not multiples of 8, misaligned
// leading dimensions and base pointers, split-K with k_begin not a multiple of
// 8) against a double-precision host reference. Padding around the valid
// region of A and B is filled with NaN, so any read outside the valid region
// that reaches an accumulator shows up as a failure.
// Prints one line per case and a final PASS/FAIL; exits 1 on failure.
// With --bench it also times a (16x4096)x(4096x4096) f16 GEMM.
// -DPRISM_GEMM_CHECK_QUICK checks a subset of the configurations.

#include <prism/common.cuh>
#include <prism/epilogue.cuh>
#include <prism/gemm.cuh>
#include <prism/math.cuh>
#include <prism/memory.cuh>
#include <prism/mma.cuh>
#include <prism/reduce.cuh>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#define CK(x)                                                                                  \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(2);                                                                            \
    }                                                                                          \
  } while (0)

// ------------------------------------------------------------------ kernels

// One block per BM x BN tile of C; blockIdx.z picks a K slice of
// ceil(K / gridDim.z) (atomicAdd into a zeroed C when gridDim.z > 1).
template <class G>
__global__ void __launch_bounds__(G::THREADS)
    gemm_kernel(const typename G::Element* A, long long lda, const typename G::Element* B, long long ldb, float* C,
                long long ldc, int M, int N, int K) {
  extern __shared__ __align__(16) char smem[];
  const int m0 = blockIdx.y * G::TILE_M, n0 = blockIdx.x * G::TILE_N;
  const long long slice = (K + gridDim.z - 1) / gridDim.z;
  const long long kb = blockIdx.z * slice;
  const long long ke = kb + slice < K ? kb + slice : K;
  G g;
  g.clear();
  g.mainloop(A + m0 * lda, lda, M - m0, B + n0, ldb, N - n0, kb, ke, smem);
  if (gridDim.z == 1)
    g.for_each(prism::epilogue(prism::Identity{}, prism::StoreTo<float>{C + m0 * ldc + n0, ldc, M - m0, N - n0}));
  else
    g.for_each(prism::AtomicAddTo{C + m0 * ldc + n0, ldc, M - m0, N - n0});
}

// out[0] = sum, out[1] = max, out[2] = sum again (block_reduce called 3x in a row).
__global__ void reduce_kernel(const float* x, int n, float* out) {
  __shared__ float scratch[32];
  float s = 0.0f, m = -INFINITY;
  for (int i = threadIdx.x; i < n; i += 256) s += x[i], m = fmaxf(m, x[i]);
  const float bs = prism::block_reduce<prism::SumOp, 256>(s, scratch);
  const float bm = prism::block_reduce<prism::MaxOp, 256>(m, scratch);
  const float bs2 = prism::block_reduce<prism::SumOp, 256>(s, scratch);
  const float ws = prism::warp_reduce<prism::SumOp>(threadIdx.x < 32 ? 1.0f : 0.0f);
  if (threadIdx.x == 0) out[0] = bs, out[1] = bm, out[2] = bs2, out[3] = ws;
}

__global__ void math_kernel(const float* x, int n, float* out) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = x[i];
  float* o = out + i * 6;
  o[0] = prism::op::exp(v), o[1] = prism::op::silu(v), o[2] = prism::op::gelu(v);
  o[3] = prism::op::sigmoid(v), o[4] = prism::op::rsqrt(fabsf(v) + 1.0f), o[5] = prism::op::log(fabsf(v) + 1.0f);
}

// ------------------------------------------------------------------ host data

template <typename T> struct Ty;
template <> struct Ty<__half> {
  static const char* name() { return "f16"; }
  static __half from(double v) { return __float2half_rn((float)v); }
  static double to(__half v) { return (double)__half2float(v); }
  static __half nan() { return __ushort_as_half((unsigned short)0x7e00); }
  static constexpr double tol = 1e-2;
};
template <> struct Ty<__nv_bfloat16> {
  static const char* name() { return "bf16"; }
  static __nv_bfloat16 from(double v) { return __float2bfloat16_rn((float)v); }
  static double to(__nv_bfloat16 v) { return (double)__bfloat162float(v); }
  static __nv_bfloat16 nan() { return __ushort_as_bfloat16((unsigned short)0x7fc0); }
  static constexpr double tol = 1e-2;
};
template <> struct Ty<float> {
  static const char* name() { return "f32"; }
  static float from(double v) { return (float)v; }
  static double to(float v) { return (double)v; }
  static float nan() { return NAN; }
  static constexpr double tol = 1e-5;
};

struct Shape {
  int M, N, K;
  long long lda, ldb;  // leading dimensions (elements)
  int offA, offB;      // element offsets of the base pointers (misalignment)
  int split;           // K slices (gridDim.z)
  const char* what;
};

static const Shape kShapes[] = {
    {1, 4096, 1024, 1024, 4096, 0, 0, 1, "aligned"},
    {7, 37, 100, 100, 37, 0, 0, 1, "K,N%8!=0 ldb odd"},
    {16, 1000, 136, 136, 1000, 0, 0, 1, "N edge"},
    {64, 37, 100, 104, 40, 0, 0, 1, "straddling K/N chunks"},
    {130, 8, 4096, 4096, 8, 0, 0, 1, "M edge, N=8"},
    {130, 1000, 136, 139, 1003, 0, 0, 1, "misaligned ld"},
    {64, 1000, 1024, 1024, 1000, 1, 3, 1, "misaligned base"},
    {16, 4096, 4096, 4096, 4096, 0, 0, 3, "split-K 3 (k_begin%8!=0)"},
    {7, 4096, 4096, 4096, 4096, 0, 0, 1, "M=7 big K"},
    {130, 37, 1024, 1024, 37, 0, 0, 2, "split-K 2, N=37"},
};
static constexpr int kNumShapes = sizeof(kShapes) / sizeof(kShapes[0]);

// Device copies of one shape's inputs plus the reference result.
template <typename T>
struct Problem {
  Shape s;
  T* dA = nullptr;
  T* dB = nullptr;
  float* dC = nullptr;
  std::vector<double> ref;
  double ref_norm2 = 0;
  size_t a_elems = 0, b_elems = 0;

  void init(const Shape& shape, std::mt19937& rng) {
    s = shape;
    std::uniform_real_distribution<double> U(-1.0, 1.0);
    // Valid region random; padding columns and a tail of 64 elements NaN.
    a_elems = s.offA + (size_t)s.M * s.lda + 64;
    b_elems = s.offB + (size_t)s.K * s.ldb + 64;
    std::vector<T> A(a_elems, Ty<T>::nan()), B(b_elems, Ty<T>::nan());
    for (int m = 0; m < s.M; ++m)
      for (int k = 0; k < s.K; ++k) A[s.offA + m * s.lda + k] = Ty<T>::from(U(rng));
    for (int k = 0; k < s.K; ++k)
      for (int n = 0; n < s.N; ++n) B[s.offB + k * s.ldb + n] = Ty<T>::from(U(rng));
    // Reference in double from the rounded inputs.
    std::vector<double> Ad((size_t)s.M * s.K), Bd((size_t)s.K * s.N);
    for (int m = 0; m < s.M; ++m)
      for (int k = 0; k < s.K; ++k) Ad[(size_t)m * s.K + k] = Ty<T>::to(A[s.offA + m * s.lda + k]);
    for (int k = 0; k < s.K; ++k)
      for (int n = 0; n < s.N; ++n) Bd[(size_t)k * s.N + n] = Ty<T>::to(B[s.offB + k * s.ldb + n]);
    ref.assign((size_t)s.M * s.N, 0.0);
    for (int m = 0; m < s.M; ++m)
      for (int k = 0; k < s.K; ++k) {
        const double a = Ad[(size_t)m * s.K + k];
        const double* b = &Bd[(size_t)k * s.N];
        double* c = &ref[(size_t)m * s.N];
        for (int n = 0; n < s.N; ++n) c[n] += a * b[n];
      }
    ref_norm2 = 0;
    for (double v : ref) ref_norm2 += v * v;
    CK(cudaMalloc(&dA, a_elems * sizeof(T)));
    CK(cudaMalloc(&dB, b_elems * sizeof(T)));
    CK(cudaMalloc(&dC, (size_t)s.M * s.N * sizeof(float)));
    CK(cudaMemcpy(dA, A.data(), a_elems * sizeof(T), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, B.data(), b_elems * sizeof(T), cudaMemcpyHostToDevice));
  }
  void free() {
    CK(cudaFree(dA));
    CK(cudaFree(dB));
    CK(cudaFree(dC));
  }
};

template <class G>
void launch(const typename G::Element* A, long long lda, const typename G::Element* B, long long ldb, float* C,
            int M, int N, int K, int split, cudaStream_t stream = 0) {
  static bool configured = false;
  if (!configured) {
    CK(cudaFuncSetAttribute(gemm_kernel<G>, cudaFuncAttributeMaxDynamicSharedMemorySize, G::SMEM_BYTES));
    configured = true;
  }
  dim3 grid(prism::ceil_div(N, G::TILE_N), prism::ceil_div(M, G::TILE_M), split);
  gemm_kernel<G><<<grid, G::THREADS, G::SMEM_BYTES, stream>>>(A, lda, B, ldb, C, N, M, N, K);
}

static int g_cases = 0, g_failed = 0;

template <class G>
void check(Problem<typename G::Element>& p, const char* cfg) {
  using T = typename G::Element;
  const Shape& s = p.s;
  CK(cudaMemset(p.dC, 0, (size_t)s.M * s.N * sizeof(float)));
  launch<G>(p.dA + s.offA, s.lda, p.dB + s.offB, s.ldb, p.dC, s.M, s.N, s.K, s.split);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<float> C((size_t)s.M * s.N);
  CK(cudaMemcpy(C.data(), p.dC, C.size() * sizeof(float), cudaMemcpyDeviceToHost));
  double err2 = 0;
  for (size_t i = 0; i < C.size(); ++i) {
    const double d = (double)C[i] - p.ref[i];
    err2 += d * d;
  }
  const double rel = std::sqrt(err2 / (p.ref_norm2 > 0 ? p.ref_norm2 : 1.0));
  const bool ok = rel <= Ty<T>::tol;  // NaN fails too
  ++g_cases;
  if (!ok) ++g_failed;
  std::printf("%s %-4s %-22s M=%-4d N=%-4d K=%-4d lda=%-4lld ldb=%-4lld offA=%d offB=%d split=%d (%s): rel_l2=%.3e\n",
              ok ? "ok  " : "FAIL", Ty<T>::name(), cfg, s.M, s.N, s.K, s.lda, s.ldb, s.offA, s.offB, s.split, s.what,
              rel);
}

#define PRISM_CHECK_CFG(T, BM, BN, BK, WM, WN, S) \
  check<prism::TileGemm<T, BM, BN, BK, WM, WN, S>>(p, "(" #BM "," #BN "," #BK "," #WM "," #WN ") S=" #S);
#define PRISM_CHECK_STAGES(T, BM, BN, BK, WM, WN) \
  PRISM_CHECK_CFG(T, BM, BN, BK, WM, WN, 1)       \
  PRISM_CHECK_CFG(T, BM, BN, BK, WM, WN, 2)       \
  PRISM_CHECK_CFG(T, BM, BN, BK, WM, WN, 3)       \
  PRISM_CHECK_CFG(T, BM, BN, BK, WM, WN, 4)

template <typename T>
void check_type(std::mt19937& rng) {
  for (int i = 0; i < kNumShapes; ++i) {
    Problem<T> p;
    p.init(kShapes[i], rng);
#ifdef PRISM_GEMM_CHECK_QUICK
    // A subset, e.g. for a compute_75 PTX build JIT-compiled on a newer GPU,
    // which exercises the SIMT fallback of the 16-bit types.
    PRISM_CHECK_CFG(T, 16, 64, 64, 1, 4, 2)
    PRISM_CHECK_CFG(T, 64, 128, 32, 2, 4, 3)
    PRISM_CHECK_CFG(T, 128, 128, 32, 2, 4, 1)
#else
    PRISM_CHECK_STAGES(T, 16, 64, 64, 1, 4)
    PRISM_CHECK_STAGES(T, 16, 128, 64, 1, 4)
    PRISM_CHECK_STAGES(T, 32, 64, 32, 1, 2)
    PRISM_CHECK_STAGES(T, 64, 64, 32, 2, 2)
    PRISM_CHECK_STAGES(T, 64, 128, 32, 2, 4)
    PRISM_CHECK_STAGES(T, 128, 128, 32, 2, 4)
#endif
    p.free();
  }
}

static void check_reduce_and_math() {
  const int n = 1000;
  std::vector<float> x(n);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> U(-4.0f, 4.0f);
  double sum = 0;
  float mx = -INFINITY;
  for (auto& v : x) v = U(rng), sum += v, mx = std::fmax(mx, v);
  float *dx, *dout;
  CK(cudaMalloc(&dx, n * sizeof(float)));
  CK(cudaMalloc(&dout, n * 6 * sizeof(float)));
  CK(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  reduce_kernel<<<1, 256>>>(dx, n, dout);
  CK(cudaGetLastError());
  float r[4];
  CK(cudaMemcpy(r, dout, sizeof r, cudaMemcpyDeviceToHost));
  bool ok = std::fabs(r[0] - sum) < 1e-3 && r[1] == mx && r[2] == r[0] && r[3] == 32.0f;
  ++g_cases, g_failed += !ok;
  std::printf("%s block_reduce sum=%.6f (ref %.6f) max=%g (ref %g) repeat=%g warp=%g\n", ok ? "ok  " : "FAIL", r[0],
              sum, r[1], mx, r[2], r[3]);

  math_kernel<<<prism::ceil_div(n, 256), 256>>>(dx, n, dout);
  CK(cudaGetLastError());
  std::vector<float> o(n * 6);
  CK(cudaMemcpy(o.data(), dout, o.size() * sizeof(float), cudaMemcpyDeviceToHost));
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    const double v = x[i];
    const double ref[6] = {std::exp(v),
                           v / (1 + std::exp(-v)),
                           0.5 * v * (1 + std::erf(v / std::sqrt(2.0))),
                           1 / (1 + std::exp(-v)),
                           1 / std::sqrt(std::fabs(v) + 1),
                           std::log(std::fabs(v) + 1)};
    for (int j = 0; j < 6; ++j) {
      // relative error, absolute below magnitude 1 (gelu/silu of large
      // negative x are tiny results of cancellation)
      const double e = std::fabs(o[i * 6 + j] - ref[j]) / std::fmax(std::fabs(ref[j]), 1.0);
      worst = std::fmax(worst, e);
    }
  }
  ok = worst < 2e-6;
  ++g_cases, g_failed += !ok;
  std::printf("%s math exp/silu/gelu/sigmoid/rsqrt/log worst rel err vs f64 = %.3e\n", ok ? "ok  " : "FAIL", worst);
  CK(cudaFree(dx));
  CK(cudaFree(dout));
}

// ------------------------------------------------------------------ benchmark

template <class G>
void bench_one(const char* name, int split) {
  const int M = 16, N = 4096, K = 4096;
  __half *A, *B;
  float* C;
  CK(cudaMalloc(&A, (size_t)M * K * 2));
  CK(cudaMalloc(&B, (size_t)K * N * 2));
  CK(cudaMalloc(&C, (size_t)M * N * 4));
  CK(cudaMemset(A, 0, (size_t)M * K * 2));
  CK(cudaMemset(B, 0, (size_t)K * N * 2));
  for (int i = 0; i < 3; ++i) launch<G>(A, K, B, N, C, M, N, K, split);
  CK(cudaDeviceSynchronize());
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  const int iters = 50;
  CK(cudaEventRecord(e0));
  for (int i = 0; i < iters; ++i) launch<G>(A, K, B, N, C, M, N, K, split);
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  CK(cudaGetLastError());
  float ms;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  const double us = ms * 1000.0 / iters;
  const double bytes = 2.0 * ((double)M * K + (double)K * N) + 4.0 * M * N;
  std::printf("bench f16 (16x4096)x(4096x4096) %-30s split=%d: %8.2f us  %7.1f GB/s  %6.2f TFLOP/s\n", name, split, us,
              bytes / us / 1e3, 2.0 * M * N * K / us / 1e6);
  CK(cudaFree(A));
  CK(cudaFree(B));
  CK(cudaFree(C));
}

static void bench() {
  using G1 = prism::TileGemm<__half, 16, 64, 64, 1, 4, 4>;
  using G2 = prism::TileGemm<__half, 16, 128, 64, 1, 4, 4>;
  using G3 = prism::TileGemm<__half, 16, 64, 64, 1, 4, 3>;
  for (int split : {1, 2, 4, 8}) bench_one<G1>("(16,64,64,1,4) S=4", split);
  for (int split : {1, 2, 4}) bench_one<G2>("(16,128,64,1,4) S=4", split);
  for (int split : {1, 4}) bench_one<G3>("(16,64,64,1,4) S=3", split);
}

int main(int argc, char** argv) {
  bool do_bench = false;
  for (int i = 1; i < argc; ++i) do_bench |= std::strcmp(argv[i], "--bench") == 0;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  std::mt19937 rng(12345);
  check_reduce_and_math();
  check_type<__half>(rng);
  check_type<__nv_bfloat16>(rng);
  check_type<float>(rng);
#ifndef PRISM_GEMM_CHECK_QUICK
  if (do_bench) bench();
#endif
  std::printf("%d cases, %d failed: %s\n", g_cases, g_failed, g_failed ? "FAIL" : "PASS");
  return g_failed ? 1 : 0;
}
