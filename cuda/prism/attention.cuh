// prism device library: one split of flash-decoding attention.
//
//   using F = prism::FlashPartial<__half, 16, 64, 128, 128, 1, 4, true>;
//   __shared__ __align__(16) char smem[F::SMEM_BYTES];   // launched with 128 threads
//   F f;
//   f.run(smem, q, ldq, m_valid, k, ldk, v, ldv, n, it_begin, it_end, score, store_o, store_ml);
//
// A block owns BM query rows (q: row-major, row stride ldq, D columns) and
// walks key tiles [it_begin, it_end) of BN keys each (n keys in all). Per
// tile it computes the scores s = score(q_row . k_key) on tensor cores, the
// online softmax (running row max m, p = exp(s - m), rescaled row sum l)
// and the rescaled sum o of p . v_tile. At the end it calls
// store_o(row, col, o) for every valid row and col < DV and
// store_ml(row, m, l) once per valid row (o and l unnormalized, relative to
// m; with no key tiles: o = l = 0, m = -inf).
//
// K_ROWS: k is [n, D] row-major (row stride ldk, the usual K layout, read
// transposed); otherwise k is [D, n] row-major (stride ldk, K already
// transposed). v is [n, DV] row-major (stride ldv).
//
// The 4 warps form a WM x WN grid: warp (wm, wn) owns rows wm*16..wm*16+15
// and, of every key tile, keys wn*BN/WN .. (wn+1)*BN/WN - 1; each warp runs
// its own online softmax over its keys, in registers (the score fragments
// become the A fragments of the second product, as in FlashAttention-2),
// and the WN warps of a row group are merged through shared memory at the
// end (with WN = 1 the warps store their rows from registers). Tiles are loaded with 16-byte loads when the pointers and strides
// allow, element by element otherwise; rows and keys past the edges are
// zero-filled and masked. K and V tiles arrive through cp.async, each
// overlapping the other's math.
#pragma once

#include "prism/cluster.cuh"
#include "prism/common.cuh"
#include "prism/memory.cuh"
#include "prism/mma.cuh"

