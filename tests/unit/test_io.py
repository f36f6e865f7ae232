"""Tests of crossbar.physics.io: the analog MVM with IO non-idealities.

Statistical checks use fixed keys (so they are deterministic) and sample sizes chosen so that, for a fresh
key, a correct implementation would fail with probability far below 1e-6 (the margin is stated per test).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossbar.physics import io, rng
from crossbar.config import IOParameters
from crossbar.physics.devices.base import d2d_normal

F32 = np.float32
KEY = rng.seed_key(1234, 7)
D2D = rng.seed_key(99, 1)


def quiet(**kw):
    """IO with every non-ideality off unless named: no noise, no quantisation, no NM/BM, unbounded."""
    base = {"out_noise": 0.0, "inp_res": -1, "out_res": -1, "noise_management": "none", "bound_management": "none",
            "out_bound": 0.0, "inp_bound": 1.0}
    base.update(kw)
    return IOParameters(**base)


def rand(seed, shape, lo=-1.0, hi=1.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(F32)


# ---- ideal path and argument checks ---------------------------------------------------------------

def test_is_perfect_is_exact_gemm_with_out_scale():
    w, x, d = rand(0, (12, 20)), rand(1, (5, 20)), rand(2, (5, 12))
    cfg = IOParameters(is_perfect=True, out_scale=2.5, out_noise=0.3)
    y = io.mvm(w, x, cfg, KEY, 0)
    assert y.dtype == F32 and np.array_equal(y, cfg.out_scale * (x @ w.T))
    z = io.mvm(w, d, cfg, KEY, 0, transposed=True)
    assert np.array_equal(z, cfg.out_scale * (d @ w))


def test_shape_mismatch_raises():
    w = rand(0, (4, 6))
    with pytest.raises(ValueError):
        io.mvm(w, rand(1, (3, 4)), IOParameters(), KEY, 0)
    with pytest.raises(ValueError):
        io.mvm(w, rand(1, (3, 6)), IOParameters(), KEY, 0, transposed=True)
    with pytest.raises(ValueError):
        io.mvm(w, rand(1, (6,)), IOParameters(), KEY, 0)


# ---- quantisation and bounds ----------------------------------------------------------------------

def test_quant_step_mapping():
    assert io.quant_step(1 / 126, 1.0) == pytest.approx(2 / 126)
    assert io.quant_step(126, 1.0) == pytest.approx(2 / 126)
    assert io.quant_step(1 / 510, 12.0) == pytest.approx(24 / 510)
    assert io.quant_step(0, 1.0) == 0.0 and io.quant_step(-1, 1.0) == 0.0 and io.quant_step(0.1, 0.0) == 0.0


def test_dac_levels_identity_crossbar():
    # W = I makes the output the prepared input itself (exact in float32)
    n = 64
    x = rand(3, (32, n), -1.7, 1.7)  # beyond inp_bound: also tests the clip after the DAC
    cfg = quiet(inp_res=1 / 126)
    y = io.mvm(np.eye(n, dtype=F32), x, cfg, KEY, 0)
    step = F32(2 / 126)
    expected = np.clip(step * np.rint(x / step), -1, 1)
    assert np.array_equal(y, expected)
    k = y / step
    assert np.allclose(k, np.rint(k), atol=1e-4) and np.abs(y).max() == 1.0
    assert len(np.unique(y)) > 50  # many distinct levels, so the check above is not vacuous


def test_dac_stochastic_rounding_is_unbiased_between_neighbours():
    n, batch, v = 8, 4096, 0.3
    x = np.full((batch, n), v, F32)
    y = io.mvm(np.eye(n, dtype=F32), x, quiet(inp_res=1 / 126, inp_sto_round=True), KEY, 0)
    step = 2 / 126
    lo, hi = np.floor(v / step) * step, np.ceil(v / step) * step
    assert set(np.unique(np.round(y / step))) == {round(lo / step), round(hi / step)}
    # each value has variance <= step^2/4: the mean of 32768 has std <= 4.4e-5; 5e-4 is 11 sigma
    assert abs(y.mean() - v) < 5e-4


def test_adc_outputs_are_multiples_of_the_step():
    w, x = rand(4, (48, 96), -0.6, 0.6), rand(5, (40, 96))
    # NM off, out_scale 1: the returned values are the ADC values themselves
    cfg = quiet(out_res=1 / 510, out_bound=12.0, inp_res=1 / 126)
    y = io.mvm(w, x, cfg, KEY, 0)
    step = F32(24 / 510)
    assert np.array_equal(y, step * np.rint(y / step)) and len(np.unique(y)) > 50
    # with NM and out_scale, y / (alpha out_scale) are ADC levels up to the float32 rescale
    cfg = IOParameters(out_noise=0.0, out_scale=1.7, bound_management="none")
    y = io.mvm(w, x, cfg, KEY, 0)
    k = y / (np.abs(x).max(1, keepdims=True) * F32(1.7) * step)
    assert np.abs(k - np.rint(k)).max() < 1e-3


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16), out_bound=st.floats(0.5, 20), out_scale=st.floats(0.1, 5),
       out_noise=st.floats(0, 0.5), nm=st.sampled_from(["abs_max", "max", "constant", "none"]),
       bm=st.sampled_from(["none", "iterative"]), spread=st.floats(0.1, 10))
def test_outputs_within_scaled_out_bound(seed, out_bound, out_scale, out_noise, nm, bm, spread):
    w, x = rand(seed, (16, 32), -0.6, 0.6), rand(seed + 1, (8, 32), -spread, spread)
    cfg = IOParameters(out_bound=out_bound, out_scale=out_scale, out_noise=out_noise, noise_management=nm,
                       bound_management=bm, nm_thres=0.0)
    y = io.mvm(w, x, cfg, KEY, seed)
    alpha = {"abs_max": np.abs(x).max(1), "max": x.max(1), "constant": np.ones(8),
             "none": np.ones(8)}[nm]
    alpha = np.where(alpha > 0, alpha, 1.0)
    factor = 1 if bm == "none" else 16  # BM factors 1..16 with the default inp_res (0.25 / (2/126) = 15.75)
    assert np.all(np.abs(y) <= (out_bound * alpha * out_scale * factor * (1 + 1e-5))[:, None])


# ---- noise ----------------------------------------------------------------------------------------

def test_output_noise_std():
    # W = 0 and max|x| = 1 leave y = sigma xi. N = 512 * 256 = 131072 draws: the sample std has relative
    # std 1/sqrt(2N) = 0.2%, so the 5% band is 25 sigma away (false-failure rate << 1e-9).
    batch, out = 512, 256
    x = rand(6, (batch, 32))
    x[:, 0] = 1.0
    cfg = IOParameters(out_noise=0.06, out_res=-1, bound_management="none")
    y = io.mvm(np.zeros((out, 32), F32), x, cfg, KEY, 0)
    assert abs(y.std() / 0.06 - 1) < 0.05 and abs(y.mean()) < 0.06 * 6 / np.sqrt(y.size)


def test_per_line_output_noise_spread():
    out, batch = 64, 4096
    cfg = IOParameters(out_noise=0.1, out_noise_std=0.5, out_res=-1, bound_management="none")
    state = io.sample_io_state(cfg, out, D2D)
    sigma = state["out_noise_values"]
    assert sigma.std() / sigma.mean() > 0.2  # the spread is real
    x = np.ones((batch, 8), F32)
    y = io.mvm(np.zeros((out, 8), F32), x, cfg, KEY, 0, state=state)
    # per line 4096 draws: relative std of the std 1.1%; 8% is 7 sigma for each of 64 lines
    assert np.all(np.abs(y.std(0) / sigma - 1) < 0.08)


def test_weight_noise_additive_constant():
    # y_b = w_noise ||x'_b||_2 xi: row norms spread over 10x, so a wrong norm (L1, max) breaks the pooled
    # std. 256 * 256 draws: relative std 0.28%, the 5% band is 18 sigma.
    batch, out, n = 256, 256, 100
    x = rand(7, (batch, n)) * np.linspace(0.1, 1.0, batch, dtype=F32)[:, None]
    cfg = quiet(w_noise=0.03, w_noise_type="additive_constant")
    y = io.mvm(np.zeros((out, n), F32), x, cfg, KEY, 0)
    z = y / (0.03 * np.linalg.norm(x.astype(np.float64), axis=1))[:, None]
    assert abs(z.std() - 1) < 0.05


def test_weight_noise_pcm_read():
    batch, out, n = 1024, 16, 50
    w, x = rand(8, (out, n), -0.6, 0.6), rand(9, (batch, n))
    cfg = quiet(w_noise=0.02, w_noise_type="pcm_read")
    noise = io.mvm(w, x, cfg, KEY, 0) - x @ w.T
    std = 0.02 * np.sqrt((x.astype(np.float64) ** 2) @ np.abs(w.T))
    assert abs((noise / std).std() - 1) < 0.05  # 16384 draws: 0.55% relative std, 9 sigma


def test_input_noise_passes_through():
    n, batch = 16, 2048
    cfg = quiet(inp_noise=0.05)
    y = io.mvm(np.eye(n, dtype=F32), np.zeros((batch, n), F32), cfg, KEY, 0)
    assert abs(y.std() / 0.05 - 1) < 0.05  # 32768 draws: 0.4% relative std


# ---- management ---------------------------------------------------------------------------------

@pytest.mark.parametrize("sign", [1, -1])
def test_iterative_bound_management_removes_saturation(sign):
    w = np.full((8, 64), 0.5 * sign, F32)
    x = rand(10, (16, 64), 0.0, 1.0)
    exact = x @ w.T  # about 16 per output with max|x| ~ 1: beyond out_bound 12
    y_none = io.mvm(w, x, IOParameters(bound_management="none"), KEY, 0)
    alpha = np.abs(x).max(1, keepdims=True)
    assert np.all(np.isclose(y_none, 12 * sign * alpha))  # every output saturated
    assert np.all(np.abs(y_none - exact) > 2 * alpha)  # clipping costs far more than noise
    y_bm = io.mvm(w, x, IOParameters(bound_management="iterative"), KEY, 0)
    assert not np.any(np.isclose(np.abs(y_bm), 12 * alpha))  # no output sits at the clip level
    # error budget: 2 x (out_noise 0.06 * 4 sigma + half an ADC step) in units of alpha
    assert np.all(np.abs(y_bm - exact) < 2 * (0.24 + 24 / 510 / 2) * alpha)


def test_bound_management_can_ignore_the_negative_bound():
    w, x = np.full((8, 64), -0.5, F32), rand(10, (16, 64), 0.0, 1.0)
    y = io.mvm(w, x, IOParameters(bm_test_negative_bound=False), KEY, 0)
    assert np.all(np.isclose(y, -12 * np.abs(x).max(1, keepdims=True)))  # still clipped: no BM round


def test_iterative_worst_case_also_resolves_saturation():
    w = np.full((8, 64), 0.5, F32)
    x = rand(10, (16, 64), 0.0, 1.0)
    y = io.mvm(w, x, IOParameters(bound_management="iterative_worst_case"), KEY, 0)
    assert np.all(np.abs(y - x @ w.T) < 0.05 * np.abs(x @ w.T))


def _identity_with_nm(x, **kw):
    cfg = quiet(**kw)
    return io.mvm(np.eye(x.shape[1], dtype=F32), x, cfg, KEY, 0, state=io.sample_io_state(cfg, x.shape[1], None))


@pytest.mark.parametrize("nm, thres", [("none", 0.0), ("abs_max", 0.0), ("abs_max", 1.5), ("max", 0.0),
                                       ("max", 1.0), ("constant", 0.0), ("constant", 2.0)])
def test_noise_management_scales(nm, thres):
    # W = I without noise or quantisation: y = alpha * clip(x / alpha, +-1) reveals alpha per sample
    x = rand(11, (20, 16), -3, 3)
    x[0, :] = -np.abs(x[0])  # all negative: MAX gives alpha <= 0, hence an exactly zero row
    y = _identity_with_nm(x, noise_management=nm, nm_thres=thres)
    amax, mx = np.abs(x).max(1), x.max(1)
    alpha = {"none": np.ones(20), "abs_max": amax, "max": mx, "constant": np.full(20, thres or 1.0)}[nm]
    if thres > 0 and nm in ("abs_max", "max"):
        alpha = np.minimum(alpha, thres)
    expected = alpha[:, None] * np.clip(x / np.where(alpha > 0, alpha, 1)[:, None], -1, 1)
    if nm != "none":
        expected[alpha <= 0] = 0.0
    assert np.allclose(y, expected, rtol=1e-6, atol=1e-6)
    if nm == "max":
        assert np.all(y[0] == 0)


def test_noise_management_abs_max_np_sum():
    x = rand(12, (20, 16), -1, 1)
    cfg = {"noise_management": "abs_max_np_sum", "nm_assumed_wmax": 0.6, "inp_res": -1}
    y = _identity_with_nm(x, out_bound=2.0, **cfg)
    total = np.maximum(np.maximum(x, 0).sum(1), -np.minimum(x, 0).sum(1))
    alpha = np.maximum(np.abs(x).max(1), total * 0.6 / 2.0)
    assert np.all(alpha > np.abs(x).max(1))  # the sum term is active, so the test sees it
    assert np.allclose(y, alpha[:, None] * np.clip(x / alpha[:, None], -1, 1), rtol=1e-6, atol=1e-6)


def test_noise_management_average_abs_max_running_state():
    cfg = quiet(noise_management="average_abs_max", nm_decay=0.25, out_bound=100.0)
    state = io.sample_io_state(cfg, 16, None)
    x1, x2 = rand(13, (10, 16), -2, 2), rand(14, (10, 16), -0.5, 0.5)
    eye = np.eye(16, dtype=F32)
    y1 = io.mvm(eye, x1, cfg, KEY, 0, state=state)
    a1 = np.abs(x1).max(1).mean()
    assert float(state["nm_alpha"]) == pytest.approx(a1, rel=1e-6)
    assert np.allclose(y1, a1 * np.clip(x1 / a1, -1, 1), rtol=1e-5, atol=1e-6)
    io.mvm(eye, x2, cfg, KEY, 10, state=state)
    a2 = a1 * 0.75 + 0.25 * np.abs(x2).max(1).mean()
    assert float(state["nm_alpha"]) == pytest.approx(a2, rel=1e-6)


def test_zero_input_gives_exact_zeros():
    w, x = rand(15, (32, 24)), rand(16, (6, 24))
    x[[1, 4]] = 0.0
    y = io.mvm(w, x, IOParameters(), KEY, 0)  # default: ABS_MAX, out_noise 0.06
    assert np.all(y[[1, 4]] == 0) and np.all(np.any(y[[0, 2, 3, 5]] != 0, axis=1))
    # with input noise the zero input still drives the crossbar
    y = io.mvm(w, x, IOParameters(inp_noise=0.1), KEY, 0)
    assert np.any(y[1] != 0)


# ---- randomness: reproducibility, naming, batch independence ---------------------------------------

def test_same_key_and_sample0_reproduce_different_sample0_differs():
    w, x = rand(17, (32, 40)), rand(18, (8, 40))
    cfg = IOParameters(inp_noise=0.02, w_noise=0.01, w_noise_type="additive_constant", inp_sto_round=True)
    a, b = io.mvm(w, x, cfg, KEY, 100), io.mvm(w, x, cfg, KEY, 100)
    assert np.array_equal(a, b)
    c = io.mvm(w, x, cfg, KEY, 101)
    assert np.mean(a != c) > 0.5
    assert np.mean(a != io.mvm(w, x, cfg, rng.seed_key(1235, 7), 100)) > 0.5


def test_rng_naming_rounds_and_direction():
    batch, out, n = 6, 16, 8
    x, s0 = rand(19, (batch, n)), 1000
    z = lambda c2: rng.normal_rows(KEY, rng.Stream.OUT_NOISE, batch, out, s0, c2)
    # forward round 0 is c2 = 0; the backward pass is c2 = 1
    cfg = quiet(out_noise=0.5)
    assert np.array_equal(io.mvm(np.zeros((out, n), F32), x, cfg, KEY, s0), F32(0.5) * z(0))
    assert np.array_equal(io.mvm(np.zeros((n, out), F32), x, cfg, KEY, s0, transposed=True),
                          F32(0.5) * z(1))
    # huge noise exceeds out_bound in every round: every sample ends in round 4 (factor 16), c2 = 8
    cfg = IOParameters(out_noise=100.0, out_bound=1.0, out_res=-1, noise_management="none")
    y = io.mvm(np.zeros((out, n), F32), x, cfg, KEY, s0)
    assert np.array_equal(y, np.clip(F32(100) * z(8), -1, 1) * F32(16))
    # IterativeWorstCase: factors 1, 1 (NP-sum alpha, not applied with NM none), 2, 4, 8, 16: round 5
    y = io.mvm(np.zeros((out, n), F32), x, cfg.replace(bound_management="iterative_worst_case"), KEY, s0)
    assert np.array_equal(y, np.clip(F32(100) * z(10), -1, 1) * F32(16))


@pytest.mark.parametrize("nm", ["none", "abs_max"])
def test_sample_output_independent_of_batch(nm):
    # dyadic inputs (step 1/64, abs max a power of 2) and weights (multiples of 1/16) make every GEMM exact,
    # so rows computed in a batch and alone must agree bit for bit
    batch, out, n, s0 = 12, 10, 128, 5000
    r = np.random.default_rng(20)
    w = (r.integers(-2, 9, (out, n)) / 16).astype(F32)
    x = (r.integers(-16, 65, (batch, n)) / 64).astype(F32)
    x[: batch // 2, 1:] *= F32(0.25)  # half the batch small: those samples pass in the first round
    x[:, 0] = 1.0
    x *= (2.0 ** r.integers(-1, 2, batch)).astype(F32)[:, None]  # max|x| = x[:, 0], a power of 2
    cfg = IOParameters(noise_management=nm, bound_management="iterative", inp_res=128, inp_sto_round=True,
                       out_sto_round=True)
    y = io.mvm(w, x, cfg, KEY, s0)
    y_none = io.mvm(w, x, cfg.replace(bound_management="none"), KEY, s0)
    sat = np.any(np.abs(y_none) >= 12 * (np.abs(x).max(1, keepdims=True) if nm == "abs_max" else 1), 1)
    assert 0 < sat.sum() < batch  # some samples needed BM rounds, some did not
    assert not np.array_equal(y[sat], y_none[sat]) and np.array_equal(y[~sat], y_none[~sat])
    for b in range(batch):
        assert np.array_equal(io.mvm(w, x[b:b + 1], cfg, KEY, s0 + b)[0], y[b]), b


# ---- deterministic non-idealities against float64 formulas ------------------------------------------

def _reference(w, x, cfg, state):
    """The MVM of the ``crossbar.physics.io`` docstring in float64 for NM/BM off, no noise and no quantisation."""
    w, x = w.astype(np.float64), x.astype(np.float64)
    xs = np.clip(x, -cfg.inp_bound, cfg.inp_bound)
    xs = np.where(xs < 0, xs * (1 - cfg.inp_asymmetry), xs)
    y = xs @ w.T
    n = w.shape[1]
    if cfg.ir_drop > 0:
        a = n / cfg.ir_drop_g_ratio * (np.abs(xs) @ np.abs(w).T)
        c = a * (a * (0.05 * a - 0.2) + 0.5)
        ramp = 1 - (1 - np.arange(n) / n) ** 2
        y = y - cfg.ir_drop * c * ((xs * ramp) @ w.T)
    if cfg.v_offset_std > 0 or cfg.r_series > 0:
        v = state.get("v_offset", np.zeros(w.shape[0])).astype(np.float64)
        rs = cfg.r_series
        if cfg.v_offset_w_min == 0:
            y = (1 - v) * y / (1 + rs * np.abs(y))
        else:
            y_ref = -cfg.v_offset_w_min * xs.sum(1, keepdims=True)
            y = (1 - v) * (y + y_ref) / (1 + rs * np.abs(y + y_ref)) - (1 + v) * y_ref / (1 + rs * np.abs(y_ref))
    if cfg.out_nonlinearity > 0 or cfg.r_series > 0:
        nl = state.get("out_nonlinearity", np.zeros(w.shape[0])).astype(np.float64)
        y = float(state["out_nonlinearity_factor"]) * y / (1 + np.abs(nl * y))
    y = np.where(y < 0, y * (1 - cfg.out_asymmetry), y)
    return np.clip(y, -cfg.out_bound, cfg.out_bound) if cfg.out_bound > 0 else y


@pytest.mark.parametrize("kw", [
    {"inp_asymmetry": 0.2}, {"out_asymmetry": 0.3}, {"ir_drop": 1.0, "ir_drop_g_ratio": 2e4},
    {"v_offset_std": 0.1, "v_offset_w_min": 0.0}, {"v_offset_std": 0.1, "v_offset_w_min": -1.0},
    {"r_series": 0.05, "v_offset_w_min": 0.0}, {"r_series": 0.05, "v_offset_std": 0.1, "v_offset_w_min": -1.0},
    {"out_nonlinearity": 0.5, "out_nonlinearity_std": 0.2, "out_bound": 12.0},
    {"out_nonlinearity": 0.5, "out_nonlinearity_std": 0.2, "slope_calibration": 0.5, "out_bound": 12.0},
    {"r_series": 0.05, "slope_calibration": 0.5, "out_bound": 12.0, "v_offset_w_min": 0.0},
])
def test_deterministic_nonidealities_match_formulas(kw):
    w, x = rand(21, (24, 48), -0.6, 0.6), rand(22, (10, 48), -1.2, 1.2)
    cfg = quiet(**kw)
    state = io.sample_io_state(cfg, 24, D2D)
    y = io.mvm(w, x, cfg, KEY, 0, state=state)
    ref = _reference(w, x, cfg, state)
    assert np.allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert not np.allclose(y, np.clip(x, -1, 1) @ w.T, rtol=1e-3, atol=1e-3)  # the effect is visible


def test_ir_drop_reduces_output_for_positive_w_and_x():
    w, x = rand(23, (32, 512), 0.1, 0.6), rand(24, (16, 512), 0.0, 1.0)
    y0 = io.mvm(w, x, quiet(), KEY, 0)
    cfg = quiet(ir_drop=1.0)  # default g ratio: a_i ~ 0.08, a few percent
    y = io.mvm(w, x, cfg, KEY, 0)
    assert np.all(y < y0) and np.all(y > 0.8 * y0)
    assert np.allclose(y, _reference(w, x, cfg, {}), rtol=1e-5)


def test_transposed_uses_w_transpose_and_ignores_bm():
    w, d = rand(25, (16, 64), -0.6, 0.6), rand(26, (8, 16))
    z = io.mvm(w, d, quiet(), KEY, 0, transposed=True)
    assert z.shape == (8, 64) and np.allclose(z, d @ w, rtol=1e-6, atol=1e-6)
    cfg = IOParameters(out_bound=0.5, out_noise=0.0, bound_management="iterative", inp_res=-1)
    alpha = np.abs(d).max(1, keepdims=True)
    z = io.mvm(w, d, cfg, KEY, 0, transposed=True)
    assert np.any(np.isclose(np.abs(z), 0.5 * alpha)) and np.all(np.abs(z) <= 0.5 * alpha * (1 + 1e-6))
    # the same product as a forward pass through W^T uses BM and is not clipped
    y = io.mvm(np.ascontiguousarray(w.T), d, cfg, KEY, 0)
    assert np.abs(y).max() > 0.5 * alpha.max() * 1.5
    assert np.allclose(y, d @ w, atol=0.1 * alpha.max())


# ---- per-line state -----------------------------------------------------------------------------

def test_sample_io_state_formulas_and_directions():
    cfg = IOParameters(out_noise=0.06, out_noise_std=0.3, out_nonlinearity=0.4, out_nonlinearity_std=0.1,
                       v_offset_std=0.05, slope_calibration=0.5, r_series=0.01, out_bound=10.0)
    st = io.sample_io_state(cfg, 40, D2D)
    xi = lambda name: d2d_normal(D2D, name, (40,))
    assert np.array_equal(st["out_noise_values"], np.abs(0.06 * (1 + 0.3 * xi("io_out_noise"))).astype(F32))
    n = np.abs(0.4 / 10.0 * (1 + 0.1 * xi("io_out_nonlinearity"))).astype(F32)
    assert np.array_equal(st["out_nonlinearity"], n)
    assert np.array_equal(st["v_offset"], np.maximum(0.05 * xi("io_v_offset"), 0).astype(F32))
    f = 1 + (n.astype(np.float64).mean() + 0.01) * 0.5 * 10.0
    assert st["out_nonlinearity_factor"] == pytest.approx(f * f, rel=1e-6)
    assert all(v.dtype == F32 and v.shape == (40,) for k, v in st.items() if isinstance(v, np.ndarray))
    assert st["nm_alpha"] is None
    again, bwd = io.sample_io_state(cfg, 40, D2D), io.sample_io_state(cfg, 40, D2D, transposed=True)
    assert np.array_equal(again["out_noise_values"], st["out_noise_values"])
    assert not np.array_equal(bwd["out_noise_values"], st["out_noise_values"])
    with pytest.raises(ValueError):
        io.sample_io_state(cfg, 40, None)
    assert set(io.sample_io_state(IOParameters(), 40, None)) == {"nm_alpha", "out_nonlinearity_factor"}


def test_bound_management_schedule():
    from crossbar.config import BoundManagement
    from crossbar.physics.io import bm_schedule
    # default: 7-bit DAC (step 2/126), max_bm_res 0.25 -> factors up to the first above 0.25 / step = 15.75
    assert bm_schedule(IOParameters(), transposed=False) == [(1.0, False), (2.0, False), (4.0, False), (8.0, False),
                                                             (16.0, False)]
    assert bm_schedule(IOParameters(), transposed=True) == [(1.0, False)]  # no BM backward
    assert bm_schedule(IOParameters(out_bound=0), transposed=False) == [(1.0, False)]
    assert bm_schedule(IOParameters(inp_res=-1, max_bm_factor=3), transposed=False) == [(1.0, False), (2.0, False),
                                                                                       (4.0, False)]
    worst = IOParameters(bound_management=BoundManagement.ITERATIVE_WORST_CASE, max_bm_factor=2, inp_res=-1)
    assert bm_schedule(worst, transposed=False) == [(1.0, False), (1.0, True), (2.0, True), (4.0, True)]
