// Micro-benchmark (issue 6, session 5): a decode GEMM that reads B straight
// into mma.sync registers with split-K over a thread-block cluster
// (prism::ClusterGemv, below), against the TileGemm configuration prism
// tunes for rms_norm at d=1024, with three ways of computing the RMS row
// statistic (MODE 0: a warp per row after the main loop, as prism emits it;
// 1: none, timing only; 2: rows spread over all threads). Results:
// bench/results/gemv-micro-h200-session12-*.txt; bench/NOTES.md discusses them.
//
// Build and run on the GPU machine, from this folder:
//   nvcc -O3 -std=c++17 -arch=sm_90a -I ../../cuda gemv_cluster.cu -o /tmp/gemv_cluster && /tmp/gemv_cluster
#include <cstdio>
#include <vector>
#include <algorithm>
#include <string>
#include <cuda_fp16.h>
#include "prism/common.cuh"
#include "prism/memory.cuh"
#include "prism/mma.cuh"
#include "prism/reduce.cuh"
#include "prism/math.cuh"
#include "prism/gemm.cuh"
#include "prism/epilogue.cuh"

// ---- prism::ClusterGemv: the experimental decode GEMM (not in the device library)
// prism device library: a decode-shaped GEMM (at most 16 rows of A) that
// reads B straight into tensor-core registers, with split-K over a thread
// block cluster.
//
//   using G = prism::ClusterGemv<__half, 64, 1, 4, 4>;  // BN, WARPS_N, WARPS_K, CLUSTER
//   extern __shared__ __align__(16) char smem[];         // >= G::SMEM_BYTES per GEMM
//   G g;                                                 // launched with G::THREADS threads,
//   g.clear();                                           // a cluster of CLUSTER blocks along z
//   g.mainloop(A + m0 * lda, lda, m_valid, B + n0, ldb, n_valid, k_lo, k_hi, smem);
//   prism::gemv_reduce(smem, g);                         // the cluster's sum; every block gets a share
//   g.for_each([&](int r, int c, float v) { ... });      // this thread's share of the 16 x BN tile
//
// The same interface as TileGemm (clear, mainloop, for_each, for_each_pair),
// for tiles of 16 rows: a decode GEMM (a few tokens times a weight matrix)
// moves B and little else, so what costs is how many B bytes are in flight
// and how many instructions each takes. Here no byte of B passes through
// shared memory:
//
//   * Warp (wn, wk) owns columns [64 wn, 64 wn + 64) and the k16 steps wk,
//     wk + WARPS_K, ... of the block's K range. Per step, lane (g, t)
//     (g = lane / 4, t = lane % 4) loads four 16-byte chunks of B: rows
//     2t, 2t+1, 2t+8, 2t+9 of the step, columns 64 wn + 8 g .. + 7 (every
//     row of the step is 128 contiguous bytes, read whole by 8 lanes).
//   * Those registers are the B fragments of eight m16n8k16 MMAs: MMA j
//     takes element j of each chunk (two byte permutes per MMA), so its
//     logical column g is the physical column 64 wn + 8 g + j. The output
//     fragment maps back the same way.
//   * A's fragments (16 rows x 16 k) come from global memory through L1
//     (4-byte loads; A is small and every warp reads it).
//   * UNROLL steps' loads are issued before their MMAs: 4 * UNROLL 16-byte
//     loads in flight per lane.
//
// After the main loop every warp has a partial sum of its 16 x 64 tile.
// gemv_reduce stages them in shared memory, and with CLUSTER > 1 (sm_90:
// the blocks of a cluster split K) the blocks read each other's partials
// through distributed shared memory: each block sums, in a fixed order, a
// 1/CLUSTER share of the tile and runs the epilogue on it. No workspace,
// no counters, no second launch.
//
// Paths, per mainloop call (block-uniform): 16-byte loads when B is 16-byte
// aligned, ldb a multiple of 8, A 4-byte aligned, lda, k_begin and k_end even
// and the tile's BN columns all valid; element loads with every edge
// predicated otherwise. Rows of A at or past m_valid read as zero.
namespace prism {

namespace detail {
// 32-bit load of two consecutive A elements (k, k + 1) through L1.
__device__ __forceinline__ uint32_t load_pair(const void* p) { return __ldg(reinterpret_cast<const uint32_t*>(p)); }

// 16 bytes of a stream read once: not kept in L1, first out of L2.
// `policy`: an L2 evict_first policy (l2_evict_first_policy).
__device__ __forceinline__ uint4 load16_stream(const void* p, uint64_t policy) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p), "l"(policy));
  return v;
}