namespace prism {

namespace detail {
// Two floats as one 32-bit register of two 16-bit values (lo in the low half).
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// ROWS x COLS elements of g (row stride ld) into s (row stride LDS), zeros
// outside rows_valid x cols_valid; all THREADS threads call it. Through
// cp.async where a 16-byte chunk is entirely inside or entirely outside the
// valid region (zero-filled) and the pointers allow it; other chunks are
// copied synchronously; `stream`: cp.async under L2 cache `policy`. The
// caller commits the group
// and waits for it (cp_async_wait + __syncthreads) before reading `s`.
template <typename T, int ROWS, int COLS, int LDS, int THREADS>
__device__ __forceinline__ void load_tile_async(T* s, const T* g, long long ld, int rows_valid, int cols_valid,
                                                bool stream, uint64_t policy) {
  constexpr int VEC = vec16<T>::elems;
  constexpr int CHUNKS = COLS / VEC;
  const bool vector = is_aligned(g, 16) && ld % VEC == 0;
  if constexpr ((ROWS * CHUNKS) % THREADS == 0 && THREADS % CHUNKS == 0) {
    // A whole tile (every tile of the loop but the last): each thread's
    // chunks sit THREADS / CHUNKS rows apart, fully unrolled, without
    // per-chunk predicates (ncu on an H200 showed the decode partials
    // issue-bound, the branchy per-chunk loop a large share of it).
    if (vector && rows_valid >= ROWS && cols_valid >= COLS) {
      constexpr int STEP = THREADS / CHUNKS;
      const int r0 = threadIdx.x / CHUNKS, col = (threadIdx.x % CHUNKS) * VEC;
      const T* src = g + (long long)r0 * ld + col;
      T* dst = s + r0 * LDS + col;
      if (stream) {
#pragma unroll
        for (int i = 0; i < ROWS * CHUNKS / THREADS; ++i)
          cp_async16_policy(dst + i * STEP * LDS, src + (long long)i * STEP * ld, true, policy);
      } else {
#pragma unroll
        for (int i = 0; i < ROWS * CHUNKS / THREADS; ++i)
          cp_async16(dst + i * STEP * LDS, src + (long long)i * STEP * ld, true);
      }
      return;
    }
  }
  for (int c = threadIdx.x; c < ROWS * CHUNKS; c += THREADS) {
    const int r = c / CHUNKS, col = (c % CHUNKS) * VEC;
    const T* src = g + (long long)r * ld + col;
    const bool inside = r < rows_valid && col + VEC <= cols_valid;
    const bool outside = r >= rows_valid || col >= cols_valid;
    if (vector && (inside || outside)) {
      if (stream)  // a cache-hinted copy costs the non-streaming (prefill) blocks time
        cp_async16_policy(s + r * LDS + col, inside ? src : g, inside, policy);
      else
        cp_async16(s + r * LDS + col, inside ? src : g, inside);
    } else {
      T v[VEC];
#pragma unroll
      for (int e = 0; e < VEC; ++e) v[e] = (r < rows_valid && col + e < cols_valid) ? src[e] : from_float<T>(0.0f);
      store_vec16(s + r * LDS + col, v);
    }
  }
}
}  // namespace detail

template <typename T, int BM, int BN, int D, int DV, int WM, int WN, bool K_ROWS, int STAGES = 2>
struct FlashPartial {
  static constexpr int THREADS = 128;
  static_assert(STAGES >= 2, "FlashPartial: at least 2 stages of K and V tiles");
  static_assert(WM * WN == 4, "FlashPartial: 4 warps");
  static_assert(BM == 16 * WM, "FlashPartial: 16 rows per warp row");
  static_assert(BN % (16 * WN) == 0, "FlashPartial: keys per warp must be a multiple of 16");
  static_assert(D % 16 == 0 && DV % 16 == 0, "FlashPartial: D and DV must be multiples of 16");
  static constexpr int KW = BN / WN;  // keys per warp per tile
  static constexpr int SNI = KW / 8;  // score n8 fragments per warp
  static constexpr int ONI = DV / 8;  // output n8 fragments per warp
  static constexpr int KS = D / 16;   // k16 steps of q . k
  static constexpr int VEC = vec16<T>::elems;
  static constexpr int LDQ = D + VEC;
  static constexpr int LDK = K_ROWS ? D + VEC : BN + VEC;
  static constexpr int LDV = DV + VEC;
  static constexpr int Q_BYTES = BM * LDQ * (int)sizeof(T);
  static constexpr int K_BYTES = (K_ROWS ? BN : D) * LDK * (int)sizeof(T);
  static constexpr int V_BYTES = BN * LDV * (int)sizeof(T);
  // One stage: a K tile (q staged there first) and a V tile.
  static constexpr int K_REGION = Q_BYTES > K_BYTES ? Q_BYTES : K_BYTES;
  static constexpr int STAGE_BYTES = K_REGION + V_BYTES;
  static constexpr int TILE_BYTES = STAGES * STAGE_BYTES;
  // The merge: per warp column, o (BM x DV), m and l (BM).
  static constexpr int MERGE_BYTES = WN * BM * (DV + 2) * 4;
  static constexpr int SMEM_BYTES = TILE_BYTES > MERGE_BYTES ? TILE_BYTES : MERGE_BYTES;

  // K and V are read by this block only (one row tile per batch index, e.g.
  // decode): their tiles are loaded L2 evict_first (see memory.cuh).
  bool stream_kv = false;

