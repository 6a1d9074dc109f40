// prism device library: one split of flash attention on Hopper's warpgroup
// tensor cores (wgmma, sm_90a).
//
//   using F = prism::FlashPartialWgmma<__half, 1, 64, 128, 128, 2>;
//   extern __shared__ char smem[];                     // >= F::SMEM_BYTES
//   F f;                                               // launched with F::THREADS threads
//   f.run(smem, q, ldq, m_valid, kt, ldk, v, ldv, n, it_begin, it_end, score, store_o, store_ml);
//
// FlashPartial's contract (attention.cuh) for BM = 64 WG query rows per
// block and K given transposed (kt: [D, n] row-major, row stride ldk, keys
// contiguous; v: [n, DV] row-major): the same scores, online softmax,
// outputs and store callbacks, on WG warpgroups (one per 64 rows, sharing
// every K and V tile) instead of four mma.sync warps.
//
// Per key tile of BN keys: S = Q . Kt as D / 16 wgmma m64nBNk16 with both
// operands in shared memory; the online softmax in registers (warp w holds
// rows 16w..16w+15, in the layout of mma.sync's m16n8 fragments); then
// O += P . V as BN / 16 wgmma m64nDVk16 whose A operand is P, packed to
// 16-bit from the score registers (wgmma's register-A fragment is the score
// accumulator's layout, as with mma.sync in FlashAttention-2). The tensor
// cores read each K and V tile once per warpgroup; FlashPartial's four
// warps each read all of it through ldmatrix. Every block reads all of its
// split's K and V from L2: two warpgroups per block halve that traffic.
//
// Shared memory, 1024-byte aligned, every tile in the 128-byte swizzle of
// the wgmma descriptors (wgmma.cuh): q as D / 64 atoms of BM rows x 128
// bytes (K-major A; warpgroup w's rows 64 w on); each ring stage a K tile (BN / 64 atoms of D k rows x
// 64 keys, N-major B) and a V tile (DV / 64 atoms of BN k rows x 64
// columns, N-major B). The ring is FlashPartial's: STAGES (K, V) pairs in
// flight through cp.async, one commit group each, q's group first. Each
// key tile's products run one after the other, each waited for (issuing
// the next tile's scores before this tile's softmax, as FlashAttention-3
// does, measured slower here: bench/NOTES.md, session 19).
//
// Only for 16-bit elements on sm_90a (`PRISM_HAS_WGMMA`); compiled for
// anything else `run` traps, so the tuner offers it only where warpgroup
// MMA exists (`tune::tiles::runs_on`).
#pragma once

#include "prism/attention.cuh"
#include "prism/wgmma.cuh"

