// prism device library: block-level tiled GEMM.
//
//   using G = prism::TileGemm<__half, 64, 128, 32, 2, 4, 3>;
//   extern __shared__ __align__(16) char smem[];       // >= G::SMEM_BYTES
//   G g;                                                // launched with G::THREADS threads
//   g.clear();
//   g.mainloop(A + m0 * lda, lda, M - m0, B + n0, ldb, N - n0, 0, K, smem);
//   g.for_each([&](int r, int c, float v) {
//     if (m0 + r < M && n0 + c < N) C[(m0 + r) * ldc + n0 + c] = prism::from_float<__half>(v);
//   });
//
// One thread block computes a BM x BN tile of C += A * B with f32 accumulators
// held in registers. A and B are row-major in global memory; the block walks K
// in steps of BK through a STAGES-deep ring of shared-memory buffers.
//
// Paths, chosen at compile time by element type and architecture:
//   * __half / __nv_bfloat16 on sm_80+: tensor cores. cp.async multi-stage
//     pipeline, ldmatrix (.trans for the row-major B operand) and
//     mma.sync.m16n8k16 with f32 accumulation. Each warp owns a
//     (BM / WARPS_M) x (BN / WARPS_N) warp tile.
//   * float (any arch), and 16-bit types below sm_80: SIMT. Same shared-memory
//     tiles and loader, f32 FMA with a TM x TN register block per thread.
// and, at run time, per mainloop call (a block-uniform branch):
//   * vector loader: 16-byte cp.async chunks, when both base pointers are
//     16-byte aligned and lda, ldb and k_begin are multiples of the 16-byte
//     vector width (8 elements for 16-bit types, 4 for float);
//   * scalar loader otherwise: predicated element loads into the same layout.
// Both loaders predicate at element granularity on the M, N and K edges: a
// 16-byte chunk that straddles an edge is loaded element by element, a chunk
// entirely outside is zero-filled, so nothing outside the valid region is read.
//
// Shared-memory layout (per stage): the A tile as BM rows of BK elements and
// the B tile as BK rows of BN elements, each row padded by 16 bytes. The
// padding makes the 8 row addresses of every ldmatrix phase (and of the
// 16-byte stores) fall into distinct banks for the listed tile shapes.
//
// SMEM_BYTES and THREADS do not depend on the architecture, so host code can
// use them to launch. SMEM_BYTES above 48 KiB needs
// cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes).
#pragma once

#include "prism/cluster.cuh"
#include "prism/common.cuh"
#include "prism/low_rank.cuh"
#include "prism/memory.cuh"
#include "prism/mma.cuh"

namespace prism {

namespace detail {
// Element types that the tensor core path handles.
template <typename T> struct is_mma_type {
  static constexpr bool value = false;
};
template <> struct is_mma_type<__half> {
  static constexpr bool value = true;
};
template <> struct is_mma_type<__nv_bfloat16> {
  static constexpr bool value = true;
};

// Zeros every element of an accumulator array (groups of 4 f32).
template <int N>
__device__ __forceinline__ void zero(float (&a)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) a[i][e] = 0.0f;
}

// Four consecutive elements of T (8-byte aligned for 16-bit types, 16-byte
// for float) from shared memory, widened to f32.
__device__ __forceinline__ void load4_f32(const float* p, float (&out)[4]) {
  const float4 v = *reinterpret_cast<const float4*>(p);
  out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
}
template <typename T>
__device__ __forceinline__ void load4_f32(const T* p, float (&out)[4]) {
  const uint2 v = *reinterpret_cast<const uint2*>(p);
  const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) out[i] = to_float(e[i]);
}

}  // namespace detail

// The accumulator side of a block GEMM (TileGemm, WgmmaGemm): GROUPS groups
// of 4 f32 values per thread and what the epilogue does with them. Derived
// provides visit(f), calling f(i, e, row, col) for every element acc_[i][e]
// that holds a sum, at its tile position, and holds_sums(): whether this
// thread has any.
template <class Derived, int GROUPS>
struct GemmAccumulators {
  float acc_[GROUPS][4];

  __device__ __forceinline__ void clear() { detail::zero(acc_); }

  // Calls f(row, col, value) for every accumulator element of this thread,
  // 0 <= row < TILE_M, 0 <= col < TILE_N. Every (row, col) of the tile is
  // visited by exactly one thread of the block.
  template <class F>
  __device__ __forceinline__ void for_each(F&& f) const {
    self().visit([&](int i, int e, int row, int col) { f(row, col, acc_[i][e]); });
  }

  // Like for_each, over this accumulator and `other`'s (same configuration,
  // e.g. two GEMMs sharing the A operand): f(row, col, value, other_value).
  template <class F>
  __device__ __forceinline__ void for_each_pair(const Derived& other, F&& f) const {
    self().visit([&](int i, int e, int row, int col) { f(row, col, acc_[i][e], other.acc_[i][e]); });
  }

  // Replaces every accumulator element that holds a sum by f(row, col,
  // value) (the combine of a split-K across blocks adds the other splits').
  template <class F>
  __device__ __forceinline__ void transform(F&& f) {
    self().visit([&](int i, int e, int row, int col) { acc_[i][e] = f(row, col, acc_[i][e]); });
  }

