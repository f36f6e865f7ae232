// The IO-managed analog MVM in one kernel (the twin of crossbar/physics/io.py for its common settings).
//
// One block per sample: noise management (alpha), then bound-management rounds entirely on the device
// (no host synchronisation, so it can be captured in a CUDA graph): DAC (quantise, clip, input noise,
// asymmetry), the dot products, weight noise, output asymmetry, output noise, ADC, clip, the exceeded
// test; the result of the first round that stays in range is rescaled by out_scale * alpha * 2^r.
// Random numbers are named exactly as in crossbar/physics/io.py (c0 = line / 4 with word line % 4, c1 = sample,
// c2 = 2 * round + transposed), so draws match the reference; sums are ordered differently from BLAS, so
// outputs agree to rounding (and, rarely, one ADC step).
#include "philox.cuh"

using namespace xb;

__device__ __forceinline__ float normal_word(const u32x4& w, int k) {
  float z0, z1;
  if (k < 2) normal_pair(w.x, w.y, &z0, &z1);
  else normal_pair(w.z, w.w, &z0, &z1);
  return (k & 1) ? z1 : z0;
}

__device__ __forceinline__ float line_normal(int line, uint32_t s, uint32_t c2, uint32_t stream, uint32_t k0,
                                             uint32_t k1) {
  return normal_word(philox4x32(line >> 2, s, c2, stream, k0, k1), line & 3);
}

__device__ __forceinline__ float line_uniform(int line, uint32_t s, uint32_t c2, uint32_t stream, uint32_t k0,
                                              uint32_t k1) {
  return word_uniform(philox4x32(line >> 2, s, c2, stream, k0, k1), line & 3);
}

__device__ __forceinline__ float quantise(float v, float step, bool sto, float u) {
  float t = v / step;
  if (sto) {
    t = t + u;
    t = t - 0.5f;
  }
  return rintf(t) * step;
}

// DAC of input line j (crossbar.io: x / div, quantise, clip, input noise, asymmetry)
__device__ __forceinline__ float dac(float x, float div, int j, uint32_t s, uint32_t c2, float inp_step, int inp_sto,
                                     float inp_bound, float inp_noise, float inp_asym, uint32_t k0, uint32_t k1) {
  float v = x / div;
  if (inp_step > 0.0f) v = quantise(v, inp_step, inp_sto, inp_sto ? line_uniform(j, s, c2, INP_ROUND, k0, k1) : 0.0f);
  v = fminf(fmaxf(v, -inp_bound), inp_bound);
  if (inp_noise > 0.0f) v = v + inp_noise * line_normal(j, s, c2, INP_NOISE, k0, k1);
  if (inp_asym != 0.0f && v < 0.0f) v = v * (1.0f - inp_asym);
  return v;
}

__device__ float block_reduce(float v, bool is_max, float* scratch) {
  // all threads get the result; scratch holds 32 floats
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_down_sync(0xFFFFFFFFu, v, o);
    v = is_max ? fmaxf(v, other) : v + other;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < (int)(blockDim.x >> 5) ? scratch[lane] : (is_max ? -3.4e38f : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_down_sync(0xFFFFFFFFu, v, o);
      v = is_max ? fmaxf(v, other) : v + other;
    }
    if (lane == 0) scratch[0] = v;
  }
  __syncthreads();
  const float r = scratch[0];
  __syncthreads();
  return r;
}

// Noise management (crossbar.io): alpha of one sample from its max |x| and max x (block-wide; every thread
// of the block must call it). nm: 0 none, 1 abs max, 2 max, 3 constant.
__device__ __forceinline__ float nm_alpha(int nm, float nm_thres, float amax, float vmax, float* scratch) {
  float alpha = 1.0f;
  if (nm == 1 || nm == 2) {
    alpha = block_reduce(nm == 1 ? amax : vmax, true, scratch);
    if (nm_thres > 0.0f) alpha = fminf(alpha, nm_thres);
  } else {
    if (nm == 3) alpha = nm_thres > 0.0f ? nm_thres : 1.0f;
    __syncthreads();  // the caller's shared writes are visible as after a reduction
  }
  return alpha;
}

#define OUT_TILE 32

