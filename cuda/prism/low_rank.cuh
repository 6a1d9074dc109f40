// prism device library: a low-rank side product next to a block GEMM.
//
// LoRA's X·W + (X·A)·B as one kernel: the block GEMM's main loop (acc +=
// X·W over K) also accumulates the side product S = X·A (A: K x r, r <= 16
// columns) from the same shared-memory tiles of X, so X is read once; after
// the loop, acc += round_T(S)·B (B: r x N, the block's BN columns), one
// m16n8k16 step per accumulator fragment. The block GEMMs (TileGemm,
// WgmmaGemm) own the main-loop part (`mainloop_side`); this header holds
// what they share:
//
//   * SideTile: the shared-memory stage of A's K tile (BK rows of 16
//     columns, zero past r) and its loader (cp.async chunks, predicated on
//     the K edge and r like the GEMMs' loaders);
//   * LowRankEpilogue: after the main loop, the threads' partial sums of S
//     through shared memory (summed in a fixed order: deterministic), S
//     rounded to T (the reference's X·A intermediate is stored as T), B's
//     r x BN tile staged, and the rank-16 update of the accumulators.
#pragma once

#include "prism/common.cuh"
#include "prism/memory.cuh"
#include "prism/mma.cuh"

namespace prism {

// Columns of the side product: LoRA ranks up to 16 (zero-padded).
constexpr int LOW_RANK = 16;

// One K tile of the side operand A (K x r, row stride lds) in shared memory:
// BK rows of LOW_RANK elements. Padded (ldmatrix): each row padded by one
// 16-byte chunk (the 8 row addresses of an ldmatrix phase fall in distinct
// banks). SWIZZLE32 (wgmma's N-major B in the 32-byte swizzle, 16-bit
// elements): 32-byte rows, chunk c of row r at chunk c ^ ((r / 4) % 2).
template <typename T, int BK, int THREADS, bool SWIZZLE32 = false>
struct SideTile {
  static constexpr int VEC = vec16<T>::elems;
  static constexpr int LD = SWIZZLE32 ? LOW_RANK : LOW_RANK + VEC;  // row stride (elements)
  static constexpr int STAGE = BK * LD;              // elements per stage
  static constexpr int STAGE_BYTES = STAGE * (int)sizeof(T);
  static constexpr int ROW_CHUNKS = LOW_RANK / VEC;  // 16-byte chunks per row
  static_assert(!SWIZZLE32 || VEC == 8, "SideTile: the 32-byte swizzle is for 16-bit elements");
  static constexpr int ITERS = ceil_div(BK * ROW_CHUNKS, THREADS);

  const T* s;     // the next K tile's first row
  const T* base;  // a valid pointer for zero-fill copies
  long long lds;  // row stride of A
  int rank;       // valid columns (r)
  int k_left;     // valid K rows from the next tile's first

  __device__ __forceinline__ SideTile(const T* S, long long lds_, int rank_, long long k_begin, long long k_end)
      : s(S + k_begin * lds_), base(S), lds(lds_), rank(rank_), k_left((int)(k_end - k_begin)) {}

  // Whether the vector loader may copy A's rows as 16-byte chunks.
  __device__ __forceinline__ bool vector_ok() const { return is_aligned(s, 16) && lds % VEC == 0; }

  // Stage the next K tile into `dst` and advance by BK.
  template <bool VECTOR>
  __device__ __forceinline__ void load(T* dst) {
#pragma unroll
    for (int i = 0; i < ITERS; ++i) {
      const int idx = threadIdx.x + i * THREADS;
      if (ITERS * THREADS == BK * ROW_CHUNKS || idx < BK * ROW_CHUNKS) {
        const int r = idx / ROW_CHUNKS, c = (idx % ROW_CHUNKS) * VEC;
        const int at = SWIZZLE32 ? r * LD + (((c / VEC) ^ ((r / 4) % 2)) * VEC) : r * LD + c;
        detail::load_chunk<T, VECTOR>(dst + at, s + r * lds + c, r < k_left ? rank - c : 0, base);
      }
    }
    s += BK * lds;
    k_left -= BK;
  }
};

// After the main loop: acc += round_T(S)·B for a BM x BN block GEMM G
// whose threads hold PARTS partial sums of S per element. G provides:
//   * side_partials(f): f(part, row, col, value) for the partial sums of S
//     this thread holds; between them the threads give every (part, row,
//     col), part < PARTS, exactly once (the parts of an element are added in
//     part order);
//   * rank_update(sS, lds, sB, ldb): acc += sS[BM][16] · sB[16][BN] (both
//     T, in shared memory, 16-byte aligned rows), by the threads that hold
//     the sums.
template <typename T, int BM, int BN, int PARTS>
struct LowRankEpilogue {
  static constexpr int VEC = vec16<T>::elems;
  static constexpr int S_LD = LOW_RANK + VEC;  // staged S row stride (elements)
  static constexpr int B_LD = BN + VEC;        // staged B row stride
  static constexpr int PART_BYTES = PARTS * BM * LOW_RANK * (int)sizeof(float);
  static constexpr int S_BYTES = BM * S_LD * (int)sizeof(T);
  static constexpr int B_BYTES = LOW_RANK * B_LD * (int)sizeof(T);
  // Shared memory it uses (from the main loop's buffer, free by then).
  static constexpr int SMEM_BYTES = PART_BYTES + S_BYTES + B_BYTES;
  // ... and apply_input (S staged from global memory: no partial sums).
  static constexpr int INPUT_SMEM_BYTES = S_BYTES + B_BYTES;