  // Split-K combine in the tile's last block: every accumulator element
  // becomes the sum over s = 0 .. SPLITS-1, in that order, of part(s, row,
  // col) (split s's partial sum, read from the workspace), with this block's
  // own split `own` taken from the registers (the values it stored). The
  // splits are the outer loop, so the loads of one split (every element of
  // the thread) are independent and in flight together: SPLITS round trips
  // to L2, not one per element. `valid(row, col)`: elements outside it are
  // left as they are (nothing is read for them).
  template <int SPLITS, class Valid, class Part>
  __device__ __forceinline__ void combine_splits(int own, Valid&& valid, Part&& part) {
    if (!self().holds_sums()) return;
    float mine[GROUPS][4];
#pragma unroll
    for (int i = 0; i < GROUPS; ++i)
#pragma unroll
      for (int e = 0; e < 4; ++e) mine[i][e] = acc_[i][e], acc_[i][e] = 0.0f;
#pragma unroll 4
    for (int s = 0; s < SPLITS; ++s) {
      if (s == own) {
#pragma unroll
        for (int i = 0; i < GROUPS; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc_[i][e] += mine[i][e];
      } else {
        transform([&](int row, int col, float v) { return valid(row, col) ? v + part(s, row, col) : v; });
      }
    }
  }

  // Split-K across a thread block cluster (the tile's SPLITS blocks are one
  // cluster, its rank r the split): every block stages its sums in its own
  // shared memory (stage_sums), then after a cluster barrier one block adds
  // every split's (add_cluster_sums), reading them through distributed
  // shared memory in split order 0, 1, .. SPLITS-1 from zero: the same sums
  // in the same order as combine_splits, so the same bits. A second barrier
  // keeps the stages alive until they are read. No workspace, counter or L2
  // round trip. sm_90+ (elsewhere these trap).
  //
  // The stage: Derived::SPLIT_STAGE_BYTES (TILE_M * TILE_N floats) at a
  // 16-byte aligned `stage`, group i of the k-th thread holding sums at
  // float4 i * Derived::SUM_THREADS + k (every block of the cluster has the
  // same layout, so a thread reads its own positions).
  __device__ __forceinline__ void stage_sums(char* stage) const {
    if (!self().holds_sums()) return;
    float4* s = reinterpret_cast<float4*>(stage);
#pragma unroll
    for (int i = 0; i < GROUPS; ++i)
      s[i * Derived::SUM_THREADS + threadIdx.x] = make_float4(acc_[i][0], acc_[i][1], acc_[i][2], acc_[i][3]);
  }

  template <int SPLITS>
  __device__ __forceinline__ void add_cluster_sums(const char* stage) {
    static_assert(SPLITS >= 2 && SPLITS <= 16, "add_cluster_sums: 2 to 16 splits (Hopper's largest cluster)");
    if (!self().holds_sums()) return;
    const uint32_t mine = smem_addr(stage) + threadIdx.x * 16;
    detail::zero(acc_);
#pragma unroll
    for (int s = 0; s < SPLITS; ++s) {
      const uint32_t peer = cluster::map(mine, s);
      float4 v[GROUPS];
#pragma unroll
      for (int i = 0; i < GROUPS; ++i) v[i] = cluster::load4(peer + i * Derived::SUM_THREADS * 16);
#pragma unroll
      for (int i = 0; i < GROUPS; ++i) {
        acc_[i][0] += v[i].x;
        acc_[i][1] += v[i].y;
        acc_[i][2] += v[i].z;
        acc_[i][3] += v[i].w;
      }
    }
  }

 private:
  __device__ __forceinline__ const Derived& self() const { return static_cast<const Derived&>(*this); }
};

template <typename T, int BM, int BN, int BK, int WARPS_M, int WARPS_N, int STAGES, int WARPS_K = 1>
struct TileGemm : GemmAccumulators<TileGemm<T, BM, BN, BK, WARPS_M, WARPS_N, STAGES, WARPS_K>,
                                       BM * BN / (WARPS_M * WARPS_N * 32) / 4> {
  // ------------------------------------------------------------ configuration
  using Element = T;
  static constexpr int TILE_M = BM, TILE_N = BN, TILE_K = BK, NUM_STAGES = STAGES;
  static constexpr int THREADS = WARPS_M * WARPS_N * WARPS_K * 32;
  // Threads of one k group: each group accumulates the whole BM x BN tile
  // over its share of every K tile (k16 steps kg, kg + WARPS_K, ...); the
  // groups' sums are added at the end of mainloop, into group 0.
  static constexpr int GROUP_THREADS = WARPS_M * WARPS_N * 32;
  // Threads that hold sums after mainloop (k group 0), and the bytes of a
  // split's sums staged for a cluster's combine (stage_sums).
  static constexpr int SUM_THREADS = GROUP_THREADS;
  static constexpr int SPLIT_STAGE_BYTES = BM * BN * (int)sizeof(float);
  // Elements per 16-byte chunk: the unit of the vector loader.
  static constexpr int VEC = vec16<T>::elems;
  // Shared-memory row strides (elements) of the A and B tiles: one chunk of padding.
  static constexpr int LDA_S = BK + VEC;
  static constexpr int LDB_S = BN + VEC;
  static constexpr int A_STAGE = BM * LDA_S;  // elements per stage
  static constexpr int B_STAGE = BK * LDB_S;
  static constexpr int PIPE_BYTES = STAGES * (A_STAGE + B_STAGE) * (int)sizeof(T);
  // The k groups' partial sums pass through shared memory once.
  static constexpr int REDUCE_BYTES = (WARPS_K - 1) * BM * BN * (int)sizeof(float);
  static constexpr int SMEM_BYTES = cmax(PIPE_BYTES, REDUCE_BYTES);
  // mainloop_pair's pipeline: the A tile and two B tiles per stage.
  static constexpr int PAIR_PIPE_BYTES = STAGES * (A_STAGE + 2 * B_STAGE) * (int)sizeof(T);
  static constexpr int PAIR_SMEM_BYTES = cmax(PAIR_PIPE_BYTES, REDUCE_BYTES);
  // Accumulator elements per thread (the same for both paths).
  static constexpr int ACC = BM * BN / GROUP_THREADS;

  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "TileGemm: T must be __half, __nv_bfloat16 or float");
  static_assert(STAGES >= 1 && STAGES <= 8, "TileGemm: STAGES must be in [1, 8]");
  static_assert(THREADS <= 1024, "TileGemm: at most 32 warps");
  static_assert(BK % VEC == 0 && BN % VEC == 0, "TileGemm: BK and BN must be multiples of 16 bytes");
  static_assert((BM * BN) % (GROUP_THREADS * 4) == 0, "TileGemm: BM*BN must be a multiple of 4*32*WARPS_M*WARPS_N");
  static_assert(WARPS_K >= 1 && (BK / 16) % WARPS_K == 0 && BK % (4 * WARPS_K) == 0,
                "TileGemm: the k16 steps of a K tile must divide evenly among the WARPS_K groups");