// Element j of `lo` (bits 0-15) and element j of `hi` (bits 16-31), of two
// 16-byte chunks of 16-bit elements.
__device__ __forceinline__ uint32_t pair_of(const uint4& lo, const uint4& hi, int j) {
  const uint32_t wl = j < 2 ? lo.x : j < 4 ? lo.y : j < 6 ? lo.z : lo.w;
  const uint32_t wh = j < 2 ? hi.x : j < 4 ? hi.y : j < 6 ? hi.z : hi.w;
  return __byte_perm(wl, wh, (j & 1) ? 0x7632 : 0x5410);
}

__device__ __forceinline__ void cluster_barrier() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#else
  __syncthreads();
#endif
}

__device__ __forceinline__ unsigned cluster_rank() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
#else
  return 0;
#endif
}

// A float of block `rank`'s shared memory at this block's address `p`.
__device__ __forceinline__ float load_cluster(const float* p, unsigned rank) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(smem_addr(p)), "r"(rank));
  float v;
  asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(remote) : "memory");
  return v;
#else
  (void)rank;
  return *p;
#endif
}
}  // namespace detail

template <typename T, int BN, int WARPS_N, int WARPS_K, int CLUSTER, int UNROLL = 4>
struct ClusterGemv {
  static_assert(sizeof(T) == 2, "ClusterGemv: T must be __half or __nv_bfloat16");
  static_assert(BN == 64 * WARPS_N, "ClusterGemv: BN must be 64 columns per column warp");
  static_assert(CLUSTER >= 1 && CLUSTER <= 8, "ClusterGemv: a cluster of 1 to 8 blocks");
  static constexpr int BM = 16, TILE_M = 16, TILE_N = BN;
  static constexpr int THREADS = 32 * WARPS_N * WARPS_K;
  // One GEMM's partial sums in shared memory: [WARPS_K][16][BN] f32.
  static constexpr int SMEM_BYTES = WARPS_K * BM * BN * 4;
  // Tile elements each block finishes, and each thread of it.
  static constexpr int SHARE = BM * BN / CLUSTER;
  static_assert((BM * BN) % CLUSTER == 0, "ClusterGemv: the cluster must split the tile evenly");
  static constexpr int OUT = (SHARE + THREADS - 1) / THREADS;

  float acc_[8][4];  // [MMA j][fragment element]
  float out_[OUT];   // after gemv_reduce: elements r * SHARE + threadIdx.x + q * THREADS

  __device__ __forceinline__ void clear() {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc_[j][e] = 0.0f;
  }

  __device__ __forceinline__ void mainloop(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                           int n_valid, long long k_begin, long long k_end, char* smem = nullptr,
                                           bool stream_b = true) {
    (void)smem, (void)stream_b;
    if (k_end <= k_begin) return;
    const bool vector = is_aligned(B, 16) && ldb % 8 == 0 && is_aligned(A, 4) && lda % 2 == 0 && k_begin % 2 == 0 &&
                        k_end % 2 == 0 && n_valid >= BN;
    if (vector)
      run<true>(A, lda, m_valid, B, ldb, n_valid, k_begin, k_end);
    else
      run<false>(A, lda, m_valid, B, ldb, n_valid, k_begin, k_end);
  }

  // Visits this thread's share of the finished tile (after gemv_reduce).
  template <class F>
  __device__ __forceinline__ void for_each(F&& f) const {
    const int base = (int)detail::cluster_rank() * SHARE;
#pragma unroll
    for (int q = 0; q < OUT; ++q) {
      const int i = threadIdx.x + q * THREADS;
      if (i < SHARE) f((base + i) / BN, (base + i) % BN, out_[q]);
    }
  }