  template <class Score, class StoreO, class StoreML>
  __device__ __forceinline__ void run(char* smem, const T* q, long long ldq, int m_valid, const T* k, long long ldk,
                                      const T* v, long long ldv, long long n, long long it_begin, long long it_end,
                                      Score&& score, StoreO&& store_o, StoreML&& store_ml) {
#if PRISM_HAS_MMA_SM80
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp / WN, wn = warp % WN;
    const int g = lane / 4, t = lane % 4;
    // q waits in the last stage's K region, which the prologue leaves
    // empty: its load and the first K / V tiles' are in flight together.
    T* sQ = reinterpret_cast<T*>(smem + (STAGES - 1) * STAGE_BYTES);
    auto sK = [&](int stage) { return reinterpret_cast<T*>(smem + stage * STAGE_BYTES); };
    auto sV = [&](int stage) { return reinterpret_cast<T*>(smem + stage * STAGE_BYTES + K_REGION); };
    const uint64_t kv_policy = stream_kv ? l2_evict_first_policy() : 0;

    float o[ONI][4];
#pragma unroll
    for (int j = 0; j < ONI; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[j][e] = 0.0f;
    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

    // Pipeline: a ring of STAGES (K, V) tile pairs, one commit group each;
    // the pairs of the next STAGES-1 iterations load during this one's
    // math (with few key tiles per split, all of them are in flight at
    // once: one memory latency instead of one per tile).
    auto load_kv = [&](long long it, int stage) {
      const long long key0 = it * BN;
      const int keys_valid = (int)min((long long)BN, n - key0);
      if (K_ROWS)
        detail::load_tile_async<T, BN, D, LDK, THREADS>(sK(stage), k + key0 * ldk, ldk, keys_valid, D, stream_kv,
                                                        kv_policy);
      else
        detail::load_tile_async<T, D, BN, LDK, THREADS>(sK(stage), k + key0, ldk, D, keys_valid, stream_kv,
                                                        kv_policy);
      detail::load_tile_async<T, BN, DV, LDV, THREADS>(sV(stage), v + key0 * ldv, ldv, keys_valid, DV, stream_kv,
                                                       kv_policy);
    };
    detail::load_tile_async<T, BM, D, LDQ, THREADS>(sQ, q, ldq, m_valid, D, false, 0);
    cp_async_commit();
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (it_begin + s < it_end) load_kv(it_begin + s, s);
      cp_async_commit();
    }
    // q fragments, once (q's group is the oldest; the K / V groups stay in
    // flight). The loop's first barrier orders these reads before the
    // refill of q's stage.
    cp_async_wait<STAGES - 1>();
    __syncthreads();
    uint32_t qf[KS][4];
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
      ldmatrix_x4(qf[ks], sQ + (wm * 16 + lane % 16) * LDQ + ks * 16 + (lane / 16) * 8);
    int read = 0, write = STAGES - 1;
    for (long long it = it_begin; it < it_end; ++it) {
      const long long key0 = it * BN;
      const int keys_valid = (int)min((long long)BN, n - key0);
      cp_async_wait<STAGES - 2>();  // this iteration's K and V tiles
      __syncthreads();              // ... visible to all; every warp is done with the stage refilled next
      if (it + STAGES - 1 < it_end) load_kv(it + STAGES - 1, write);
      cp_async_commit();
      const T* kt = sK(read);
      const T* vt = sV(read);

      // Scores of this warp's keys.
      float s[SNI][4];
#pragma unroll
      for (int j = 0; j < SNI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
#pragma unroll
        for (int j = 0; j < SNI; j += 2) {
          const int n0 = wn * KW + j * 8;
          uint32_t r[4];
          if (K_ROWS) {
            const int q4 = lane / 8, i = lane % 8;
            ldmatrix_x4(r, kt + (n0 + (q4 / 2) * 8 + i) * LDK + ks * 16 + (q4 % 2) * 8);
          } else {
            ldmatrix_x4_trans(r, kt + (ks * 16 + lane % 16) * LDK + n0 + (lane / 16) * 8);
          }
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          mma_m16n8k16<T>(s[j], qf[ks], b0);
          mma_m16n8k16<T>(s[j + 1], qf[ks], b1);
        }
      }
      // Online softmax for rows g (h = 0) and g + 8 (h = 1).
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < SNI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = wn * KW + j * 8 + 2 * t + (e % 2);
          const float x = key < keys_valid ? score(s[j][e]) : -INFINITY;
          s[j][e] = x;
          tile_max[e / 2] = fmaxf(tile_max[e / 2], x);
        }
      // Branch-free: with no key seen yet (m = -inf) every exponent is
      // taken against 0 instead, so exp(-inf) = 0 stands in for the cases
      // that would be -inf - -inf (o and l are still 0 there).
      float alpha[2], m_sub[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 1));
        tile_max[h] = fmaxf(tile_max[h], __shfl_xor_sync(0xffffffffu, tile_max[h], 2));
        const float m_new = fmaxf(m_run[h], tile_max[h]);
        m_sub[h] = m_new == -INFINITY ? 0.0f : m_new;
        alpha[h] = __expf(m_run[h] - m_sub[h]);
        m_run[h] = m_new;
      }
      float row_sum[2] = {0.0f, 0.0f};
#pragma unroll
      for (int j = 0; j < SNI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = __expf(s[j][e] - m_sub[e / 2]);
          s[j][e] = p;
          row_sum[e / 2] += p;
        }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 1);
        row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 2);
        l_run[h] = l_run[h] * alpha[h] + row_sum[h];
      }
      // Rescale o only when some row of the warp got a new max (a factor
      // of exactly 1 leaves it as it is): once the running maxima settle,
      // most key tiles skip these DV / 2 multiplies per thread.
      if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
        for (int j = 0; j < ONI; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) o[j][e] *= alpha[e / 2];
      }
      // o += p . v over this warp's keys; p's fragments are the A operand.