namespace prism {
namespace wgmma {
#if PRISM_HAS_WGMMA
// d[N / 8][4] += A(a: this thread's m64k16 register fragment, four 32-bit
// registers of two 16-bit values) * B(desc_b), B N-major (transposed).
#define PRISM_WGMMA_M64N64K16_RS(TY, d, a, desc_b) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY " " \
      "{" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31" \
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n" \
      : "+f"((d)[0][0]), "+f"((d)[0][1]), "+f"((d)[0][2]), "+f"((d)[0][3]), \
        "+f"((d)[1][0]), "+f"((d)[1][1]), "+f"((d)[1][2]), "+f"((d)[1][3]), \
        "+f"((d)[2][0]), "+f"((d)[2][1]), "+f"((d)[2][2]), "+f"((d)[2][3]), \
        "+f"((d)[3][0]), "+f"((d)[3][1]), "+f"((d)[3][2]), "+f"((d)[3][3]), \
        "+f"((d)[4][0]), "+f"((d)[4][1]), "+f"((d)[4][2]), "+f"((d)[4][3]), \
        "+f"((d)[5][0]), "+f"((d)[5][1]), "+f"((d)[5][2]), "+f"((d)[5][3]), \
        "+f"((d)[6][0]), "+f"((d)[6][1]), "+f"((d)[6][2]), "+f"((d)[6][3]), \
        "+f"((d)[7][0]), "+f"((d)[7][1]), "+f"((d)[7][2]), "+f"((d)[7][3]) \
      : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "l"(desc_b), "r"(1))

#define PRISM_WGMMA_M64N128K16_RS(TY, d, a, desc_b) \
  asm volatile( \
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n" \
      "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " " \
      "{" \
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63" \
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n" \
      : "+f"((d)[0][0]), "+f"((d)[0][1]), "+f"((d)[0][2]), "+f"((d)[0][3]), \
        "+f"((d)[1][0]), "+f"((d)[1][1]), "+f"((d)[1][2]), "+f"((d)[1][3]), \
        "+f"((d)[2][0]), "+f"((d)[2][1]), "+f"((d)[2][2]), "+f"((d)[2][3]), \
        "+f"((d)[3][0]), "+f"((d)[3][1]), "+f"((d)[3][2]), "+f"((d)[3][3]), \
        "+f"((d)[4][0]), "+f"((d)[4][1]), "+f"((d)[4][2]), "+f"((d)[4][3]), \
        "+f"((d)[5][0]), "+f"((d)[5][1]), "+f"((d)[5][2]), "+f"((d)[5][3]), \
        "+f"((d)[6][0]), "+f"((d)[6][1]), "+f"((d)[6][2]), "+f"((d)[6][3]), \
        "+f"((d)[7][0]), "+f"((d)[7][1]), "+f"((d)[7][2]), "+f"((d)[7][3]), \
        "+f"((d)[8][0]), "+f"((d)[8][1]), "+f"((d)[8][2]), "+f"((d)[8][3]), \
        "+f"((d)[9][0]), "+f"((d)[9][1]), "+f"((d)[9][2]), "+f"((d)[9][3]), \
        "+f"((d)[10][0]), "+f"((d)[10][1]), "+f"((d)[10][2]), "+f"((d)[10][3]), \
        "+f"((d)[11][0]), "+f"((d)[11][1]), "+f"((d)[11][2]), "+f"((d)[11][3]), \
        "+f"((d)[12][0]), "+f"((d)[12][1]), "+f"((d)[12][2]), "+f"((d)[12][3]), \
        "+f"((d)[13][0]), "+f"((d)[13][1]), "+f"((d)[13][2]), "+f"((d)[13][3]), \
        "+f"((d)[14][0]), "+f"((d)[14][1]), "+f"((d)[14][2]), "+f"((d)[14][3]), \
        "+f"((d)[15][0]), "+f"((d)[15][1]), "+f"((d)[15][2]), "+f"((d)[15][3]) \
      : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "l"(desc_b), "r"(1))


// Pins an accumulator's registers at this point of the program for the
// compiler (no instruction): reads of it are not moved above, nor writes
// below, the wgmma wait or fence next to it (the registers are written
// asynchronously by the tensor cores).
template <int N>
__device__ __forceinline__ void fence_operands(float (&d)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
}

// d[N / 8][4] += A * B for one k16 step of a warpgroup, A from registers.
template <typename T, int N>
__device__ __forceinline__ void mma_rs(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t desc_b) {
  static_assert(N == 64 || N == 128, "wgmma::mma_rs: N must be 64 or 128");
  if constexpr (std::is_same<T, __half>::value) {
    if constexpr (N == 64) PRISM_WGMMA_M64N64K16_RS("f16", d, a, desc_b);
    if constexpr (N == 128) PRISM_WGMMA_M64N128K16_RS("f16", d, a, desc_b);
  } else {
    if constexpr (N == 64) PRISM_WGMMA_M64N64K16_RS("bf16", d, a, desc_b);
    if constexpr (N == 128) PRISM_WGMMA_M64N128K16_RS("bf16", d, a, desc_b);
  }
}
#endif
}  // namespace wgmma

namespace detail {
// ROWS x COLS elements of g (row stride ld; COLS a multiple of 64) into s as
// COLS / 64 atoms of ROWS rows x 128 bytes in the 128-byte swizzle (16-byte
// chunk c of row r at chunk c ^ (r % 8) of its atom's row), zeros outside
// rows_valid x cols_valid. THREADS threads call it; the caller commits the
// cp.async group. VECTOR: g and ld allow 16-byte copies. No L2 cache hint
// (see WgmmaGemm::mainloop: a cache-hinted copy faulted as an illegal
// instruction in wgmma kernels on an H200 under nvcc 13.0).
template <typename T, int ROWS, int COLS, int THREADS, bool VECTOR>
__device__ __forceinline__ void load_tile_sw128(char* s, const T* g, long long ld, int rows_valid, int cols_valid) {
  constexpr int VEC = vec16<T>::elems;
  constexpr int CHUNKS = COLS / VEC;
  static_assert(COLS % 64 == 0, "load_tile_sw128: whole 64-column atoms");
  static_assert((ROWS * CHUNKS) % THREADS == 0 && THREADS % CHUNKS == 0,
                "load_tile_sw128: the threads must cover the tile in whole rows");
  constexpr int STEP = THREADS / CHUNKS;
  const int r0 = threadIdx.x / CHUNKS, c = threadIdx.x % CHUNKS;
  char* atom = s + (c / 8) * (ROWS * 128);
  const int n0 = cols_valid - c * VEC;
#pragma unroll
  for (int i = 0; i < ROWS * CHUNKS / THREADS; ++i) {
    const int r = r0 + i * STEP;
    T* dst = reinterpret_cast<T*>(atom + r * 128 + (((c % 8) ^ (r % 8)) << 4));
    const T* src = g + (long long)r * ld + c * VEC;
    const int n = r < rows_valid ? n0 : 0;
    load_chunk<T, VECTOR>(dst, src, n, g);
  }
}
}  // namespace detail

