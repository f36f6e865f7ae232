// Philox4x32-10 and its float transforms: the CUDA twin of crossbar/physics/rng.py.
//
// Bit-identity with the NumPy reference depends on evaluating the float32 expressions in the same
// order with no fused multiply-add: every kernel that includes this header is compiled with
// --fmad=false (crossbar/cuda/kernels.py), and the functions below spell out each operation.
#pragma once

// NVRTC has no C library headers: name the fixed-width types ourselves
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;

namespace xb {

struct u32x4 {
  uint32_t x, y, z, w;
};

// Stream tags: keep in sync with crossbar.rng.Stream.
enum Stream : uint32_t {
  KEY = 0, D2D = 1, X_BITS = 2, D_BITS = 3, PULSE_NOISE = 4, WRITE_NOISE = 5, PROB_ROUND = 6,
  INP_ROUND = 7, INP_NOISE = 8, OUT_ROUND = 9, OUT_NOISE = 10, W_NOISE = 11, DIFFUSION = 12,
  RESET = 13, DRIFT = 14, PROGRAM = 15, TRANSFER = 16, QUANT = 17, SUM_NOISE = 18
};

__device__ __forceinline__ u32x4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                            uint32_t k1) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {c0, c1, c2, c3};
}

__device__ __forceinline__ float uniform_f32(uint32_t w) { return (float)(w >> 8) * 5.9604644775390625e-08f; }

__device__ __forceinline__ float log_f32(float u) {
  // same operation sequence as crossbar.rng._log_f32
  const uint32_t bits = __float_as_uint(u);
  float e = (float)((int)(bits >> 23) - 127);
  float m = __uint_as_float((bits & 0x7FFFFFu) | 0x3F800000u);
  if (m > 1.4142135f) {
    m = m * 0.5f;
    e = e + 1.0f;
  }
  const float s = (m - 1.0f) / (m + 1.0f);
  const float z = s * s;
  float t = 0.11111111f;  // 1/9
  t = t * z + 0.14285715f;
  t = t * z + 0.2f;
  t = t * z + 0.33333334f;
  t = t * z;
  const float s2 = s * 2.0f;
  return e * 0.6933594f + (e * -0.00021219444f + (s2 + s2 * t));
}

__device__ __forceinline__ void sincos_2pi_f32(float u, float* c_out, float* s_out) {
  // same operation sequence as crossbar.rng._sincos_2pi_f32
  const float v = u * 4.0f;
  float q = floorf(v);
  float f = v - q;
  const bool up = f > 0.5f;
  if (up) f = f - 1.0f;
  const int qi = ((int)(q + (up ? 1.0f : 0.0f))) & 3;
  const float th = f * 1.5707964f;
  const float z = th * th;
  float ps = 0.0000027557319f;  // 1/362880
  ps = ps * z + -0.0001984127f;
  ps = ps * z + 0.008333334f;
  ps = ps * z + -0.16666667f;
  const float sn = th + th * z * ps;
  float pc = 0.000024801588f;  // 1/40320
  pc = pc * z + -0.0013888889f;
  pc = pc * z + 0.041666668f;
  pc = pc * z + -0.5f;
  const float cs = 1.0f + z * pc;
  const bool odd = qi & 1;
  float c = odd ? sn : cs;
  float s = odd ? cs : sn;
  if (qi == 1 || qi == 2) c = -c;
  if (qi >= 2) s = -s;
  *c_out = c;
  *s_out = s;
}

// Box-Muller on words (a, b): (r cos 2 pi u2, r sin 2 pi u2), u1 = ((a >> 8) + 1) 2^-24.
__device__ __forceinline__ void normal_pair(uint32_t a, uint32_t b, float* z0, float* z1) {
  const float u1 = (float)((a >> 8) + 1u) * 5.9604644775390625e-08f;
  const float r = sqrtf(-2.0f * log_f32(u1));
  float c, s;
  sincos_2pi_f32(uniform_f32(b), &c, &s);
  *z0 = r * c;
  *z1 = r * s;
}

// The four normals of one counter, as crossbar.rng.normal.
__device__ __forceinline__ void normal4(const u32x4& w, float z[4]) {
  normal_pair(w.x, w.y, &z[0], &z[1]);
  normal_pair(w.z, w.w, &z[2], &z[3]);
}

// Only the first normal, as crossbar.rng.normal1.
__device__ __forceinline__ float normal_first(const u32x4& w) {
  const float u1 = (float)((w.x >> 8) + 1u) * 5.9604644775390625e-08f;
  const float r = sqrtf(-2.0f * log_f32(u1));
  float c, s;
  sincos_2pi_f32(uniform_f32(w.y), &c, &s);
  return r * c;
}

__device__ __forceinline__ float word_uniform(const u32x4& w, int k) {
  return uniform_f32(k == 0 ? w.x : k == 1 ? w.y : k == 2 ? w.z : w.w);
}

}  // namespace xb