#pragma unroll
      for (int kk = 0; kk < KW / 16; ++kk) {
        uint32_t a[4];
        a[0] = detail::pack2<T>(s[2 * kk][0], s[2 * kk][1]);
        a[1] = detail::pack2<T>(s[2 * kk][2], s[2 * kk][3]);
        a[2] = detail::pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = detail::pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
        const T* vrow = vt + (wn * KW + kk * 16 + lane % 16) * LDV + (lane / 16) * 8;
#pragma unroll
        for (int j = 0; j < ONI; j += 2) {
          uint32_t r[4];
          ldmatrix_x4_trans(r, vrow + j * 8);
          const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
          mma_m16n8k16<T>(o[j], a, b0);
          mma_m16n8k16<T>(o[j + 1], a, b1);
        }
      }
      read = read == STAGES - 1 ? 0 : read + 1;
      write = write == STAGES - 1 ? 0 : write + 1;
    }
    cp_async_wait<0>();
    __syncthreads();

    if constexpr (WN == 1) {
      // Each warp holds whole rows: o, m and l straight from registers
      // (m and l are the same in the four threads of a row's quad).
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = wm * 16 + g + h * 8;
        if (row >= m_valid) continue;
#pragma unroll
        for (int j = 0; j < ONI; ++j) {
          store_o(row, j * 8 + 2 * t, o[j][2 * h]);
          store_o(row, j * 8 + 2 * t + 1, o[j][2 * h + 1]);
        }
        if (t == 0) store_ml(row, m_run[h], l_run[h]);
      }
    } else {
      // Merge the WN warps of each row group through shared memory: per
      // row its max, every warp's weight exp(m_w - m) (in place of m_w)
      // and the weighted row sum, once; then the weighted o sums, four
      // columns per thread.
      float* sO = reinterpret_cast<float*>(smem);  // [WN][BM][DV]
      float* sM = sO + WN * BM * DV;               // [WN][BM]: m_w, then its weight
      float* sL = sM + WN * BM;                    // [WN][BM]
#pragma unroll
      for (int j = 0; j < ONI; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = wm * 16 + g + (e / 2) * 8, col = j * 8 + 2 * t + (e % 2);
          sO[(wn * BM + row) * DV + col] = o[j][e];
        }
      if (t == 0) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int row = wm * 16 + g + h * 8;
          sM[wn * BM + row] = m_run[h];
          sL[wn * BM + row] = l_run[h];
        }
      }
      __syncthreads();
      for (int row = threadIdx.x; row < m_valid; row += THREADS) {
        float m = -INFINITY;
#pragma unroll
        for (int w = 0; w < WN; ++w) m = fmaxf(m, sM[w * BM + row]);
        float l = 0.0f;
#pragma unroll
        for (int w = 0; w < WN; ++w) {
          const float mw = sM[w * BM + row];
          const float f = mw == -INFINITY ? 0.0f : __expf(mw - m);
          sM[w * BM + row] = f;
          l += sL[w * BM + row] * f;
        }
        store_ml(row, m, l);
      }
      __syncthreads();
      constexpr int C4 = DV / 4;
      for (int i = threadIdx.x; i < m_valid * C4; i += THREADS) {
        const int row = i / C4, col = (i % C4) * 4;
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int w = 0; w < WN; ++w) {
          const float f = sM[w * BM + row];
          const float4 x = *reinterpret_cast<const float4*>(sO + (w * BM + row) * DV + col);
          acc.x += x.x * f;
          acc.y += x.y * f;
          acc.z += x.z * f;
          acc.w += x.w * f;
        }
        store_o(row, col, acc.x);
        store_o(row, col + 1, acc.y);
        store_o(row, col + 2, acc.z);
        store_o(row, col + 3, acc.w);
      }
    }