  // Tensor core path: warp tile and its m16n8 fragments.
  static constexpr bool kMma = detail::is_mma_type<T>::value;
  static constexpr int WM = BM / WARPS_M;
  static constexpr int WN = BN / WARPS_N;
  static constexpr int MI = WM / 16;  // m16 fragments per warp
  static constexpr int NI = WN / 8;   // n8 fragments per warp
  static_assert(!kMma || (BM % (16 * WARPS_M) == 0 && BN % (16 * WARPS_N) == 0 && BK % 16 == 0),
                "TileGemm (16-bit types): BM/WARPS_M and BN/WARPS_N must be multiples of 16, BK of 16");

  // SIMT path: each thread owns TM rows x TN columns; TX x TY threads.
  // Rows ty*TM + i; columns j*(4*TX) + 4*tx + q (float4-wide column groups,
  // so a warp's B loads are contiguous).
  static constexpr int TN = ACC >= 16 ? 8 : 4;
  static constexpr int TM = ACC / TN;
  static constexpr int TX = BN / TN;
  static constexpr int TY = GROUP_THREADS / TX;
  static_assert(BN % TN == 0 && GROUP_THREADS % TX == 0 && TY * TM == BM && BK % 4 == 0,
                "TileGemm (SIMT path): BN/TN threads per row must divide THREADS and cover BM");

  // Low-rank side product (mainloop_side; low_rank.cuh): A's K tile of the
  // side operand is one more buffer per stage; tensor cores: warps (wm, wn)
  // with wn < 2 hold the side sums of their WM rows (columns 8 wn .. +7, or
  // all 16 when WARPS_N is 1), one part per k group; SIMT: thread t holds
  // elements t, t + THREADS, ... over whole K tiles (part 0).
  using SideTile = prism::SideTile<T, BK, THREADS>;
  static constexpr int SIDE_PARTS = WARPS_K;
  using LowRank = LowRankEpilogue<T, BM, BN, SIDE_PARTS>;
  static constexpr int SIDE_CHUNKS = WARPS_N == 1 ? 2 : 1;  // side n8 fragments per side warp
  static constexpr int SIDE_SIMT = ceil_div(BM * LOW_RANK, THREADS);
  static constexpr int SIDE_GROUPS = cmax(MI * SIDE_CHUNKS, ceil_div(SIDE_SIMT, 4));
  static constexpr int SIDE_PIPE_BYTES = PIPE_BYTES + STAGES * SideTile::STAGE_BYTES;
  static constexpr int SIDE_SMEM_BYTES = cmax(cmax(SIDE_PIPE_BYTES, REDUCE_BYTES), LowRank::SMEM_BYTES);
  // mainloop, then add_low_rank_input.
  static constexpr int INPUT_RANK_SMEM_BYTES = cmax(SMEM_BYTES, LowRank::INPUT_SMEM_BYTES);

  // ------------------------------------------------------------ state
  // Accumulators (GemmAccumulators::acc_), in groups of 4 (tensor core: one
  // m16n8 fragment per group, index mi * NI + ni; SIMT: row i, columns
  // j*4TX + 4tx + 0..3 at i*TN/4 + j).
  using Accumulators = GemmAccumulators<TileGemm, ACC / 4>;  // a base only if the group counts agree
  using Accumulators::acc_;
  // The side product's partial sums (mainloop_side).
  float side_[SIDE_GROUPS][4];