  template <class F>
  __device__ __forceinline__ void for_each_pair(const ClusterGemv& other, F&& f) const {
    const int base = (int)detail::cluster_rank() * SHARE;
#pragma unroll
    for (int q = 0; q < OUT; ++q) {
      const int i = threadIdx.x + q * THREADS;
      if (i < SHARE) f((base + i) / BN, (base + i) % BN, out_[q], other.out_[q]);
    }
  }

  // This warp's partial sums into `part` ([WARPS_K][16][BN] floats).
  __device__ __forceinline__ void stage(float* part) const {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wn = warp % WARPS_N, wk = warp / WARPS_N, g = lane / 4, t = lane % 4;
    float* mine = part + wk * BM * BN;
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = g + 8 * (e >> 1), col = 64 * wn + 8 * (2 * t + (e & 1)) + j;
        mine[row * BN + col] = acc_[j][e];
      }
  }

  // out_ = this block's share of the sum over the cluster's blocks and their
  // warps' partials (rank-major, then warp order: a fixed order).
  __device__ __forceinline__ void gather(const float* part) {
    const int base = (int)detail::cluster_rank() * SHARE;
#pragma unroll
    for (int q = 0; q < OUT; ++q) {
      const int i = threadIdx.x + q * THREADS;
      float s = 0.0f;
      if (i < SHARE) {
        float v[CLUSTER * WARPS_K];
#pragma unroll
        for (int r = 0; r < CLUSTER; ++r)
#pragma unroll
          for (int w = 0; w < WARPS_K; ++w) {
            const float* p = part + w * BM * BN + base + i;
            v[r * WARPS_K + w] = CLUSTER > 1 ? detail::load_cluster(p, (unsigned)r) : *p;
          }
#pragma unroll
        for (int x = 0; x < CLUSTER * WARPS_K; ++x) s += v[x];
      }
      out_[q] = s;
    }
  }

 private:
  template <bool VECTOR>
  __device__ __forceinline__ void run(const T* A, long long lda, int m_valid, const T* B, long long ldb, int n_valid,
                                      long long k_begin, long long k_end) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wn = warp % WARPS_N, wk = warp / WARPS_N, g = lane / 4, t = lane % 4;
    const int col = 64 * wn + 8 * g;  // this lane's chunk of B
    const long long steps = (k_end - k_begin + 15) / 16;
    const bool row_lo = g < m_valid, row_hi = g + 8 < m_valid;
    const T* a_lo = A + (long long)g * lda;
    const T* a_hi = A + (long long)(g + 8) * lda;
    const uint64_t policy = l2_evict_first_policy();
    for (long long s0 = wk; s0 < steps; s0 += (long long)WARPS_K * UNROLL) {
      uint4 b[UNROLL][4];
      uint32_t a[UNROLL][4];
#pragma unroll
      for (int u = 0; u < UNROLL; ++u) {
        const long long k0 = k_begin + (s0 + (long long)u * WARPS_K) * 16;
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const long long k = k0 + 2 * t + (q & 1) + 8 * (q >> 1);
          b[u][q] = load_b<VECTOR>(B, ldb, n_valid, k, k_end, col, policy);
        }
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const long long k = k0 + 2 * t + 8 * (q >> 1);
          const bool hi = q & 1;
          a[u][q] = load_a<VECTOR>(hi ? a_hi : a_lo, hi ? row_hi : row_lo, k, k_end);
        }
      }