#else
    (void)smem, (void)q, (void)ldq, (void)m_valid, (void)k, (void)ldk, (void)v, (void)ldv, (void)n;
    (void)it_begin, (void)it_end, (void)score, (void)store_o, (void)store_ml;
    __trap();
#endif
  }
};

// The combine of flash-decoding, run by the last block of a row tile to
// finish its splits (see prism::split_k_arrive): rows [0, m_valid) of the
// tile, DV columns, over SPLITS splits of (o, m, l) as FlashPartial stores
// them (o and l unnormalized, relative to m). Output
//   M = max_s m_s,  w_s = exp(m_s - M) (0 for an empty split, m_s = -inf),
//   out[row][col] = (sum_s o_s[row][col] w_s) / (sum_s l_s w_s)
// through store(row, col, value). o_row(s, row) points at o_s[row][0] (DV
// contiguous floats, 16-byte aligned: o is one allocation of rows of DV
// floats, DV a multiple of 4; checked once), m_at / l_at(s, row) return
// the statistics; all are read through L2 (other blocks wrote them).
// THREADS threads call it with `smem` holding at least BYTES bytes; the
// sums run in a fixed order.
//
// Latency is what costs here (a few hundred KB read by one block from
// L2): the THREADS / (DV / 4) thread groups each take a share of the
// splits of a row, with their 16-byte loads unrolled so a group has all
// of them in flight at once, and two rows at a time.
template <int BM, int DV, int SPLITS, int THREADS>
struct FlashCombine {
  static_assert(DV % 4 == 0, "FlashCombine: DV must be a multiple of 4");
  static constexpr int C4 = DV / 4;  // 16-byte chunks per row
  static_assert(THREADS % C4 == 0, "FlashCombine: the threads must cover whole rows");
  static constexpr int G = THREADS / C4 < SPLITS ? THREADS / C4 : SPLITS;  // split groups
  static constexpr int PER = (SPLITS + G - 1) / G;                          // splits per group
  static constexpr int BYTES = (2 * BM * SPLITS + BM + G * BM * DV) * 4;

