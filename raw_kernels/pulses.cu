// Pulsed update on the GPU: the twin of crossbar/physics/pulses.py + crossbar/physics/devices/base.py:apply_events.
//
// Three launches per update(x, d, lr) of a batch of B samples:
//   update_management  per sample: max|x|, max|d| -> train length BL[b] and probability scales
//   pulse_trains       per (sample, line): the BL[b] slot bits of every x and d line, drawn with Philox
//                      as (line, sample, slot / 4, X_BITS | D_BITS) word slot % 4, packed 31 slots per
//                      uint32 word with the sign of the line in bit 31 of word 0
//   pulsed_update<D>   per weight: loop over the samples in order, n = popc(x & d), apply the device rule
// Sample numbers are read from a device counter (ctr[0] = the tile's running sample count), so a captured
// CUDA graph replays with fresh random numbers; the tile advances it after the update.
#include "philox.cuh"
#include "devices.cuh"

using namespace xb;

#define SLOTS_PER_WORD 31
#define SIGN_BIT 0x80000000u

extern "C" __global__ void update_management(const float* __restrict__ x, const float* __restrict__ d, int in_size,
                                             int out_size, float lam, float dw, float bld, float um_grad_scale,
                                             int fixed_bl, int ublm, int um, int* __restrict__ bl_out,
                                             float* __restrict__ scale_d, float* __restrict__ scale_x) {
  // one block per sample; float32 arithmetic in the order of crossbar.pulses.update_management
  const int b = blockIdx.x;
  __shared__ float red_x[256], red_d[256];
  float mx = 0.0f, md = 0.0f;
  for (int j = threadIdx.x; j < in_size; j += blockDim.x) mx = fmaxf(mx, fabsf(x[(long long)b * in_size + j]));
  for (int i = threadIdx.x; i < out_size; i += blockDim.x) md = fmaxf(md, fabsf(d[(long long)b * out_size + i]));
  red_x[threadIdx.x] = mx;
  red_d[threadIdx.x] = md;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      red_x[threadIdx.x] = fmaxf(red_x[threadIdx.x], red_x[threadIdx.x + s]);
      red_d[threadIdx.x] = fmaxf(red_d[threadIdx.x], red_d[threadIdx.x + s]);
    }
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  const float x_max = red_x[0], d_max = red_d[0];
  if (lam == 0.0f) {
    bl_out[b] = 0;
    scale_d[b] = scale_x[b] = 0.0f;
    return;
  }
  float bl, a;
  if (fixed_bl || ublm || dw * bld >= lam) {
    bl = bld;
    a = sqrtf(lam / (dw * bl));
  } else {
    bl = fmaxf(ceilf(lam / dw), 1.0f);
    a = 1.0f;
  }
  float bb = a;
  if (um) {
    float d_v = um_grad_scale * d_max;
    const float k = lam * x_max * d_v / dw;
    if (ublm) {
      bl = fminf(fmaxf(ceilf(k), 1.0f), bld);
      a = sqrtf(lam / (dw * bl));
      bb = a;
    }
    if (k > bld) d_v = d_v * bld / k;
    a = a * sqrtf(x_max / d_v);
    bb = bb * sqrtf(d_v / x_max);
    if (x_max == 0.0f || d_max == 0.0f) {
      bl = 0.0f;
      a = bb = 0.0f;
    }
  }
  bl_out[b] = (int)bl;
  scale_d[b] = a;
  scale_x[b] = bb;
}

extern "C" __global__ void pulse_trains(const float* __restrict__ v, int size, int batch, const int* __restrict__ bl,
                                        const float* __restrict__ scale, float res, int sto_round, uint32_t stream,
                                        uint32_t round_c2, uint32_t k0, uint32_t k1,
                                        const unsigned long long* __restrict__ ctr, int nwords,
                                        uint32_t* __restrict__ words) {
  // one thread per (sample, line); words layout (batch, nwords, size)
  const long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= (long long)batch * size) return;
  const int b = (int)(idx / size), line = (int)(idx % size);
  const uint32_t s = (uint32_t)(ctr[0] + (unsigned long long)b);
  const float value = v[idx];
  float p = scale[b] * fabsf(value);
  if (res > 0.0f) {
    float q = p / res;
    if (sto_round) q = q + (uniform_f32(philox4x32(line, s, round_c2, PROB_ROUND, k0, k1).x) - 0.5f);
    p = rintf(q) * res;
  }
  const int n = bl[b];
  // slots are drawn in increasing order: fill one word at a time, flushing at word boundaries
  const long long base = (long long)b * nwords * size + line;
  uint32_t cur = value < 0.0f ? SIGN_BIT : 0u;
  int cur_word = 0;
  if (p > 0.0f && n > 0) {
    for (int blk = 0; blk < (n + 3) / 4; ++blk) {
      const u32x4 r = philox4x32(line, s, blk, stream, k0, k1);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int slot = blk * 4 + k;
        if (slot >= n) break;
        if (slot / SLOTS_PER_WORD != cur_word) {
          words[base + (long long)cur_word * size] = cur;
          cur = 0u;
          cur_word = slot / SLOTS_PER_WORD;
        }
        if (word_uniform(r, k) < p) cur |= 1u << (slot % SLOTS_PER_WORD);
      }
    }
  }
  words[base + (long long)cur_word * size] = cur;
  for (int k = cur_word + 1; k < nwords; ++k) words[base + (long long)k * size] = 0u;
}