#pragma unroll
      for (int u = 0; u < UNROLL; ++u)
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const uint32_t bf[2] = {detail::pair_of(b[u][0], b[u][1], j), detail::pair_of(b[u][2], b[u][3], j)};
          mma_m16n8k16<T>(acc_[j], a[u], bf);
        }
    }
  }

  // Row k of B, columns [col, col + 8), zero past k_end or n_valid.
  template <bool VECTOR>
  __device__ __forceinline__ static uint4 load_b(const T* B, long long ldb, int n_valid, long long k, long long k_end,
                                                 int col, uint64_t policy) {
    if constexpr (VECTOR) {
      uint4 v = make_uint4(0u, 0u, 0u, 0u);
      if (k < k_end) v = detail::load16_stream(B + k * ldb + col, policy);
      return v;
    } else {
      (void)policy;
      uint4 v;
      T* e = reinterpret_cast<T*>(&v);
#pragma unroll
      for (int i = 0; i < 8; ++i) e[i] = (k < k_end && col + i < n_valid) ? B[k * ldb + col + i] : from_float<T>(0.0f);
      return v;
    }
  }

  // A[row][k], A[row][k + 1] of one row (`a_row`), zero past k_end or for an
  // invalid row.
  template <bool VECTOR>
  __device__ __forceinline__ static uint32_t load_a(const T* a_row, bool row_ok, long long k, long long k_end) {
    if constexpr (VECTOR) {
      uint32_t v = 0u;
      if (row_ok && k < k_end) v = detail::load_pair(a_row + k);
      return v;
    } else {
      uint32_t v;
      T* e = reinterpret_cast<T*>(&v);
      e[0] = (row_ok && k < k_end) ? a_row[k] : from_float<T>(0.0f);
      e[1] = (row_ok && k + 1 < k_end) ? a_row[k + 1] : from_float<T>(0.0f);
      return v;
    }
  }
};

// The cluster's sum of every GEMM in `gs` (one [WARPS_K][16][BN] f32 buffer
// each, consecutive in `smem`): afterwards each block holds its share
// (for_each). Every thread of every block of the cluster calls it.
template <class G, class... Gs>
__device__ __forceinline__ void gemv_reduce(char* smem, G& g, Gs&... gs) {
  float* part = reinterpret_cast<float*>(smem);
  g.stage(part);
  int n = 1;
  ((gs.stage(part + (n++) * (G::SMEM_BYTES / 4))), ...);
  detail::cluster_barrier();  // every partial of the cluster is staged
  g.gather(part);
  n = 1;
  ((gs.gather(part + (n++) * (G::SMEM_BYTES / 4))), ...);
  detail::cluster_barrier();  // no block leaves while another reads its partials
}

}  // namespace prism

__global__ void trivial() {}
__global__ void __launch_bounds__(256) bare_read(const uint4* __restrict__ w, long long n16, float* out) {
    uint4 acc = make_uint4(0,0,0,0);
    long long i = blockIdx.x * 256LL + threadIdx.x;
    #pragma unroll 8
    for (; i < n16; i += (long long)gridDim.x * 256) { uint4 v = __ldg(w + i); acc.x ^= v.x; acc.y ^= v.y; acc.z ^= v.z; acc.w ^= v.w; }
    if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345u) out[0] = 1.0f;
}

// rms stats over full rows then epilogue, shared by both kernels
template <class Gemm, int WARPS, int MODE>
__device__ __forceinline__ void rows_and_store(Gemm& gemm0, const __half* p0, __half* p2, long long d_n, long long d_d, long long g0_0, long long g1_0, int m_valid, int n_valid, float* rowstat6) {
    if (MODE == 1) { if (threadIdx.x < 16) rowstat6[threadIdx.x] = 1.0f; }
    else if (MODE == 2) {
        constexpr int LPR = WARPS * 32 / 16;
        const int row = threadIdx.x / LPR, sub = threadIdx.x % LPR;
        float st6 = 0.0f;
        if (row < m_valid) {
            const __half* xrow = p0 + g1_0 * d_d + (long long)row * d_d;
            #pragma unroll 16
            for (long long kc = sub * 8LL; kc < d_d; kc += LPR * 8) {
                const uint4 raw = *reinterpret_cast<const uint4*>(xrow + kc);
                const __half* xe = reinterpret_cast<const __half*>(&raw);
                #pragma unroll
                for (int e = 0; e < 8; ++e) { float v = __half2float(xe[e]); st6 += v * v; }
            }
        }
        #pragma unroll
        for (int o = LPR / 2; o > 0; o /= 2) st6 += __shfl_xor_sync(0xffffffffu, st6, o);
        if (sub == 0) rowstat6[row] = st6 * (float)(1.0 / (double)(d_d));
    } else {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        for (int row = warp; row < 16; row += WARPS) {
            float st6 = 0.0f;
            if (row < m_valid) {
                const __half* xrow = p0 + g1_0 * d_d + (long long)row * d_d;
                #pragma unroll 8
                for (long long kc = lane * 8LL; kc < d_d; kc += 256) {
                    const uint4 raw = *reinterpret_cast<const uint4*>(xrow + kc);
                    const __half* xe = reinterpret_cast<const __half*>(&raw);
                    #pragma unroll
                    for (int e = 0; e < 8; ++e) { float v = __half2float(xe[e]); st6 += v * v; }
                }
            }
            st6 = prism::warp_reduce<prism::SumOp>(st6);
            if (lane == 0) rowstat6[row] = st6 * (float)(1.0 / (double)(d_d));
        }
    }
    __syncthreads();
    gemm0.for_each([&](int row, int col, float acc) {
        if (row >= m_valid || col >= n_valid) return;
        const float v7 = acc * rsqrtf(rowstat6[row] + 1e-6f);
        p2[(g1_0 + row) * d_d + (g0_0 + col)] = __float2half_rn(v7);
    });
}