  template <class ORow, class MAt, class LAt, class Store>
  __device__ __forceinline__ static void run(char* smem, int m_valid, ORow&& o_row, MAt&& m_at, LAt&& l_at,
                                             Store&& store) {
    float* sw = reinterpret_cast<float*>(smem);  // [BM][SPLITS]: m_s, then w_s
    float* sls = sw + BM * SPLITS;               // [BM][SPLITS]: l_s
    float* sl = sls + BM * SPLITS;               // [BM]: sum_s l_s w_s
    float* sacc = sl + BM;                       // [G][BM][DV]
    if (!is_aligned(o_row(0, 0), 16)) __trap();
    for (int i = threadIdx.x; i < m_valid * SPLITS; i += THREADS) {
      sw[i] = m_at(i % SPLITS, i / SPLITS);
      sls[i] = l_at(i % SPLITS, i / SPLITS);
    }
    __syncthreads();
    for (int row = threadIdx.x; row < m_valid; row += THREADS) {
      float* w = sw + row * SPLITS;
      float M = -INFINITY;
      for (int s = 0; s < SPLITS; ++s) M = fmaxf(M, w[s]);
      float l = 0.0f;
      for (int s = 0; s < SPLITS; ++s) {
        const float ws = w[s] == -INFINITY ? 0.0f : __expf(w[s] - M);
        w[s] = ws;
        l += sls[row * SPLITS + s] * ws;
      }
      sl[row] = l;
    }
    __syncthreads();
    const int grp = threadIdx.x / C4, c4 = threadIdx.x % C4;
    if (grp < G) {
#pragma unroll 2
      for (int row = 0; row < m_valid; ++row) {
        float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
        for (int k = 0; k < PER; ++k) {
          const int s = grp + k * G;
          if (s < SPLITS) {
            const float4 o = __ldcg(reinterpret_cast<const float4*>(o_row(s, row)) + c4);
            const float ws = sw[row * SPLITS + s];
            acc.x += o.x * ws;
            acc.y += o.y * ws;
            acc.z += o.z * ws;
            acc.w += o.w * ws;
          }
        }
        *reinterpret_cast<float4*>(sacc + (grp * BM + row) * DV + c4 * 4) = acc;
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < m_valid * DV; i += THREADS) {
      const int row = i / DV, col = i % DV;
      float o = 0.0f;
#pragma unroll
      for (int g = 0; g < G; ++g) o += sacc[(g * BM + row) * DV + col];
      store(row, col, o / sl[row]);
    }
  }
};

// The combine of flash-decoding across a thread block cluster: the SPLITS
// blocks of one row tile (grid x, the splits, is the cluster) each stage
// their (o, m, l) in their own shared memory (`stage`: O_FLOATS + 2 BM
// floats, o[BM][DV] then m[BM] then l[BM]); after a cluster barrier, block
// r of the cluster combines columns [r DV / SPLITS, (r + 1) DV / SPLITS) of
// every valid row, reading the other blocks' stages through distributed
// shared memory, in split order (deterministic); a second barrier keeps
// every stage alive until its readers are done. Same formula as
// FlashCombine; no workspace, counter or L2 round trip. sm_90+ (clusters);
// elsewhere it traps. Every thread of every block of the cluster calls it.
template <int BM, int DV, int SPLITS, int THREADS>
struct FlashClusterCombine {
  // Above 8, a non-portable cluster: the kernel must be allowed one
  // (CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED) before it launches.
  static_assert(SPLITS >= 2 && SPLITS <= 16, "FlashClusterCombine: 2 to 16 splits (Hopper's largest cluster)");
  static_assert(DV % SPLITS == 0, "FlashClusterCombine: the splits must share the columns evenly");
  static constexpr int O_FLOATS = BM * DV;
  static constexpr int BYTES = (O_FLOATS + 2 * BM) * 4;
  static constexpr int COLS = DV / SPLITS;  // columns each block combines

  __device__ __forceinline__ static float* o(char* stage) { return reinterpret_cast<float*>(stage); }
  __device__ __forceinline__ static float* m(char* stage) { return reinterpret_cast<float*>(stage) + O_FLOATS; }
  __device__ __forceinline__ static float* l(char* stage) { return reinterpret_cast<float*>(stage) + O_FLOATS + BM; }

  template <class Store>
  __device__ __forceinline__ static void run(char* stage, int m_valid, Store&& store) {
    cluster::sync();
    const uint32_t rank = cluster::rank();
    const uint32_t base = smem_addr(stage);
    uint32_t peer[SPLITS];
#pragma unroll
    for (int s = 0; s < SPLITS; ++s) peer[s] = cluster::map(base, s);
    for (int idx = threadIdx.x; idx < m_valid * COLS; idx += THREADS) {
      const int row = idx / COLS, col = (int)rank * COLS + idx % COLS;
      float ms[SPLITS], ls[SPLITS], os[SPLITS];
#pragma unroll
      for (int s = 0; s < SPLITS; ++s) {
        ms[s] = cluster::load(peer[s] + (O_FLOATS + row) * 4);
        ls[s] = cluster::load(peer[s] + (O_FLOATS + BM + row) * 4);
        os[s] = cluster::load(peer[s] + (row * DV + col) * 4);
      }
      float M = -INFINITY;
#pragma unroll
      for (int s = 0; s < SPLITS; ++s) M = fmaxf(M, ms[s]);
      float lsum = 0.0f, acc = 0.0f;
#pragma unroll
      for (int s = 0; s < SPLITS; ++s) {
        const float w = ms[s] == -INFINITY ? 0.0f : __expf(ms[s] - M);
        lsum += ls[s] * w;
        acc += os[s] * w;
      }
      store(row, col, acc / lsum);
    }
    cluster::sync();
  }
};

}  // namespace prism
