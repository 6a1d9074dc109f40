// prism device library: scalar math on the f32 compute type.
//
// Generated element-wise code calls these by name (prism::op::silu(x), ...),
// always on f32 values: inputs are converted with prism::to_float first and
// results rounded with prism::from_float<T> last.
//
// Every function uses the accurate libm routine (expf, logf, erff, sqrtf),
// never the fast intrinsics (__expf, __logf, ...), so results match an f32
// reference to within a few ulp. Compile without --use_fast_math to keep it so.
#pragma once

#include "prism/common.cuh"

namespace prism {
namespace op {

// ---------------------------------------------------------------- unary

// -x
__device__ __forceinline__ float neg(float x) { return -x; }
// e^x
__device__ __forceinline__ float exp(float x) { return expf(x); }
// natural logarithm
__device__ __forceinline__ float log(float x) { return logf(x); }
// square root
__device__ __forceinline__ float sqrt(float x) { return sqrtf(x); }
// 1 / sqrt(x), correctly rounded square root then an IEEE division
__device__ __forceinline__ float rsqrt(float x) { return 1.0f / sqrtf(x); }
// x * x
__device__ __forceinline__ float square(float x) { return x * x; }
// max(x, 0); NaN propagates (unlike fmaxf), as in the reference interpreter
__device__ __forceinline__ float relu(float x) { return (x > 0.0f || x != x) ? x : 0.0f; }
// 1 / (1 + e^-x)
__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
// x * sigmoid(x)  (a.k.a. swish), computed as x / (1 + e^-x) like the
// reference interpreter: one rounding fewer than x * sigmoid(x)
__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }
// exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))), evaluated in the same order
// as the reference interpreter (an IEEE division by sqrt(2) rounded to f32)
__device__ __forceinline__ float gelu(float x) {
  return 0.5f * x * (1.0f + erff(x / 1.41421356237309504880f));
}

// ---------------------------------------------------------------- binary

__device__ __forceinline__ float add(float a, float b) { return a + b; }
__device__ __forceinline__ float sub(float a, float b) { return a - b; }
__device__ __forceinline__ float mul(float a, float b) { return a * b; }
// IEEE division (not the approximate __fdividef)
__device__ __forceinline__ float div(float a, float b) { return a / b; }
// fmaxf / fminf: if one operand is NaN the other is returned
__device__ __forceinline__ float max(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ float min(float a, float b) { return fminf(a, b); }

}  // namespace op
}  // namespace prism