template <int MODE> __global__ void __launch_bounds__(256) ref_tile(const __half* __restrict__ p0, const __half* __restrict__ p1, __half* __restrict__ p2, long long d_n, long long d_d) {
    const long long g0_0 = blockIdx.x * 16LL, g1_0 = 0;
    using Gemm = prism::TileGemm<__half, 16, 16, 512, 1, 1, 3, 8>;
    extern __shared__ __align__(16) char smem_dyn[]; char* smem = smem_dyn;
    __shared__ float rowstat6[16];
    const int m_valid = (int)min((long long)16, d_n - g1_0);
    const int n_valid = (int)min((long long)16, d_d - g0_0);
    Gemm gemm0; gemm0.clear();
    gemm0.mainloop(p0, d_d, m_valid, p1 + g0_0, d_d, n_valid, 0LL, d_d, smem, true);
    rows_and_store<Gemm, 8, MODE>(gemm0, p0, p2, d_n, d_d, g0_0, g1_0, m_valid, n_valid, rowstat6);
}

template <int WN, int WK, int C, int U, int MODE>
__global__ void __cluster_dims__(1, 1, C) __launch_bounds__(32 * WN * WK) gemv_k(const __half* __restrict__ p0, const __half* __restrict__ p1, __half* __restrict__ p2, long long d_n, long long d_d) {
    using Gemm = prism::ClusterGemv<__half, 64 * WN, WN, WK, C, U>;
    const long long g0_0 = blockIdx.x * (64LL * WN), g1_0 = 0;
    extern __shared__ __align__(16) char smem_dyn[]; char* smem = smem_dyn;
    __shared__ float rowstat6[16];
    const int m_valid = (int)min((long long)16, d_n - g1_0);
    const int n_valid = (int)min((long long)(64 * WN), d_d - g0_0);
    const long long k_chunk = ((d_d + C * 16LL - 1) / (C * 16LL)) * 16LL;
    const long long k_lo = min(d_d, (long long)blockIdx.z * k_chunk), k_hi = min(d_d, k_lo + k_chunk);
    Gemm gemm0; gemm0.clear();
    gemm0.mainloop(p0, d_d, m_valid, p1 + g0_0, d_d, n_valid, k_lo, k_hi, smem, true);
    prism::gemv_reduce(smem, gemm0);
    rows_and_store<Gemm, WN * WK, MODE>(gemm0, p0, p2, d_n, d_d, g0_0, g1_0, m_valid, n_valid, rowstat6);
}

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("ERR %s at %d: %s\n", #x, __LINE__, cudaGetErrorString(e)); exit(1);} } while (0)

static void* flushbuf;
template <class L>
float timeit(L launch) {
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    for (int i = 0; i < 5; ++i) launch();
    std::vector<float> ts;
    for (int i = 0; i < 150; ++i) {
        cudaMemsetAsync(flushbuf, i & 0xff, 256 << 20);
        cudaEventRecord(a); launch(); cudaEventRecord(b); cudaEventSynchronize(b);
        float ms; cudaEventElapsedTime(&ms, a, b); ts.push_back(ms * 1000.f);
    }
    CK(cudaGetLastError());
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
}

// Time of `launch` in three states: cold (L2 flushed: code and data from
// DRAM), warm code (flushed, then `prime` runs the same kernel on other
// buffers: code in L2 and the instruction caches, data cold) and warm (no
// flush: code and data in L2).
template <class P, class L>
void costs(const char* name, P prime, L launch) {
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    float med[3];
    for (int m = 0; m < 3; ++m) {
        std::vector<float> ts;
        for (int i = 0; i < 5; ++i) launch();
        for (int i = 0; i < 150; ++i) {
            if (m < 2) cudaMemsetAsync(flushbuf, i & 0xff, 256 << 20);
            if (m == 1) prime();
            cudaEventRecord(a); launch(); cudaEventRecord(b); cudaEventSynchronize(b);
            float ms; cudaEventElapsedTime(&ms, a, b); ts.push_back(ms * 1000.f);
        }
        std::sort(ts.begin(), ts.end());
        med[m] = ts[ts.size() / 2];
    }
    CK(cudaGetLastError());
    printf("%-44s cold %6.2f  warm-code %6.2f  warm %6.2f us\n", name, med[0], med[1], med[2]);
}

int decompose() {
    for (int nd = 0; nd < 3; ++nd) {
        const int n = nd == 2 ? 16 : 8, d = nd == 0 ? 1024 : 4096;
        size_t xs = (size_t)n * d, ws = (size_t)d * d;
        __half *x, *w, *y, *x2, *w2, *y2;
        CK(cudaMalloc(&x, xs * 2)); CK(cudaMalloc(&w, ws * 2)); CK(cudaMalloc(&y, xs * 2));
        CK(cudaMalloc(&x2, xs * 2)); CK(cudaMalloc(&w2, ws * 2)); CK(cudaMalloc(&y2, xs * 2));
        CK(cudaMemset(x, 0, xs * 2)); CK(cudaMemset(w, 0, ws * 2)); CK(cudaMemset(x2, 0, xs * 2)); CK(cudaMemset(w2, 0, ws * 2));
        char name[128];
        printf("--- n=%d d=%d\n", n, d);
        costs("trivial", [&] { trivial<<<1, 32>>>(); }, [&] { trivial<<<1, 32>>>(); });
        costs("bare read W, 1056 blocks", [&] { bare_read<<<1056, 256>>>((const uint4*)w2, (long long)ws / 8, (float*)y2); },
              [&] { bare_read<<<1056, 256>>>((const uint4*)w, (long long)ws / 8, (float*)y); });
        for (int mode = 0; mode < 2; ++mode) {
            auto k = mode == 0 ? ref_tile<0> : ref_tile<1>;
            CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, 123648));
            snprintf(name, sizeof name, "TileGemm t16x16x512w118s3 %s", mode ? "no stats" : "stats");
            costs(name, [&] { k<<<d / 16, 256, 123648>>>(x2, w2, y2, n, d); }, [&] { k<<<d / 16, 256, 123648>>>(x, w, y, n, d); });
        }
        for (int mode = 0; mode < 2; ++mode) {
            auto k = mode == 0 ? gemv_k<1, 8, 2, 4, 0> : gemv_k<1, 8, 2, 4, 1>;
            dim3 grid(d / 64, 1, 2);
            snprintf(name, sizeof name, "ClusterGemv wk=8 c=2 %s", mode ? "no stats" : "stats");
            costs(name, [&] { k<<<grid, 256, 8 * 16 * 64 * 4>>>(x2, w2, y2, n, d); }, [&] { k<<<grid, 256, 8 * 16 * 64 * 4>>>(x, w, y, n, d); });
        }
        cudaFree(x); cudaFree(w); cudaFree(y); cudaFree(x2); cudaFree(w2); cudaFree(y2);
    }
    return 0;
}