  // g's accumulators += round_T(S)·B[0:rank, 0:n_valid] (B row-major, row
  // stride ldb, starting at the block's first column). `smem`: at least
  // SMEM_BYTES, free (the main loop ended with a barrier); every thread of
  // the block calls it. Ends with a barrier.
  template <class G>
  __device__ __forceinline__ static void apply(G& g, const T* B, long long ldb, int rank, int n_valid, char* smem) {
    float* parts = reinterpret_cast<float*>(smem);
    T* sS = reinterpret_cast<T*>(smem + PART_BYTES);
    T* sB = reinterpret_cast<T*>(smem + PART_BYTES + S_BYTES);
    g.side_partials([&](int part, int row, int col, float v) { parts[(part * BM + row) * LOW_RANK + col] = v; });
    // B's rank x BN tile.
    stage_tile<G, LOW_RANK, BN>(sB, B_LD, B, ldb, rank, n_valid);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    // S = round_T(sum of the parts, in part order).
    for (int idx = threadIdx.x < G::THREADS ? (int)threadIdx.x : BM * LOW_RANK; idx < BM * LOW_RANK;
         idx += G::THREADS) {
      float v = 0.0f;
#pragma unroll
      for (int p = 0; p < PARTS; ++p) v += parts[p * BM * LOW_RANK + idx];
      sS[(idx / LOW_RANK) * S_LD + idx % LOW_RANK] = from_float<T>(v);
    }
    __syncthreads();
    g.rank_update(sS, S_LD, sB, B_LD);
    __syncthreads();
  }

  // g's accumulators += S[0:m_valid, 0:rank]·B[0:rank, 0:n_valid], S a
  // T matrix in global memory (row-major, row stride lds, at the block's
  // first row: the side product x·A an earlier kernel computed and
  // stored, so already rounded to T), B as in apply. `smem`: at least
  // INPUT_SMEM_BYTES, free; every thread of the block calls it. Ends with
  // a barrier.
  template <class G>
  __device__ __forceinline__ static void apply_input(G& g, const T* S, long long lds, int m_valid, const T* B,
                                                     long long ldb, int rank, int n_valid, char* smem) {
    T* sS = reinterpret_cast<T*>(smem);
    T* sB = reinterpret_cast<T*>(smem + S_BYTES);
    stage_tile<G, BM, LOW_RANK>(sS, S_LD, S, lds, m_valid, rank);
    stage_tile<G, LOW_RANK, BN>(sB, B_LD, B, ldb, rank, n_valid);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    g.rank_update(sS, S_LD, sB, B_LD);
    __syncthreads();
  }

 private:
  // The ROWS x COLS tile of src (row-major, row stride lds) into dst (row
  // stride ld) by cp.async, zeros past `rows` rows and `cols` columns; by
  // the block's first G::THREADS threads (a TMA kernel's producer warp,
  // past them, holds no sums and stages nothing).
  template <class G, int ROWS, int COLS>
  __device__ __forceinline__ static void stage_tile(T* dst, int ld, const T* src, long long lds, int rows,
                                                    int cols) {
    const bool vector = is_aligned(src, 16) && lds % VEC == 0;
    constexpr int ROW = COLS / VEC;
    const int first = threadIdx.x < G::THREADS ? (int)threadIdx.x : ROWS * ROW;
    for (int idx = first; idx < ROWS * ROW; idx += G::THREADS) {
      const int r = idx / ROW, c = (idx % ROW) * VEC;
      const int n = r < rows ? cols - c : 0;
      if (vector)
        detail::load_chunk<T, true>(dst + r * ld + c, src + r * lds + c, n, src);
      else
        detail::load_chunk<T, false>(dst + r * ld + c, src + r * lds + c, n, src);
    }
  }
};

namespace detail {
// acc (one m16n8 fragment at rows row0.., columns col0..) += sS[row0:+16,
// 0:16] · sB[0:16, col0:+8]: one m16n8k16 step, both operands by ldmatrix
// (S row-major: x4; B row-major: x2.trans).
template <typename T>
__device__ __forceinline__ void rank16_fragment(float (&acc)[4], const T* sS, int lds, const T* sB, int ldb,
                                                int row0, int col0) {
  const int lane = threadIdx.x % 32;
  uint32_t a[4], b[2];
  ldmatrix_x4(a, sS + (row0 + lane % 16) * lds + (lane / 16) * 8);
  ldmatrix_x2_trans(b, sB + (lane % 16) * ldb + col0);
  mma_m16n8k16<T>(acc, a, b);
}
}  // namespace detail

}  // namespace prism
