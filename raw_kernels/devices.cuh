// Device update rules: the CUDA twins of the pure step functions in crossbar/physics/devices/*.py.
//
// Each device is a struct (in namespace xb, named as its Python step function) with
//   step(w, up, p, xi, c)        one pulse on weight w (device space), clipped to the element bounds
//   step_n(w, n, up, p, xi, c)   n same-sign pulses in closed form (summing devices; the others inherit
//                                no_summing's, never called)
// pulses.cu instantiates its pulsed_update kernel template once per registered step function (a model defined
// outside this file brings its struct as text: crossbar.physics.devices.base.register_step).
// p points at the element's parameters, strided by `stride` floats: p[0] max_bound, p[S] min_bound,
// p[2S] dwmin_up, p[3S] dwmin_down, p[4S...] the device's extra_names in order. c holds the tile-wide
// constants in the order of the Python device's scalars(), named by the struct's enum Const (the same names, in the
// same order: tests/unit/test_device_registry.py checks it). Every expression mirrors the NumPy one
// operation by operation (compiled without FMA contraction).
#pragma once

namespace xb {

struct ElementParams {
  const float* p;
  long long stride;
  __device__ __forceinline__ float operator[](int k) const { return p[k * stride]; }
};

enum { MAXB = 0, MINB = 1, DUP = 2, DDN = 3, EX0 = 4, EX1 = 5, EX2 = 6 };

__device__ __forceinline__ float clip_bounds(float w, const ElementParams& p) {
  return fminf(fmaxf(w, p[MINB]), p[MAXB]);
}

__device__ __forceinline__ float signed_step(bool up, const ElementParams& p) { return up ? p[DUP] : -p[DDN]; }

struct no_summing {
  // devices whose pulses are applied one at a time (Python: summing() is False)
  __device__ static float step_n(float w, int, bool, const ElementParams&, float, const float*) { return w; }
};

struct constant_step {
  enum Const { dw_min_std };
  __device__ static float step(float w, bool up, const ElementParams& p, float xi, const float* c) {
    return clip_bounds(w + signed_step(up, p) * (1.0f + c[dw_min_std] * xi), p);
  }
  __device__ static float step_n(float w, int n, bool up, const ElementParams& p, float xi, const float* c) {
    const float nf = (float)n;
    return clip_bounds(w + signed_step(up, p) * (nf + c[dw_min_std] * sqrtf(nf) * xi), p);
  }
};

struct linear_step : no_summing {
  enum Const { dw_min_std, mult_noise };  // extras: slope_up, slope_down
  __device__ static float step(float w, bool up, const ElementParams& p, float xi, const float* c) {
    const float a = up ? p[EX0] : p[EX1];
    const float dlt = up ? p[DUP] : p[DDN];
    const float noise = 1.0f + c[dw_min_std] * xi;
    const float dw = c[mult_noise] != 0.0f ? (a * w + dlt) * noise : a * w + dlt * noise;
    return clip_bounds(up ? w + dw : w - dw, p);
  }
};

struct soft_bounds_reference_step : no_summing {
  enum Const { dw_min_std, mult_noise };  // extras: reference (applied by the caller: the rule acts on g = w + ref)
  __device__ static float step(float g, bool up, const ElementParams& p, float xi, const float* c) {
    const float b = up ? p[MAXB] : p[MINB];
    const float dlt = up ? p[DUP] : p[DDN];
    const float ratio = (up ? b > 0.0f : b < 0.0f) ? g / b : 0.0f;
    const float sxi = c[dw_min_std] * xi;
    const float dw = c[mult_noise] != 0.0f ? dlt * (1.0f - ratio) * (1.0f + sxi) : dlt * (1.0f - ratio + sxi);
    return clip_bounds(up ? g + dw : g - dw, p);
  }
};

struct exp_step : no_summing {
  enum Const { dw_min_std, A_up, A_down, gamma_up, gamma_down, two_a, b, dw_min_std_add, dw_min_std_slope,
               complex_noise };
  __device__ static float step(float w, bool up, const ElementParams& p, float xi, const float* c) {
    const float span = p[MAXB] - p[MINB];
    const float z = span > 0.0f ? c[two_a] * w / span + c[b] : c[b];
    const float y = up ? 1.0f - c[A_up] * expf(c[gamma_up] * z) : 1.0f - c[A_down] * expf(-c[gamma_down] * z);
    const float dw = fmaxf(y, 0.0f) * (up ? p[DUP] : -p[DDN]);
    if (c[complex_noise] != 0.0f) {
      const float sigma = c[dw_min_std] * (fabsf(dw) + c[dw_min_std_add] + c[dw_min_std_slope] * fabsf(w));
      return clip_bounds(w + dw + sigma * xi, p);
    }
    return clip_bounds(w + dw * (1.0f + c[dw_min_std] * xi), p);
  }
};

struct pow_step : no_summing {
  enum Const { dw_min_std };  // extras: gamma_up, gamma_down (PowStepReference adds reference, applied by the caller)
  __device__ static float step(float w, bool up, const ElementParams& p, float xi, const float* c) {
    const float span = p[MAXB] - p[MINB];
    const float safe = span > 0.0f ? span : 1.0f;
    const float base = (up ? p[MAXB] - w : w - p[MINB]) / safe;
    const float gamma = up ? p[EX0] : p[EX1];
    const float mag = (up ? p[DUP] : p[DDN]) * powf(fmaxf(base, 0.0f), gamma);
    const float dw = mag * (1.0f + c[dw_min_std] * xi);
    return clip_bounds(span > 0.0f ? (up ? w + dw : w - dw) : w, p);
  }
};

struct piecewise_step : no_summing {
  // an array constant is its length, then its values: c = [dw_min_std, n, nodes_up[n], n, nodes_down[n]]
  enum Const { dw_min_std, nodes_up };
  __device__ static float step(float w, bool up, const ElementParams& p, float xi, const float* c) {
    const int n = (int)c[nodes_up];
    const float* nodes = up ? c + nodes_up + 1 : c + nodes_up + 2 + n;
    const int sections = n - 1;
    const float span = p[MAXB] - p[MINB];
    float v = nodes[0];
    if (sections > 0 && span > 0.0f) {
      const float q = fmaxf((w - p[MINB]) / span * (float)sections, 0.0f);
      const int k = (int)fminf(floorf(q), (float)(sections - 1));
      const float t = fminf(q - (float)k, 1.0f);
      v = (1.0f - t) * nodes[k] + t * nodes[min(k + 1, sections)];
    }
    const float dw = v * (up ? p[DUP] : -p[DDN]) * (1.0f + c[dw_min_std] * xi);
    return clip_bounds(w + dw, p);
  }
};

}  // namespace xb