extern "C" __global__ void io_mvm(const float* __restrict__ w, int out_size, int in_size,
                                  const float* __restrict__ x, int batch, int transposed, float* __restrict__ y,
                                  int nm, float nm_thres, float inp_step, float inp_bound, float inp_noise,
                                  float inp_asym, int inp_sto, float out_step, float out_bound, float out_noise,
                                  float out_asym, float out_scale, int out_sto, int w_noise_type, float w_noise,
                                  int bm, int bm_neg, int rounds, uint32_t k0, uint32_t k1,
                                  const unsigned long long* __restrict__ ctr, int first_round,
                                  int* __restrict__ flags) {
  // Block (sample b = blockIdx.x, output tile blockIdx.y). Two modes:
  //  * split (gridDim.y > 1, first_round 0): round 0 for outputs [32 y, 32 y + 32); a sample that exceeds
  //    the output bound is flagged in flags[b] for the second launch
  //  * whole (gridDim.y == 1): all outputs, rounds first_round .. rounds - 1 on the device; with
  //    first_round > 0 only flagged samples run (the continuation of a split round 0)
  extern __shared__ float smem[];
  __shared__ float scratch[32];
  __shared__ int exceeded;
  const int n_in = transposed ? out_size : in_size;
  const int n_out = transposed ? in_size : out_size;
  const int b = blockIdx.x;
  if (first_round > 0 && flags[b] == 0) return;
  const bool split = gridDim.y > 1;
  const int lo = split ? blockIdx.y * OUT_TILE : 0;
  const int hi = split ? min(n_out, lo + OUT_TILE) : n_out;
  float* raw = smem;             // [n_in] the sample's input
  float* xs = smem + n_in;       // [n_in] after the DAC
  float* acc = smem + 2 * n_in;  // [n_out] outputs of this block (whole mode), or partial sums (split)
  const uint32_t s = (uint32_t)(ctr[0] + (unsigned long long)b);
  const uint32_t tdir = transposed ? 1u : 0u;
  float amax = 0.0f, vmax = -3.4e38f;
  for (int j = threadIdx.x; j < n_in; j += blockDim.x) {
    const float v = x[(long long)b * n_in + j];
    raw[j] = v;
    amax = fmaxf(amax, fabsf(v));
    vmax = fmaxf(vmax, v);
  }
  const float alpha = nm_alpha(nm, nm_thres, amax, vmax, scratch);
  float* out = y + (long long)b * n_out;
  if (nm != 0 && inp_noise == 0.0f && alpha <= 0.0f) {  // nothing reaches the crossbar
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) out[i] = 0.0f;
    return;
  }
  const int last = split ? 1 : rounds;
  float factor = (float)(1u << first_round), div = 1.0f;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int r = first_round; r < last; ++r) {
    const uint32_t c2 = 2u * (uint32_t)r + tdir;
    div = (nm != 0 ? (alpha > 0.0f ? alpha : 1.0f) : 1.0f) * factor;
    float sq = 0.0f;
    for (int j = threadIdx.x; j < n_in; j += blockDim.x) {
      const float v = dac(raw[j], div, j, s, c2, inp_step, inp_sto, inp_bound, inp_noise, inp_asym, k0, k1);
      xs[j] = v;
      sq += v * v;
    }
    float norm = 0.0f;
    if (w_noise_type == 1) norm = sqrtf(block_reduce(sq, false, scratch));
    else __syncthreads();
    if (!transposed) {
      // one warp per output row, lanes along the row (coalesced)
      for (int i = lo + warp; i < hi; i += warps) {
        const float* row = w + (long long)i * in_size;
        float dot = 0.0f, pcm = 0.0f;
        for (int j = lane; j < in_size; j += 32) {
          dot += row[j] * xs[j];
          if (w_noise_type == 2) pcm += fabsf(row[j]) * (xs[j] * xs[j]);
        }
        for (int o = 16; o > 0; o >>= 1) {
          dot += __shfl_down_sync(0xFFFFFFFFu, dot, o);
          pcm += __shfl_down_sync(0xFFFFFFFFu, pcm, o);
        }
        if (lane == 0) acc[i - lo] = w_noise_type == 2 ? dot + w_noise * sqrtf(pcm) * line_normal(i, s, c2, W_NOISE, k0, k1)
                                                       : dot;
      }
    } else {
      // lanes along 32 output columns (coalesced across the warp), warps split the rows, then combine
      for (int base = lo; base < hi; base += 32) {
        const int jo = base + lane;
        float dot = 0.0f, pcm = 0.0f;
        if (jo < hi) {
          for (int i = warp; i < n_in; i += warps) {
            const float wv = w[(long long)i * in_size + jo];
            dot += wv * xs[i];
            if (w_noise_type == 2) pcm += fabsf(wv) * (xs[i] * xs[i]);
          }
        }
        float* part = acc + (hi - lo);  // [warps][32] partial sums, then [warps][32] partial pcm terms
        part[warp * 32 + lane] = dot;
        part[(warps + warp) * 32 + lane] = pcm;
        __syncthreads();
        if (warp == 0 && jo < hi) {
          float total = 0.0f, tp = 0.0f;
          for (int k = 0; k < warps; ++k) {
            total += part[k * 32 + lane];
            tp += part[(warps + k) * 32 + lane];
          }
          acc[jo - lo] = w_noise_type == 2 ? total + w_noise * sqrtf(tp) * line_normal(jo, s, c2, W_NOISE, k0, k1)
                                           : total;
        }
        __syncthreads();
      }
    }
    if (threadIdx.x == 0) exceeded = 0;
    __syncthreads();
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      float v = acc[i - lo];
      if (w_noise_type == 1) v = v + (w_noise * norm) * line_normal(i, s, c2, W_NOISE, k0, k1);
      if (out_asym != 0.0f && v < 0.0f) v = v * (1.0f - out_asym);
      if (out_noise > 0.0f) v = v + out_noise * line_normal(i, s, c2, OUT_NOISE, k0, k1);
      if (out_step > 0.0f)
        v = quantise(v, out_step, out_sto, out_sto ? line_uniform(i, s, c2, OUT_ROUND, k0, k1) : 0.0f);
      if (out_bound > 0.0f) {
        if (v > out_bound || (bm_neg && v < -out_bound)) exceeded = 1;
        v = fminf(fmaxf(v, -out_bound), out_bound);
      }
      acc[i - lo] = v;
    }
    __syncthreads();
    const bool over = bm && exceeded;
    __syncthreads();
    if (split) {
      if (over && threadIdx.x == 0 && rounds > 1) atomicOr(&flags[b], 1);
      break;
    }
    if (!(over && r + 1 < rounds)) break;
    factor = factor * 2.0f;
  }
  const float scale = out_scale * div;
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) out[i] = acc[i - lo] * scale;
}