  // acc[BM,BN] += A[0:BM, k_begin:k_end] * B[k_begin:k_end, 0:BN]; see the
  // header comment. All THREADS threads must call it with the same arguments.
  // Ends with __syncthreads(): smem may be reused right after it returns.
  // `stream_b`: B is read by this block only (one block row of C, e.g. a
  // decode GEMM's weights), so its tiles are loaded L2 evict_first.
  __device__ __forceinline__ void mainloop(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                           int n_valid, long long k_begin, long long k_end, char* smem,
                                           bool stream_b = false) {
    if (k_end <= k_begin) return;
    const bool vector = is_aligned(A, 16) && is_aligned(B, 16) && lda % VEC == 0 && ldb % VEC == 0 &&
                        k_begin % VEC == 0;
    // Plain cp.async unless streaming: a cache-hinted copy costs the prefill
    // GEMMs 5-40 % (measured on the H200), even with an evict_normal policy.
    if (vector && stream_b)
      run<true, true>(A, lda, m_valid, B, ldb, n_valid, k_begin, k_end, smem);
    else if (vector)
      run<true, false>(A, lda, m_valid, B, ldb, n_valid, k_begin, k_end, smem);
    else
      run<false, false>(A, lda, m_valid, B, ldb, n_valid, k_begin, k_end, smem);
    if constexpr (WARPS_K > 1) reduce_groups(smem);
  }

  // g0 += A * B0 and g1 += A * B1 in one pipeline (a gated MLP's two GEMMs):
  // each K tile of A is loaded once, and both B streams are in flight
  // together, instead of two main loops one after the other. As mainloop
  // otherwise (ldb is both B's row stride); smem holds PAIR_SMEM_BYTES.
  __device__ __forceinline__ static void mainloop_pair(TileGemm& g0, TileGemm& g1, const T* A, long long lda,
                                                       int m_valid, const T* B0, const T* B1, long long ldb,
                                                       int n_valid, long long k_begin, long long k_end, char* smem,
                                                       bool stream_b = false) {
    if (k_end <= k_begin) return;
    const bool vector = is_aligned(A, 16) && is_aligned(B0, 16) && is_aligned(B1, 16) && lda % VEC == 0 &&
                        ldb % VEC == 0 && k_begin % VEC == 0;
    if (vector && stream_b)
      run_pair<true, true>(g0, g1, A, lda, m_valid, B0, B1, ldb, n_valid, k_begin, k_end, smem);
    else if (vector)
      run_pair<true, false>(g0, g1, A, lda, m_valid, B0, B1, ldb, n_valid, k_begin, k_end, smem);
    else
      run_pair<false, false>(g0, g1, A, lda, m_valid, B0, B1, ldb, n_valid, k_begin, k_end, smem);
    if constexpr (WARPS_K > 1) {
      g0.reduce_groups(smem);
      g1.reduce_groups(smem);
    }
  }

  // As mainloop, and the side product S[BM, 0:16] = A[0:BM, k_begin:k_end] *
  // S_op[k_begin:k_end, 0:rank] (rank <= 16, row stride lds) from the same A
  // tiles, kept in side_ for add_low_rank. smem holds SIDE_SMEM_BYTES.
  __device__ __forceinline__ void mainloop_side(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                                int n_valid, const T* S, long long lds, int rank, long long k_begin,
                                                long long k_end, char* smem, bool stream_b = false) {
    detail::zero(side_);
    if (k_end <= k_begin) return;
    SideTile side(S, lds, rank, k_begin, k_end);
    const bool vector = is_aligned(A, 16) && is_aligned(B, 16) && lda % VEC == 0 && ldb % VEC == 0 &&
                        k_begin % VEC == 0 && side.vector_ok();
    if (vector && stream_b)
      run_side<true, true>(A, lda, m_valid, B, ldb, n_valid, side, k_begin, k_end, smem);
    else if (vector)
      run_side<true, false>(A, lda, m_valid, B, ldb, n_valid, side, k_begin, k_end, smem);
    else
      run_side<false, false>(A, lda, m_valid, B, ldb, n_valid, side, k_begin, k_end, smem);
    if constexpr (WARPS_K > 1) reduce_groups(smem);
  }

  // acc += round_T(S) * B_op[0:rank, 0:n_valid] after mainloop_side (B_op
  // row-major, row stride ldb, at the block's first column). smem: at least
  // SIDE_SMEM_BYTES, free. Every thread calls it.
  __device__ __forceinline__ void add_low_rank(const T* B, long long ldb, int rank, int n_valid, char* smem) {
    LowRank::apply(*this, B, ldb, rank, n_valid, smem);
  }

  // acc += S[0:m_valid, 0:rank] * B_op[0:rank, 0:n_valid], S an input (T,
  // row-major, row stride lds, at the block's first row), after the main
  // loop (and split-K's combine). smem: INPUT_RANK_SMEM_BYTES, free. Every
  // thread calls it.
  __device__ __forceinline__ void add_low_rank_input(const T* S, long long lds, int m_valid, const T* B,
                                                     long long ldb, int rank, int n_valid, char* smem) {
    LowRank::apply_input(*this, S, lds, m_valid, B, ldb, rank, n_valid, smem);
  }

