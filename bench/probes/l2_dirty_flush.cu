// Build and run on the GPU machine:
//   nvcc -O3 -arch=sm_90a -o l2probe bench/probes/l2_dirty_flush.cu && ./l2probe
// Results on an H200: bench/results/l2-dirty-flush-probe-h200.txt (bench/NOTES.md).
// Does the flush's dirty L2 cost a streaming read? 32 MiB read after a 256 MiB
// zero-fill (dirty L2) vs after a 256 MiB read (clean L2), with normal and
// evict_first loads.
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cuda_runtime.h>
__global__ void readk(const uint4* __restrict__ p, size_t n, float* out, int hint) {
  uint64_t pol;
  if (hint) asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
  else asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(pol));
  unsigned acc = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint4 v;
    asm volatile("ld.global.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p + i), "l"(pol));
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678) out[0] = 1.0f;
}
__global__ void readflush(const uint4* p, size_t n, float* out) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) { uint4 v = p[i]; acc ^= v.x; }
  if (acc == 0x12345678) out[0] = 1.0f;
}
int main() {
  size_t flushb = 256ull << 20;
  char* flush; cudaMalloc(&flush, flushb);
  float* out; cudaMalloc(&out, 4);
  cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
  for (size_t mb : {2, 8, 32, 64, 128}) {
    size_t bytes = mb << 20; uint4* w; cudaMalloc(&w, bytes); cudaMemset(w, 1, bytes);
    size_t n = bytes / 16;
    for (int mode = 0; mode < 4; ++mode) {  // 0 zero+normal 1 zero+evict_first 2 readflush+normal 3 readflush+evict_first
      std::vector<float> t;
      for (int r = 0; r < 60; ++r) {
        if (mode < 2) cudaMemsetAsync(flush, 0, flushb); else readflush<<<1056, 512>>>((const uint4*)flush, flushb / 16, out);
        cudaEventRecord(a);
        readk<<<132 * 4, 512>>>(w, n, out, mode & 1);
        cudaEventRecord(b); cudaEventSynchronize(b);
        float ms; cudaEventElapsedTime(&ms, a, b); if (r >= 10) t.push_back(ms * 1000);
      }
      std::sort(t.begin(), t.end());
      float med = t[t.size() / 2];
      printf("%4zu MiB %-28s %8.2f us  %6.2f TB/s\n", mb, mode == 0 ? "dirty L2, normal" : mode == 1 ? "dirty L2, evict_first" : mode == 2 ? "clean L2, normal" : "clean L2, evict_first", med, bytes / med / 1e6);
    }
    cudaFree(w);
  }
  return 0;
}
