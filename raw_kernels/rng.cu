// Philox draws on the GPU: the twins of crossbar.rng.philox4x32, normal and uniform_rows / normal_rows.
#include "philox.cuh"

using namespace xb;

extern "C" __global__ void philox_words(const uint32_t* __restrict__ c0, long long n, uint32_t c1, uint32_t c2,
                                        uint32_t c3, uint32_t k0, uint32_t k1, int normals,
                                        uint32_t* __restrict__ out) {
  // out: (4, n) uint32 words, or (4, n) float32 normals when `normals` is set
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n) return;
  const u32x4 w = philox4x32(c0[t], c1, c2, c3, k0, k1);
  if (normals) {
    float z[4];
    normal4(w, z);
    float* f = reinterpret_cast<float*>(out);
    for (int k = 0; k < 4; ++k) f[k * n + t] = z[k];
  } else {
    out[t] = w.x;
    out[n + t] = w.y;
    out[2 * n + t] = w.z;
    out[3 * n + t] = w.w;
  }
}

extern "C" __global__ void random_rows(uint32_t k0, uint32_t k1, uint32_t stream, int batch, int size,
                                       const unsigned long long* __restrict__ ctr, int use_ctr,
                                       unsigned long long offset, uint32_t c2, int normals, float* __restrict__ out) {
  // out (batch, size): element e of row b is word e % 4 of counter (e / 4, sample0 + b, c2, stream) with
  // sample0 = (use_ctr ? ctr[0] : 0) + offset; one thread per group of four elements
  const int groups = (size + 3) / 4;
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)batch * groups) return;
  const int b = (int)(t / groups), g = (int)(t % groups);
  const unsigned long long s0 = (use_ctr ? ctr[0] : 0ull) + offset;
  const u32x4 w = philox4x32(g, (uint32_t)(s0 + (unsigned long long)b), c2, stream, k0, k1);
  float v[4];
  if (normals) {
    normal4(w, v);
  } else {
    v[0] = uniform_f32(w.x);
    v[1] = uniform_f32(w.y);
    v[2] = uniform_f32(w.z);
    v[3] = uniform_f32(w.w);
  }
  float* row = out + (long long)b * size;
  for (int k = 0; k < 4 && 4 * g + k < size; ++k) row[4 * g + k] = v[k];
}

extern "C" __global__ void philox_arrays(const uint32_t* __restrict__ c0, const uint32_t* __restrict__ c1,
                                         long long n, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                                         uint32_t* __restrict__ out) {
  // out (4, n): the words of counters (c0[t], c1[t], c2, c3)
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n) return;
  const u32x4 w = philox4x32(c0[t], c1[t], c2, c3, k0, k1);
  out[t] = w.x;
  out[n + t] = w.y;
  out[2 * n + t] = w.z;
  out[3 * n + t] = w.w;
}