  // LowRankEpilogue's view of the side sums: f(part, row, col, value).
  template <class F>
  __device__ __forceinline__ void side_partials(F&& f) const {
#if PRISM_HAS_MMA_SM80
    if constexpr (kMma) {
      const int warp = (threadIdx.x % GROUP_THREADS) / 32, lane = threadIdx.x % 32;
      const int kg = threadIdx.x / GROUP_THREADS;
      const int wm = warp / WARPS_N, wn = warp % WARPS_N;
#pragma unroll
      for (int mi = 0; mi < MI && wn < 2; ++mi)
#pragma unroll
        for (int c = 0; c < SIDE_CHUNKS; ++c)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            f(kg, wm * WM + mi * 16 + lane / 4 + (e / 2) * 8, (SIDE_CHUNKS == 2 ? c : wn) * 8 + (lane % 4) * 2 + e % 2,
              side_[mi * SIDE_CHUNKS + c][e]);
    } else
#endif
#pragma unroll
    for (int i = 0; i < SIDE_SIMT; ++i) {
      const int idx = threadIdx.x + i * THREADS;
      if (idx < BM * LOW_RANK) {
#pragma unroll
        for (int p = 0; p < SIDE_PARTS; ++p)
          f(p, idx / LOW_RANK, idx % LOW_RANK, p == 0 ? side_[i / 4][i % 4] : 0.0f);
      }
    }
  }

  // acc += sS[BM][16] * sB[16][BN] (shared memory, row strides lds, ldb).
  __device__ __forceinline__ void rank_update(const T* sS, int lds, const T* sB, int ldb) {
    if (!holds_sums()) return;
#if PRISM_HAS_MMA_SM80
    if constexpr (kMma) {
      const int warp = (threadIdx.x % GROUP_THREADS) / 32;
      const int wm = warp / WARPS_N, wn = warp % WARPS_N;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
          detail::rank16_fragment<T>(acc_[mi * NI + ni], sS, lds, sB, ldb, wm * WM + mi * 16, wn * WN + ni * 8);
    } else
#endif
    this->transform([&](int row, int col, float v) {
#pragma unroll
      for (int j = 0; j < LOW_RANK; ++j) v = fmaf(to_float(sS[row * lds + j]), to_float(sB[j * ldb + col]), v);
      return v;
    });
  }

  // Whether this thread holds sums (k group 0).
  __device__ __forceinline__ bool holds_sums() const { return WARPS_K == 1 || threadIdx.x < GROUP_THREADS; }