template <typename T, int WG, int BN, int D, int DV, int STAGES = 2>
struct FlashPartialWgmma {
  static_assert(WG == 1 || WG == 2, "FlashPartialWgmma: 1 or 2 warpgroups");
  static constexpr int THREADS = 128 * WG, BM = 64 * WG;
  static_assert(sizeof(T) == 2, "FlashPartialWgmma: T must be __half or __nv_bfloat16");
  static_assert(STAGES >= 2, "FlashPartialWgmma: at least 2 stages of K and V tiles");
  static_assert(BN == 64 || BN == 128, "FlashPartialWgmma: BN must be 64 or 128");
  static_assert(D % 64 == 0 && D <= 256, "FlashPartialWgmma: D must be 64, 128, 192 or 256");
  static_assert(DV == 64 || DV == 128, "FlashPartialWgmma: DV must be 64 or 128");
  static constexpr int VEC = vec16<T>::elems;
  static constexpr int ALIGN = 1024;  // the swizzle's period
  static constexpr int Q_BYTES = BM * D * 2;
  static constexpr int K_BYTES = D * BN * 2;
  static constexpr int V_BYTES = BN * DV * 2;
  static constexpr int STAGE_BYTES = K_BYTES + V_BYTES;
  static constexpr int SMEM_BYTES = Q_BYTES + STAGES * STAGE_BYTES + ALIGN;

  // FlashPartial's interface; ignored (no cache-hinted copies, above).
  bool stream_kv = false;

  template <class Score, class StoreO, class StoreML>
  __device__ __forceinline__ void run(char* smem, const T* q, long long ldq, int m_valid, const T* k, long long ldk,
                                      const T* v, long long ldv, long long n, long long it_begin, long long it_end,
                                      Score&& score, StoreO&& store_o, StoreML&& store_ml) {
    const bool vector = is_aligned(q, 16) && is_aligned(k, 16) && is_aligned(v, 16) && ldq % VEC == 0 &&
                        ldk % VEC == 0 && ldv % VEC == 0;
    if (vector)
      body<true>(smem, q, ldq, m_valid, k, ldk, v, ldv, n, it_begin, it_end, score, store_o, store_ml);
    else
      body<false>(smem, q, ldq, m_valid, k, ldk, v, ldv, n, it_begin, it_end, score, store_o, store_ml);
  }