int main(int argc, char** argv) {
    CK(cudaMalloc(&flushbuf, 256 << 20));
    if (argc > 1 && std::string(argv[1]) == "costs") return decompose();
    float triv = timeit([&] { trivial<<<1, 32>>>(); });
    printf("trivial %.2f us\n", triv);
    int ns[2] = {8, 16}; int ds[3] = {1024, 2048, 4096};
    for (int n : ns) for (int d : ds) {
        size_t xs = (size_t)n * d, ws = (size_t)d * d;
        std::vector<__half> hx(xs), hw(ws);
        unsigned s = 12345;
        auto rnd = [&] { s = s * 1664525u + 1013904223u; return ((s >> 8) & 0xffff) / 65536.0f - 0.5f; };
        for (auto& v : hx) v = __float2half(rnd() * 2);
        for (auto& v : hw) v = __float2half(rnd() * 2 / sqrtf(d));
        __half *x, *w, *y, *yr;
        CK(cudaMalloc(&x, xs * 2)); CK(cudaMalloc(&w, ws * 2)); CK(cudaMalloc(&y, xs * 2)); CK(cudaMalloc(&yr, xs * 2));
        CK(cudaMemcpy(x, hx.data(), xs * 2, cudaMemcpyHostToDevice)); CK(cudaMemcpy(w, hw.data(), ws * 2, cudaMemcpyHostToDevice));
        CK(cudaFuncSetAttribute(ref_tile<0>, cudaFuncAttributeMaxDynamicSharedMemorySize, 123648));
        CK(cudaFuncSetAttribute(ref_tile<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, 123648));
        CK(cudaFuncSetAttribute(ref_tile<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, 123648));
        float tr = timeit([&] { ref_tile<0><<<d / 16, 256, 123648>>>(x, w, yr, n, d); });
        float tr1 = timeit([&] { ref_tile<1><<<d / 16, 256, 123648>>>(x, w, y, n, d); });
        float tr2 = timeit([&] { ref_tile<2><<<d / 16, 256, 123648>>>(x, w, y, n, d); });
        printf("n=%d d=%d ref_tile nostats %.2f us flatstats %.2f us\n", n, d, tr1, tr2);
        std::vector<__half> href(xs), hy(xs);
        CK(cudaMemcpy(href.data(), yr, xs * 2, cudaMemcpyDeviceToHost));
        float tb = timeit([&] { bare_read<<<264, 256>>>((const uint4*)w, (long long)ws / 8, (float*)y); });
        float tb2 = timeit([&] { bare_read<<<1056, 256>>>((const uint4*)w, (long long)ws / 8, (float*)y); });
        printf("n=%d d=%d bare read of W: 264 blocks %.2f us, 1056 blocks %.2f us\n", n, d, tb, tb2);
        printf("n=%d d=%d ref_tile(t16x16x512w118s3) %.2f us\n", n, d, tr);
        auto run = [&](auto kern, int wn, int wk, int c, int u, int mode) {
            int smem = wk * 16 * 64 * wn * 4;
            if (smem > 48 * 1024) CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
            dim3 grid(d / (64 * wn), 1, c);
            CK(cudaMemset(y, 0xff, xs * 2));
            kern<<<grid, 32 * wn * wk, smem>>>(x, w, y, n, d);
            CK(cudaDeviceSynchronize());
            CK(cudaMemcpy(hy.data(), y, xs * 2, cudaMemcpyDeviceToHost));
            double err = 0; for (size_t i = 0; i < xs; ++i) { double e = fabs((double)__half2float(hy[i]) - (double)__half2float(href[i])); if (!(e <= 1e9)) e = 1e9; if (mode == 1) e = 0; err = std::max(err, e); }
            float t = timeit([&] { kern<<<grid, 32 * wn * wk, smem>>>(x, w, y, n, d); });
            printf("n=%d d=%d gemv wn=%d wk=%d c=%d u=%d mode=%d blocks=%d %.2f us maxerr=%.3g\n", n, d, wn, wk, c, u, mode, grid.x * grid.z, t, err);
        };
#define V(WN, WK, C, U) run(gemv_k<WN, WK, C, U, 0>, WN, WK, C, U, 0); run(gemv_k<WN, WK, C, U, 1>, WN, WK, C, U, 1); run(gemv_k<WN, WK, C, U, 2>, WN, WK, C, U, 2)
        V(1, 4, 4, 4); V(1, 4, 8, 2); V(1, 8, 2, 4); V(1, 8, 4, 2); V(1, 2, 8, 4); V(1, 4, 2, 4); V(1, 8, 1, 4); V(1, 8, 2, 2);
        cudaFree(x); cudaFree(w); cudaFree(y); cudaFree(yr);
    }
    return 0;
}
