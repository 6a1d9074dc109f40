// Probe: how fast the SMs can pull L2-resident data into shared memory,
// with per-thread 16-byte cp.async (what TileGemm and WgmmaGemm use) and
// with the copy engine's 1D bulk copies (cp.async.bulk, sm_90, completing
// on an mbarrier; no tensor map). One block per SM streams chunks of a
// buffer through a STAGES-deep ring, nothing computed. Build on the GPU
// machine:
//   nvcc -O3 -std=c++17 -arch=sm_90a bench/probes/l2_to_smem.cu -o l2s && ./l2s
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s line %d\n", cudaGetErrorString(e), __LINE__); return 1; } } while (0)

constexpr int STAGES = 4;

__device__ __forceinline__ uint32_t saddr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

template <int CHUNK>
__global__ void __launch_bounds__(256, 1) cp_async_kernel(const char* src, size_t nchunks, int iters, unsigned* sink) {
  extern __shared__ __align__(128) char smem[];
  for (int i = 0; i < iters + STAGES - 1; ++i) {
    if (i < iters) {
      const size_t c = (blockIdx.x + (size_t)i * gridDim.x) % nchunks;
      const char* s = src + c * CHUNK;
      char* d = smem + (i % STAGES) * CHUNK;
      for (int o = threadIdx.x * 16; o < CHUNK; o += 256 * 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(saddr(d + o)), "l"(s + o) : "memory");
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
    asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 1) : "memory");
    __syncthreads();
  }
  if (threadIdx.x == 0) sink[blockIdx.x] = smem[threadIdx.x];
}

template <int CHUNK>
__global__ void __launch_bounds__(256, 1) bulk_kernel(const char* src, size_t nchunks, int iters, unsigned* sink) {
  extern __shared__ __align__(128) char smem[];
  __shared__ __align__(8) uint64_t bar[STAGES];
  if (threadIdx.x == 0)
    for (int s = 0; s < STAGES; ++s) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(saddr(&bar[s])));
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  __syncthreads();
  auto issue = [&](int i) {
    const size_t c = (blockIdx.x + (size_t)i * gridDim.x) % nchunks;
    const int s = i % STAGES;
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(saddr(&bar[s])), "r"(CHUNK) : "memory");
    // Split into 16 KiB pieces (each under the size limit of one copy).
    for (int o = 0; o < CHUNK; o += 16384)
      asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                   ::"r"(saddr(smem + s * CHUNK + o)), "l"(src + c * CHUNK + o), "r"(16384), "r"(saddr(&bar[s])) : "memory");
  };
  if (threadIdx.x == 0)
    for (int i = 0; i < STAGES - 1 && i < iters; ++i) issue(i);
  for (int i = 0; i < iters; ++i) {
    const int s = i % STAGES;
    const uint32_t parity = (i / STAGES) & 1;
    uint32_t done = 0;
    while (!done)
      asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }\n"
                   : "=r"(done) : "r"(saddr(&bar[s])), "r"(parity) : "memory");
    __syncthreads();  // every thread is past stage (i - 1), whose buffer is refilled next
    if (threadIdx.x == 0 && i + STAGES - 1 < iters) issue(i + STAGES - 1);
  }
  if (threadIdx.x == 0) sink[blockIdx.x] = smem[threadIdx.x];
}

template <class K>
int run(const char* name, K kernel, const char* src, size_t bytes, int chunk, int sms, unsigned* sink) {
  const size_t nchunks = bytes / chunk;
  const int iters = 400;
  const int smem = STAGES * chunk;
  CK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> ts;
  for (int r = 0; r < 7; ++r) {
    CK(cudaEventRecord(a));
    kernel<<<sms, 256, smem>>>(src, nchunks, iters, sink);
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    CK(cudaGetLastError());
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    if (r > 0) ts.push_back(ms);
  }
  std::sort(ts.begin(), ts.end());
  const double moved = (double)sms * iters * chunk;
  printf("%-10s buffer %5zu MiB chunk %6d B: %.2f TB/s into shared memory\n", name, bytes >> 20, chunk,
         moved / (ts[ts.size() / 2] * 1e-3) / 1e12);
  return 0;
}

int main() {
  int sms;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  char* buf;
  unsigned* sink;
  const size_t big = 1ull << 30;
  CK(cudaMalloc(&buf, big));
  CK(cudaMemset(buf, 1, big));
  CK(cudaMalloc(&sink, 4096));
  for (size_t bytes : {(size_t)32 << 20, big}) {
    run("cp.async", cp_async_kernel<32768>, buf, bytes, 32768, sms, sink);
    run("bulk", bulk_kernel<32768>, buf, bytes, 32768, sms, sink);
    run("cp.async", cp_async_kernel<49152>, buf, bytes, 49152, sms, sink);
    run("bulk", bulk_kernel<49152>, buf, bytes, 49152, sms, sink);
  }
  return 0;
}