  // Calls f(i, e, row, col) for every accumulator element acc_[i][e] of this
  // thread (k group 0 only: it holds the sums), at tile position (row, col).
  template <class F>
  __device__ __forceinline__ void visit(F&& f) const {
    if (!holds_sums()) return;
#if PRISM_HAS_MMA_SM80
    if constexpr (kMma) {
      const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
      const int row0 = (warp / WARPS_N) * WM + lane / 4;
      const int col0 = (warp % WARPS_N) * WN + (lane % 4) * 2;
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni)
#pragma unroll
          for (int e = 0; e < 4; ++e) f(mi * NI + ni, e, row0 + mi * 16 + (e / 2) * 8, col0 + ni * 8 + (e % 2));
      return;
    }
#endif
    const int tx = threadIdx.x % TX, ty = (threadIdx.x % GROUP_THREADS) / TX;
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int j = 0; j < TN / 4; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q) f(i * (TN / 4) + j, q, ty * TM + i, j * 4 * TX + tx * 4 + q);
  }


 private:
  // Adds the accumulators of k groups 1..WARPS_K-1 into group 0's (thread t
  // of group g pairs with thread t of group 0). smem is free on entry (the
  // pipeline ended with a barrier) and again on return.
  __device__ __forceinline__ void reduce_groups(char* smem) {
    float* buf = reinterpret_cast<float*>(smem);
    const int g = threadIdx.x / GROUP_THREADS, t = threadIdx.x % GROUP_THREADS;
    if (g > 0) {
#pragma unroll
      for (int i = 0; i < ACC / 4; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) buf[((g - 1) * ACC + i * 4 + e) * GROUP_THREADS + t] = acc_[i][e];
    }
    __syncthreads();
    if (g == 0) {
#pragma unroll
      for (int h = 0; h < WARPS_K - 1; ++h)
#pragma unroll
        for (int i = 0; i < ACC / 4; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc_[i][e] += buf[(h * ACC + i * 4 + e) * GROUP_THREADS + t];
    }
    __syncthreads();
  }

  // ------------------------------------------------------------ loading
  // Thread `tid` copies 16-byte chunks of a fixed column: A chunks at tile row
  // tid / A_ROW + i * A_RSTEP, column (tid % A_ROW) * VEC; B chunks at tile row
  // tid / B_ROW + i * B_RSTEP, column (tid % B_ROW) * VEC. Consecutive threads
  // take consecutive chunks of a row, so global reads coalesce, and a thread's
  // chunks differ only by a row stride: one pointer walks them, and the K / N
  // edge tests are shared by all chunks of the thread.
  static constexpr int A_ROW = BK / VEC, A_RSTEP = THREADS / A_ROW, A_ITERS = ceil_div(BM, A_RSTEP);
  static constexpr int B_ROW = BN / VEC, B_RSTEP = THREADS / B_ROW, B_ITERS = ceil_div(BK, B_RSTEP);
  static_assert(THREADS % A_ROW == 0 && THREADS % B_ROW == 0,
                "TileGemm: the threads must cover whole rows of 16-byte chunks of the A and B tiles");

  // Per-thread state of the global -> shared copies for the next K tile:
  // where this thread's first A / B chunks are and how many of their elements
  // are valid. Offsets along K are relative to k_begin and kept in int (a
  // mainloop call covers fewer than 2^31 K elements); global addresses and
  // strides are 64-bit.
  struct Loader {
    const T* a;          // this thread's first A chunk of the next tile
    const T* b;          // this thread's first B chunk of the next tile
    const T* a_base;     // valid pointers for zero-fill copies (nothing is read)
    const T* b_base;
    long long a_step;    // A_RSTEP rows of A
    long long b_step;    // B_RSTEP rows of B
    long long b_tile;    // BK rows of B
    int a_in, a_rows;    // tile rows / valid rows from this thread's first A row
    int a_k_left;        // valid K elements from this thread's A chunk column
    int b_in, b_k_left;  // tile rows / valid K rows from this thread's first B row
    int b_n_left;        // valid N elements from this thread's B chunk column
    int sa, sb;          // this thread's first chunk in an A / B stage (elements)
    uint64_t b_policy;   // L2 cache policy of streamed B loads

    __device__ __forceinline__ Loader(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                      int n_valid, long long k_begin, long long k_end, uint64_t policy) {
      b_policy = policy;
      const int tid = threadIdx.x;
      const int r0 = tid / A_ROW, kc = (tid % A_ROW) * VEC;
      const int kr0 = tid / B_ROW, nc = (tid % B_ROW) * VEC;
      const int k_len = (int)(k_end - k_begin);
      a = A + (r0 * lda + k_begin + kc);
      b = B + ((k_begin + kr0) * ldb + nc);
      a_base = A, b_base = B;
      a_step = A_RSTEP * lda, b_step = B_RSTEP * ldb, b_tile = BK * ldb;
      a_in = BM - r0, a_rows = m_valid - r0, a_k_left = k_len - kc;
      b_in = BK - kr0, b_k_left = k_len - kr0, b_n_left = n_valid - nc;
      sa = r0 * LDA_S + kc, sb = kr0 * LDB_S + nc;
    }

    // Stage the next tile into sA / sB (one stage) and advance by BK.
    // LOAD_A false: only the B tile (a second GEMM sharing A's stage).
    template <bool VECTOR, bool STREAM, bool LOAD_A = true>
    __device__ __forceinline__ void load(T* sA, T* sB) {
      const T* src = a;
      if constexpr (LOAD_A) {
#pragma unroll
        for (int i = 0; i < A_ITERS; ++i) {
          if (BM % A_RSTEP == 0 || i * A_RSTEP < a_in)
            detail::load_chunk<T, VECTOR>(sA + sa + i * A_RSTEP * LDA_S, src, i * A_RSTEP < a_rows ? a_k_left : 0, a_base);
          src += a_step;
        }
      }
      src = b;
#pragma unroll
      for (int i = 0; i < B_ITERS; ++i) {
        if (BK % B_RSTEP == 0 || i * B_RSTEP < b_in)
          detail::load_chunk<T, VECTOR, STREAM>(sB + sb + i * B_RSTEP * LDB_S, src, i * B_RSTEP < b_k_left ? b_n_left : 0,
                                     b_base, b_policy);
        src += b_step;
      }
      a += BK, b += b_tile;
      a_k_left -= BK, b_k_left -= BK;
    }
  };

  // ------------------------------------------------------------ pipeline
  // The cp.async pipeline over `tiles` K tiles: load(s) issues the copies of
  // the next K tile into stage s, compute(s) consumes stage s. Ends with a
  // barrier (the stages may be reused).
  template <class Load, class Compute>
  __device__ __forceinline__ static void pipeline(int tiles, Load&& load, Compute&& compute) {
    if constexpr (STAGES == 1) {
      // Load, wait, compute; the trailing barrier frees the buffer.
      for (int t = 0; t < tiles; ++t) {
        load(0);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        compute(0);
        __syncthreads();
      }
    } else {
      // Prologue: tiles 0 .. STAGES-2 in flight, one commit group each (empty
      // groups past the last tile keep the group count uniform).
#pragma unroll
      for (int s = 0; s < STAGES - 1; ++s) {
        if (s < tiles) load(s);
        cp_async_commit();
      }
      int read = 0, write = STAGES - 1;
      for (int t = 0; t < tiles; ++t) {
        // Tile t has landed (at most STAGES-2 newer groups pending) and every
        // warp is done with tile t-1, whose buffer is the one refilled next.
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        if (t + STAGES - 1 < tiles) load(write);
        cp_async_commit();
        compute(read);
        read = read == STAGES - 1 ? 0 : read + 1;
        write = write == STAGES - 1 ? 0 : write + 1;
      }
      cp_async_wait<0>();
      __syncthreads();
    }
  }

  template <bool VECTOR, bool STREAM>
  __device__ __forceinline__ void run(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                      int n_valid, long long k_begin, long long k_end, char* smem) {
    T* sA = reinterpret_cast<T*>(smem);
    T* sB = sA + STAGES * A_STAGE;
    Loader ld(A, lda, m_valid, B, ldb, n_valid, k_begin, k_end, STREAM ? l2_evict_first_policy() : 0);
    const int tiles = (int)((k_end - k_begin + BK - 1) / BK);
    pipeline(
        tiles, [&](int s) { ld.template load<VECTOR, STREAM>(sA + s * A_STAGE, sB + s * B_STAGE); },
        [&](int s) { compute(sA + s * A_STAGE, sB + s * B_STAGE); });
  }

  // Two GEMMs sharing A in one pipeline: a stage holds the A tile and both
  // B tiles; the second loader copies only its B.
  template <bool VECTOR, bool STREAM>
  __device__ __forceinline__ static void run_pair(TileGemm& g0, TileGemm& g1, const T* A, long long lda, int m_valid,
                                                  const T* B0, const T* B1, long long ldb, int n_valid,
                                                  long long k_begin, long long k_end, char* smem) {
    T* sA = reinterpret_cast<T*>(smem);
    T* sB0 = sA + STAGES * A_STAGE;
    T* sB1 = sB0 + STAGES * B_STAGE;
    const uint64_t policy = STREAM ? l2_evict_first_policy() : 0;
    Loader l0(A, lda, m_valid, B0, ldb, n_valid, k_begin, k_end, policy);
    Loader l1(A, lda, m_valid, B1, ldb, n_valid, k_begin, k_end, policy);
    const int tiles = (int)((k_end - k_begin + BK - 1) / BK);
    pipeline(
        tiles,
        [&](int s) {
          l0.template load<VECTOR, STREAM>(sA + s * A_STAGE, sB0 + s * B_STAGE);
          l1.template load<VECTOR, STREAM, false>(sA + s * A_STAGE, sB1 + s * B_STAGE);
        },
        [&](int s) {
          g0.compute(sA + s * A_STAGE, sB0 + s * B_STAGE);
          g1.compute(sA + s * A_STAGE, sB1 + s * B_STAGE);
        });
  }

  // One GEMM and the side product: a stage holds the A, B and side tiles.
  template <bool VECTOR, bool STREAM>
  __device__ __forceinline__ void run_side(const T* A, long long lda, int m_valid, const T* B, long long ldb,
                                           int n_valid, SideTile& side, long long k_begin, long long k_end,
                                           char* smem) {
    T* sA = reinterpret_cast<T*>(smem);
    T* sB = sA + STAGES * A_STAGE;
    T* sS = sB + STAGES * B_STAGE;
    Loader ld(A, lda, m_valid, B, ldb, n_valid, k_begin, k_end, STREAM ? l2_evict_first_policy() : 0);
    const int tiles = (int)((k_end - k_begin + BK - 1) / BK);
    pipeline(
        tiles,
        [&](int s) {
          ld.template load<VECTOR, STREAM>(sA + s * A_STAGE, sB + s * B_STAGE);
          side.template load<VECTOR>(sS + s * SideTile::STAGE);
        },
        [&](int s) { compute<true>(sA + s * A_STAGE, sB + s * B_STAGE, sS + s * SideTile::STAGE); });
  }

  // ------------------------------------------------------------ math on one stage
  // SIDE: also side_ += the stage's A tile * its side tile sS.
  template <bool SIDE = false>
  __device__ __forceinline__ void compute(const T* sA, const T* sB, const T* sS = nullptr) {
#if PRISM_HAS_MMA_SM80
    if constexpr (kMma) {
      compute_mma<SIDE>(sA, sB, sS);
      return;
    }
#endif
    compute_simt(sA, sB);
    if constexpr (SIDE) compute_side_simt(sA, sS);
  }

  // Tensor cores: per k16 step, ldmatrix the warp's NI B fragments (x4.trans,
  // two n8 fragments each) and MI A fragments (x4), and MI x NI mma.sync.
  // SIDE: the side warps also ldmatrix the side tile's B fragments of the
  // k16 step and add A * them to side_.
  template <bool SIDE>
  __device__ __forceinline__ void compute_mma(const T* sA, const T* sB, const T* sS) {
    const int warp = (threadIdx.x % GROUP_THREADS) / 32, lane = threadIdx.x % 32;
    const int kg = threadIdx.x / GROUP_THREADS;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    // ldmatrix row addresses. A (x4): lanes 0-15 rows 0-15 at k 0, lanes 16-31
    // rows 0-15 at k 8 -> a[0..3] as mma expects. B (x4.trans): lanes 0-15 k
    // rows 0-15 at n 0, lanes 16-31 at n 8 -> {r0, r1} is the n8 fragment at
    // n 0, {r2, r3} the one at n 8.
    const uint32_t a_base = smem_addr(sA + (wm * WM + lane % 16) * LDA_S + (lane / 16) * 8);
    const uint32_t b_base = smem_addr(sB + (lane % 16) * LDB_S + wn * WN + (lane / 16) * 8);
#pragma unroll
    for (int k0 = 0; k0 < BK / 16; k0 += WARPS_K) {
      const int kk = k0 + kg;
      // All NI B fragments of this k16 step, then one A fragment at a time
      // (keeps 4 + 2*NI fragment registers live instead of 4*MI + 2*NI).
      uint32_t b[NI][2];
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        uint32_t r[4];
        ldmatrix_x4_trans(r, b_base + (uint32_t)((kk * 16 * LDB_S + nj * 16) * sizeof(T)));
        b[2 * nj][0] = r[0], b[2 * nj][1] = r[1];
        b[2 * nj + 1][0] = r[2], b[2 * nj + 1][1] = r[3];
      }
      uint32_t sb[SIDE_CHUNKS][2];
      const bool side_warp = SIDE && wn < 2;
      if constexpr (SIDE) {
        if (side_warp) {
          // x4.trans: lanes 16-31 address the columns 8 on (both chunks);
          // x2.trans: the warp's chunk wn.
          const T* row = sS + (kk * 16 + lane % 16) * SideTile::LD;
          if constexpr (SIDE_CHUNKS == 2) {
            uint32_t r[4];
            ldmatrix_x4_trans(r, row + (lane / 16) * 8);
            sb[0][0] = r[0], sb[0][1] = r[1], sb[1][0] = r[2], sb[1][1] = r[3];
          } else {
            ldmatrix_x2_trans(sb[0], row + wn * 8);
          }
        }
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        uint32_t a[4];
        ldmatrix_x4(a, a_base + (uint32_t)((mi * 16 * LDA_S + kk * 16) * sizeof(T)));
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma_m16n8k16<T>(acc_[mi * NI + ni], a, b[ni]);
        if constexpr (SIDE) {
          if (side_warp) {
#pragma unroll
            for (int c = 0; c < SIDE_CHUNKS; ++c) mma_m16n8k16<T>(side_[mi * SIDE_CHUNKS + c], a, sb[c]);
          }
        }
      }
    }
  }

  // SIMT side product: each thread its SIDE_SIMT elements over the whole tile.
  __device__ __forceinline__ void compute_side_simt(const T* sA, const T* sS) {
#pragma unroll
    for (int i = 0; i < SIDE_SIMT; ++i) {
      const int idx = threadIdx.x + i * THREADS;
      if (idx < BM * LOW_RANK) {
        const T* a = sA + (idx / LOW_RANK) * LDA_S;
        const T* s = sS + idx % LOW_RANK;
        float v = side_[i / 4][i % 4];
        for (int k = 0; k < BK; ++k) v = fmaf(to_float(a[k]), to_float(s[k * SideTile::LD]), v);
        side_[i / 4][i % 4] = v;
      }
    }
  }

  // SIMT: per group of 4 k, each thread reads TM x 4 A values (vector loads
  // along k, broadcast within the row of threads) and, per k, TN B values
  // (vector loads along n), then TM x TN FMAs per k.
  __device__ __forceinline__ void compute_simt(const T* sA, const T* sB) {
    const int tx = threadIdx.x % TX, ty = (threadIdx.x % GROUP_THREADS) / TX;
    const int kg = threadIdx.x / GROUP_THREADS;
    const T* a_row = sA + ty * TM * LDA_S;
    const T* b_col = sB + tx * 4;
#pragma unroll
    for (int k4 = 4 * kg; k4 < BK; k4 += 4 * WARPS_K) {
      float a[TM][4];
#pragma unroll
      for (int i = 0; i < TM; ++i) detail::load4_f32(a_row + i * LDA_S + k4, a[i]);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float b[TN / 4][4];
#pragma unroll
        for (int j = 0; j < TN / 4; ++j) detail::load4_f32(b_col + (k4 + q) * LDB_S + j * 4 * TX, b[j]);
#pragma unroll
        for (int i = 0; i < TM; ++i)
#pragma unroll
          for (int j = 0; j < TN / 4; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc_[i * (TN / 4) + j][e] = fmaf(a[i][q], b[j][e], acc_[i * (TN / 4) + j][e]);
      }
    }
  }
};

// Split-K across blocks: the handshake after a block has stored its split's
// partial sums to the workspace (with st.cg, every thread). Returns true in
// the block that arrives last at `counter` (its output tile's), which may then
// read every split's partial sums (with ld.cg); the counter is back to 0 for
// the next launch on the stream. Every thread of the block must call it.
__device__ __forceinline__ bool split_k_arrive(unsigned int* counter, unsigned int splits) {
  __shared__ unsigned int last;
  __threadfence();  // this thread's partial sums are visible device-wide
  __syncthreads();  // ... for every thread of the block
  if (threadIdx.x == 0) {
    const unsigned int before = atomicAdd(counter, 1u);
    last = before == splits - 1 ? 1u : 0u;
    if (last) atomicExch(counter, 0u);  // every split has arrived
  }
  __syncthreads();
  const bool is_last = last != 0u;
  if (is_last) __threadfence();  // order the reads after the other splits' writes
  return is_last;
}

}  // namespace prism