 private:
  template <bool VECTOR, class Score, class StoreO, class StoreML>
  __device__ __forceinline__ void body(char* smem, const T* q, long long ldq, int m_valid, const T* k,
                                       long long ldk, const T* v, long long ldv, long long n, long long it_begin,
                                       long long it_end, Score& score, StoreO& store_o, StoreML& store_ml) {
#if PRISM_HAS_WGMMA
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane / 4, t = lane % 4;
    const uint32_t raw = smem_addr(smem);
    const uint32_t base = (raw + ALIGN - 1) & ~(uint32_t)(ALIGN - 1);
    char* s0 = smem + (base - raw);
    const uint32_t q_at = base;
    const uint32_t q_rows = (threadIdx.x / 128) * 64 * 128;  // this warpgroup's 64 rows
    auto k_at = [&](int stage) { return base + Q_BYTES + stage * STAGE_BYTES; };
    auto sK = [&](int stage) { return s0 + Q_BYTES + stage * STAGE_BYTES; };

    float o[DV / 8][4];
#pragma unroll
    for (int j = 0; j < DV / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[j][e] = 0.0f;
    float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

    auto load_kv = [&](long long it, int stage) {
      const long long key0 = it * BN;
      const int keys_valid = (int)min((long long)BN, n - key0);
      detail::load_tile_sw128<T, D, BN, THREADS, VECTOR>(sK(stage), k + key0, ldk, D, keys_valid);
      detail::load_tile_sw128<T, BN, DV, THREADS, VECTOR>(sK(stage) + K_BYTES, v + key0 * ldv, ldv, keys_valid, DV);
    };
    detail::load_tile_sw128<T, BM, D, THREADS, VECTOR>(s0, q, ldq, m_valid, D);
    cp_async_commit();
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (it_begin + s < it_end) load_kv(it_begin + s, s);
      cp_async_commit();
    }
    int read = 0, write = STAGES - 1;
    for (long long it = it_begin; it < it_end; ++it) {
      const long long key0 = it * BN;
      const int keys_valid = (int)min((long long)BN, n - key0);
      cp_async_wait<STAGES - 2>();  // q and this iteration's K and V tiles
      wgmma::fence_proxy_async();   // ... ordered before the tensor cores read them
      __syncthreads();              // ... from every thread; every wgmma on the stage refilled next retired
      if (it + STAGES - 1 < it_end) load_kv(it + STAGES - 1, write);
      cp_async_commit();

      // S = Q . Kt over the D / 16 k16 steps.
      float s[BN / 8][4];
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] = 0.0f;
      wgmma::fence();
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const uint64_t da = wgmma::desc_sw128(q_at + (ks / 4) * (BM * 128) + q_rows + (ks % 4) * 32, 16, 1024);
        const uint64_t db = wgmma::desc_sw128(k_at(read) + ks * 2048, D * 128, 1024);
        wgmma::mma<T, BN>(s, da, db);
      }
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_operands(s);

      // Online softmax for rows g (h = 0) and g + 8 (h = 1) of this warp's
      // 16, as FlashPartial's (branch-free, o rescaled only on a new max).
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = j * 8 + 2 * t + (e % 2);
          const float x = key < keys_valid ? score(s[j][e]) : -INFINITY;
          s[j][e] = x;
          tile_max[e / 2] = fmaxf(tile_max[e / 2], x);
        }
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
      uint32_t p[BN / 16][4];
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        float e8[2][4];
#pragma unroll
        for (int u = 0; u < 2; ++u)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            e8[u][e] = __expf(s[2 * kk + u][e] - m_sub[e / 2]);
            row_sum[e / 2] += e8[u][e];
          }
        p[kk][0] = detail::pack2<T>(e8[0][0], e8[0][1]);
        p[kk][1] = detail::pack2<T>(e8[0][2], e8[0][3]);
        p[kk][2] = detail::pack2<T>(e8[1][0], e8[1][1]);
        p[kk][3] = detail::pack2<T>(e8[1][2], e8[1][3]);
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 1);
        row_sum[h] += __shfl_xor_sync(0xffffffffu, row_sum[h], 2);
        l_run[h] = l_run[h] * alpha[h] + row_sum[h];
      }
      if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
        for (int j = 0; j < DV / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) o[j][e] *= alpha[e / 2];
      }

      // O += P . V over the BN / 16 k16 steps of this tile's keys.
      wgmma::fence_operands(o);
      wgmma::fence();
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk)
        wgmma::mma_rs<T, DV>(o, p[kk], wgmma::desc_sw128(k_at(read) + K_BYTES + kk * 2048, BN * 128, 1024));
      wgmma::commit();
      wgmma::wait<0>();
      wgmma::fence_operands(o);
      read = read == STAGES - 1 ? 0 : read + 1;
      write = write == STAGES - 1 ? 0 : write + 1;
    }
    cp_async_wait<0>();
    __syncthreads();

    // Each warp holds whole rows: o, m and l straight from registers (m
    // and l are the same in the four threads of a row's quad).
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = warp * 16 + g + h * 8;
      if (row >= m_valid) continue;
#pragma unroll
      for (int j = 0; j < DV / 8; ++j) {
        store_o(row, j * 8 + 2 * t, o[j][2 * h]);
        store_o(row, j * 8 + 2 * t + 1, o[j][2 * h + 1]);
      }
      if (t == 0) store_ml(row, m_run[h], l_run[h]);
    }
#else
    (void)smem, (void)q, (void)ldq, (void)m_valid, (void)k, (void)ldk, (void)v, (void)ldv, (void)n;
    (void)it_begin, (void)it_end, (void)score, (void)store_o, (void)store_ml;
    __trap();
#endif
  }
};

}  // namespace prism
