// Probe kernels of `prism bench` (src/bench/probes.rs): compiled at run
// time for the device's arch, timed under the same harness as the
// generated kernels (256 MiB flush zeroed before each launch, CUDA events).
//
// - prism_probe_empty: nothing; launched with 1 block of 32 threads, its
//   time is the launch floor.
// - prism_probe_mma: back-to-back mma.sync.aligned.m16n8k16 (f16 inputs,
//   f32 accumulation) in registers, PRISM_PROBE_CHAINS independent
//   accumulator chains per warp; launched with 8 warps per block and 4
//   blocks per SM, its flops over its time are the mma.sync peak. (sm_90's
//   wgmma peak is higher; this is what mma.sync kernels can reach.)
// - prism_probe_read: a grid-stride read of `chunks` 16-byte chunks, L2
//   evict_first (what the generated kernels use for data read once); timed
//   per benchmark row over that row's bytes, it is the row's read floor:
//   what moving those bytes costs right after the harness's flush (which
//   leaves L2 full of dirty lines), launch included.
//
// Standalone: no prism headers, no CUDA headers.

#define PRISM_PROBE_CHAINS 4

extern "C" __global__ void prism_probe_empty() {}

// `out` holds one float per thread (the sum of its accumulators, so the
// chains are live); `iters` mma rounds of PRISM_PROBE_CHAINS each.
extern "C" __global__ void __launch_bounds__(256)
    prism_probe_mma(float* out, unsigned long long iters) {
    const unsigned int t = blockIdx.x * blockDim.x + threadIdx.x;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    // Two f16 values per register, small and thread-dependent (0x1c00 is
    // 2^-8), so nothing is constant-folded and nothing overflows.
    const unsigned int x = 0x1c001c00u + (threadIdx.x & 7u);
    const unsigned int a0 = x, a1 = x + 0x00010000u, a2 = x + 1u, a3 = x + 0x00010001u;
    const unsigned int b0 = x + 2u, b1 = x + 0x00020000u;
    float c[PRISM_PROBE_CHAINS][4];
#pragma unroll
    for (int k = 0; k < PRISM_PROBE_CHAINS; ++k) {
#pragma unroll
        for (int j = 0; j < 4; ++j) c[k][j] = 0.0f;
    }
#pragma unroll 4
    for (unsigned long long i = 0; i < iters; ++i) {
#pragma unroll
        for (int k = 0; k < PRISM_PROBE_CHAINS; ++k) {
            asm volatile(
                "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                : "+f"(c[k][0]), "+f"(c[k][1]), "+f"(c[k][2]), "+f"(c[k][3])
                : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        }
    }
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < PRISM_PROBE_CHAINS; ++k) {
#pragma unroll
        for (int j = 0; j < 4; ++j) s += c[k][j];
    }
    out[t] = s;
#else
    // No m16n8k16 f16 mma.sync before sm_80: a NaN says so.
    out[t] = __int_as_float(0x7fffffff);
#endif
}

// `sink` is written only if the chunks' XOR hits a magic value (never, for
// a zeroed buffer), so the loads stay live.
extern "C" __global__ void __launch_bounds__(512)
    prism_probe_read(const unsigned int* src, unsigned long long chunks, unsigned int* sink) {
    unsigned long long policy = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(policy));
#endif
    unsigned int acc = 0;
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < chunks; i += stride) {
        unsigned int x, y, z, w;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
        asm volatile("ld.global.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;\n"
                     : "=r"(x), "=r"(y), "=r"(z), "=r"(w)
                     : "l"(src + 4 * i), "l"(policy));
#else
        (void)policy;
        x = src[4 * i], y = src[4 * i + 1], z = src[4 * i + 2], w = src[4 * i + 3];
#endif
        acc ^= x ^ y ^ z ^ w;
    }
    if (acc == 0x9e3779b9u) sink[0] = acc;
}