// ---- large tiles: DAC and ADC stages around a cuBLAS GEMM (round 0 of bound management) ----------------

extern "C" __global__ void io_prepare(const float* __restrict__ x, int batch, int n_in, int nm, float nm_thres,
                                      float inp_step, float inp_bound, float inp_noise, float inp_asym, int inp_sto,
                                      int want_norm, uint32_t tdir, uint32_t k0, uint32_t k1,
                                      const unsigned long long* __restrict__ ctr, float* __restrict__ xs,
                                      float* __restrict__ div_out, float* __restrict__ norm_out,
                                      int* __restrict__ zero_out) {
  // one block per sample: alpha, then x' = DAC(x / alpha) with the names of round 0
  __shared__ float scratch[32];
  const int b = blockIdx.x;
  const uint32_t s = (uint32_t)(ctr[0] + (unsigned long long)b);
  const float* row = x + (long long)b * n_in;
  float amax = 0.0f, vmax = -3.4e38f;
  for (int j = threadIdx.x; j < n_in; j += blockDim.x) {
    amax = fmaxf(amax, fabsf(row[j]));
    vmax = fmaxf(vmax, row[j]);
  }
  const float alpha = nm_alpha(nm, nm_thres, amax, vmax, scratch);
  const float div = nm != 0 ? (alpha > 0.0f ? alpha : 1.0f) : 1.0f;
  float sq = 0.0f;
  for (int j = threadIdx.x; j < n_in; j += blockDim.x) {
    const float v = dac(row[j], div, j, s, tdir, inp_step, inp_sto, inp_bound, inp_noise, inp_asym, k0, k1);
    xs[(long long)b * n_in + j] = v;
    sq += v * v;
  }
  if (want_norm) sq = block_reduce(sq, false, scratch);
  if (threadIdx.x == 0) {
    div_out[b] = div;
    norm_out[b] = want_norm ? sqrtf(sq) : 0.0f;
    zero_out[b] = nm != 0 && inp_noise == 0.0f && alpha <= 0.0f;
  }
}

extern "C" __global__ void io_finalize(float* __restrict__ y, int batch, int n_out, const float* __restrict__ div,
                                       const float* __restrict__ norm, const int* __restrict__ zero, float w_noise,
                                       float out_asym, float out_noise, float out_step, float out_bound, int out_sto,
                                       int bm_neg, float out_scale, uint32_t tdir, uint32_t k0, uint32_t k1,
                                       const unsigned long long* __restrict__ ctr, int* __restrict__ exceeded) {
  // one thread per four outputs (one Philox counter each for weight noise, output noise, ADC rounding):
  // weight noise, asymmetry, output noise, ADC, clip, exceeded flag, rescale
  const int groups = (n_out + 3) / 4;
  const long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (long long)batch * groups) return;
  const int b = (int)(t / groups), g = (int)(t % groups);
  const uint32_t s = (uint32_t)(ctr[0] + (unsigned long long)b);
  float zw[4], zo[4];
  if (w_noise > 0.0f) normal4(philox4x32(g, s, tdir, W_NOISE, k0, k1), zw);
  if (out_noise > 0.0f) normal4(philox4x32(g, s, tdir, OUT_NOISE, k0, k1), zo);
  const u32x4 ur = out_sto ? philox4x32(g, s, tdir, OUT_ROUND, k0, k1) : u32x4{0u, 0u, 0u, 0u};
  const float wn = w_noise * norm[b], scale = out_scale * div[b];
  const bool zero_row = zero[b] != 0;
  bool over = false;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const int i = 4 * g + k;
    if (i >= n_out) break;
    const long long e = (long long)b * n_out + i;
    float v = y[e];
    if (w_noise > 0.0f) v = v + wn * zw[k];
    if (out_asym != 0.0f && v < 0.0f) v = v * (1.0f - out_asym);
    if (out_noise > 0.0f) v = v + out_noise * zo[k];
    if (out_step > 0.0f) v = quantise(v, out_step, out_sto, word_uniform(ur, k));
    if (out_bound > 0.0f) {
      over = over || v > out_bound || (bm_neg && v < -out_bound);
      v = fminf(fmaxf(v, -out_bound), out_bound);
    }
    y[e] = zero_row ? 0.0f : v * scale;
  }
  if (over) exceeded[b] = 1;
}