__device__ __forceinline__ float pick(const float z[4], uint32_t k) {
  // z[k] without dynamic indexing (which would put z in local memory)
  return k == 0 ? z[0] : k == 1 ? z[1] : k == 2 ? z[2] : z[3];
}

__device__ __forceinline__ float sum_noise(uint32_t widx, uint32_t s, uint32_t k0, uint32_t k1, uint32_t* block,
                                           float z[4]) {
  // normal word s & 3 of counter (widx, s >> 2, 0, SUM_NOISE); one Philox call serves four samples
  if ((s >> 2) != *block) {
    *block = s >> 2;
    normal4(philox4x32(widx, s >> 2, 0, SUM_NOISE, k0, k1), z);
  }
  return pick(z, s & 3);
}

#define TILE_J 32
#define TILE_I 8

template <class Device>
__device__ __forceinline__ void pulsed_update_body(
    float* __restrict__ weights, float* __restrict__ params, long long n_weights, const float* __restrict__ consts,
    const uint32_t* __restrict__ wx, const uint32_t* __restrict__ wd, const int* __restrict__ counts,
    int use_counts, const int* __restrict__ bl, int batch, int out_size, int in_size, int nwords, uint32_t k0,
    uint32_t k1, const unsigned long long* __restrict__ ctr, int neg_lr, int summing, int ref_row, int persistent_row,
    float write_noise, long long* __restrict__ count_up, long long* __restrict__ count_down, int count_pulses,
    const int* __restrict__ snap_at, const int* __restrict__ snap_slot, float* __restrict__ snap_out,
    const int* __restrict__ flip_after, int use_snap, int only) {
  // Block = 32 inputs j x 8 outputs i, one weight per thread; the weight stays in a register across the
  // batch and the samples are applied in batch order (the order semantics of the NumPy reference). The
  // pulse words of a chunk of samples are staged in shared memory: each x word serves 8 weights, each d
  // word 32. Pulse counts come from the packed trains (wx, wd) or, for the deterministic pulse types,
  // from dense signed counts (batch, out, in) with positive = down.
  extern __shared__ uint32_t stage[];
  __shared__ uint32_t xmask[TILE_J], dmask[TILE_I];  // bit c: sample c of the chunk has a non-empty train
  const int chunk = max(1, 32 / nwords);
  uint32_t* sx = stage;                                // [chunk][nwords][TILE_J]
  uint32_t* sd = stage + chunk * nwords * TILE_J;      // [chunk][nwords][TILE_I]
  const int tx = threadIdx.x % TILE_J, ty = threadIdx.x / TILE_J;
  const int j0 = blockIdx.x * TILE_J, i0 = blockIdx.y * TILE_I;
  const int j = j0 + tx, i = i0 + ty;
  const bool inside = j < in_size && i < out_size;
  const long long widx = (long long)i * in_size + j;
  const ElementParams p{params + (inside ? widx : 0), n_weights};
  const float ref = inside && ref_row >= 0 ? params[ref_row * n_weights + widx] : 0.0f;
  float* target = persistent_row >= 0 ? params + persistent_row * n_weights + widx : weights + widx;
  float w = inside ? *target : 0.0f, visible = inside ? weights[widx] : 0.0f;
  const unsigned long long s0 = ctr[0];
  uint32_t block = 0xFFFFFFFFu;
  float zsum[4];
  long long ups = 0, downs = 0;
  const uint32_t wid = (uint32_t)widx;
  // Tiki-Taka transfers inside the batch (columns mode): column j is read after sample snap_at[j] (the
  // visible weight then goes to snap_out[snap_slot[j]][i]) and its input chopper flips after sample
  // flip_after[j] (the signs of its later coincidences invert)
  const int snap_b = use_snap && inside ? snap_at[j] : -1;
  const int flip_b = use_snap && inside ? flip_after[j] : batch;
  bool snapped = snap_b < 0;
  for (int c0 = 0; c0 < batch; c0 += chunk) {
    const int nc = min(chunk, batch - c0);
    uint32_t todo;  // samples of this chunk with coincidences possible at this weight, lowest first
    if (!use_counts) {
      __syncthreads();
      if (threadIdx.x < TILE_J) xmask[threadIdx.x] = 0u;
      if (threadIdx.x < TILE_I) dmask[threadIdx.x] = 0u;
      // thread (tx, ty) stages column j0 + tx of samples c = ty, ty + 8, ...; the first 8 * 32 threads stage
      // the d words (row i0 + t % 8 of sample t / 8); empty trains (no slot fired, or BL = 0) cannot
      // coincide, so each thread also marks the non-empty ones of what it staged
      uint32_t mine = 0u;
      for (int c = ty; c < nc; c += TILE_I) {
        uint32_t any = 0u;
        for (int k = 0; k < nwords; ++k) {
          const uint32_t v = j < in_size ? wx[((long long)(c0 + c) * nwords + k) * in_size + j] : 0u;
          sx[(c * nwords + k) * TILE_J + tx] = v;
          any |= v;
        }
        if (any & ~SIGN_BIT) mine |= 1u << c;
      }
      __syncthreads();
      if (mine) atomicOr(&xmask[tx], mine);
      if (threadIdx.x < nc * TILE_I) {
        const int c = threadIdx.x / TILE_I, ii = threadIdx.x % TILE_I;
        uint32_t any = 0u;
        for (int k = 0; k < nwords; ++k) {
          const uint32_t v = i0 + ii < out_size ? wd[((long long)(c0 + c) * nwords + k) * out_size + i0 + ii] : 0u;
          sd[(c * nwords + k) * TILE_I + ii] = v;
          any |= v;
        }
        if (any & ~SIGN_BIT) atomicOr(&dmask[ii], 1u << c);
      }
      __syncthreads();
      todo = xmask[tx] & dmask[ty];
    } else {
      todo = nc == 32 ? 0xFFFFFFFFu : (1u << nc) - 1u;
    }
    if (!inside) continue;
    while (todo) {
      const int c = __ffs(todo) - 1;
      todo &= todo - 1u;
      const int b = c0 + c;
      int n;
      bool up;
      if (use_counts) {
        const int cnt = counts[(long long)b * n_weights + widx];
        if (cnt == 0) continue;
        n = abs(cnt);
        up = cnt < 0;
      } else {
        const uint32_t x0 = sx[(c * nwords) * TILE_J + tx], d0 = sd[(c * nwords) * TILE_I + ty];
        n = __popc((x0 & d0) & ~SIGN_BIT);
        for (int k = 1; k < nwords; ++k) n += __popc(sx[(c * nwords + k) * TILE_J + tx] & sd[(c * nwords + k) * TILE_I + ty]);
        if (n == 0) continue;
        up = (((x0 ^ d0) >> 31) ^ (uint32_t)neg_lr) != 0u;
      }
      if (b > flip_b) up = !up;
      if (only) {  // one-sided unit cells: only the up (1) or the down (2) coincidences, each as up pulses
        if (up != (only == 1)) continue;
        up = true;
      }
      if (!snapped && b > snap_b) {
        snap_out[(long long)snap_slot[j] * out_size + i] = persistent_row >= 0 ? visible : w;
        snapped = true;
      }
      const uint32_t s = (uint32_t)(s0 + (unsigned long long)b);
      float g = ref_row >= 0 ? w + ref : w;
      if (summing) {
        g = Device::step_n(g, n, up, p, sum_noise(wid, s, k0, k1, &block, zsum), consts);
      } else {
        float z[4];
        for (int t = 0; t < n; ++t) {
          if ((t & 3) == 0) normal4(philox4x32(wid, s, t >> 2, PULSE_NOISE, k0, k1), z);
          g = Device::step(g, up, p, pick(z, t & 3), consts);
        }
      }
      w = ref_row >= 0 ? g - ref : g;
      if (persistent_row >= 0) visible = w + write_noise * normal_first(philox4x32(wid, s, 0, WRITE_NOISE, k0, k1));
      if (up) ups += n; else downs += n;
    }
  }
  if (!inside) return;
  if (!snapped) snap_out[(long long)snap_slot[j] * out_size + i] = persistent_row >= 0 ? visible : w;
  *target = w;
  weights[widx] = persistent_row >= 0 ? visible : w;
  if (count_pulses) {
    count_up[widx] += ups;
    count_down[widx] += downs;
  }
}

// the kernel, a template over the device struct: crossbar/cuda/kernels.py instantiates pulsed_update<xb::<step>> for
// every registered step function (NVRTC name expressions)
template <class D>
__global__ void __launch_bounds__(256, 4) pulsed_update(
    float* weights, float* params, long long n_weights, const float* consts, const uint32_t* wx, const uint32_t* wd,
    const int* counts, int use_counts, const int* bl, int batch, int out_size, int in_size, int nwords, uint32_t k0,
    uint32_t k1, const unsigned long long* ctr, int neg_lr, int summing, int ref_row, int persistent_row,
    float write_noise, long long* count_up, long long* count_down, int count_pulses, const int* snap_at,
    const int* snap_slot, float* snap_out, const int* flip_after, int use_snap, int only) {
  pulsed_update_body<D>(weights, params, n_weights, consts, wx, wd, counts, use_counts, bl, batch, out_size, in_size,
                        nwords, k0, k1, ctr, neg_lr, summing, ref_row, persistent_row, write_noise, count_up,
                        count_down, count_pulses, snap_at, snap_slot, snap_out, flip_after, use_snap, only);
}
