"""MVM behaviours that mutation testing (mutmut, ``crossbar/physics/io.py``) found unpinned.

Expectations are written from the model in ``crossbar/physics/io.py``'s module docstring (the aihwkit 1.1 MVM pipeline),
computed here in float64 by hand; each test names the mutant(s) it kills.
"""

import numpy as np
import pytest

from crossbar import IOParameters
from crossbar.physics import rng
from crossbar.physics.io import mvm, quant_step, read_vectors, sample_io_state

F32 = np.float32
#: every effect off: no noise, no quantisation, no noise or bound management, unbounded output
QUIET = dict(out_noise=0.0, inp_res=-1, out_res=-1, noise_management="none", bound_management="none",
             out_bound=0.0)
KEY = rng.seed_key(5, 2)


def _inputs(out_size=4, in_size=6, batch=3):
    w = rng.uniform_array(rng.seed_key(9), 0, (out_size, in_size)) * F32(0.8) - F32(0.4)
    x = rng.uniform_array(rng.seed_key(9), 1, (batch, in_size)) * F32(1.6) - F32(0.8)
    return w.astype(F32), x.astype(F32)


@pytest.mark.parametrize("inp_res,inp_bound,dac_one", [
    (-1, 1.0, 1.0),   # no DAC quantisation: a one-hot read returns the stored vector (kills v = None, step >= 0)
    (0.15, 1.0, 0.9),  # step 0.15 * 2 * 1 = 0.3: q(1) = 0.3 rint(3.33) = 0.9 (kills step > 1, clip at +bound)
    (-1, 0.5, 0.5),   # the DAC clips the driven 1 to inp_bound = 0.5 (kills the upper clip -> None)
])
def test_transfer_read_is_the_stored_vector_times_the_dac_of_one(inp_res, inp_bound, dac_one):
    # read_vectors: the MVM of a one-hot input; the driven line carries DAC(1) = clip(q_in(1), +-inp_bound)
    cfg = IOParameters(**{**QUIET, "inp_res": inp_res, "inp_bound": inp_bound})
    v = rng.normal_array(rng.seed_key(3), 0, (5, 7)).astype(F32)
    got = read_vectors(v, cfg, KEY, 0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, dac_one * v.astype(np.float64), rtol=1e-6, atol=1e-7)


def test_ir_drop_output_is_float32():
    # mvm returns float32 (docstring); the IR-drop ramp must not promote the output to float64
    w, x = _inputs()
    y = mvm(w, x, IOParameters(**QUIET, ir_drop=1.0, ir_drop_g_ratio=2.0), KEY, 0)
    assert y.dtype == np.float32  # kills arange(n, dtype=float32) -> arange(n) (int64 ramp)
    assert not np.allclose(y, x @ w.T, rtol=1e-4)  # and the effect is on


def test_float64_per_line_state_still_gives_a_float32_output():
    # a per-line state restored from a float64 source (e.g. a checkpoint) is cast to float32 by the MVM
    cfg = IOParameters(**{**QUIET, "out_noise": 0.1, "out_noise_std": 0.3})
    w, x = _inputs()
    state = sample_io_state(cfg, w.shape[0], KEY)
    y32 = mvm(w, x, cfg, KEY, 0, state=dict(state))
    state64 = dict(state, out_noise_values=state["out_noise_values"].astype(np.float64))
    y64 = mvm(w, x, cfg, KEY, 0, state=state64)
    assert y64.dtype == np.float32  # kills _line's asarray(v, dtype=float32) -> asarray(v)
    np.testing.assert_array_equal(y64, y32)


def _offset_reference(y, xsum, v, rs, w_ref):
    """Line i reads ``f_{v_i}(y_i + y_ref) - f_{-v_i}(y_ref)`` with the implicit reference
    column of weight ``w_ref`` (``y_ref = -w_ref sum_j x_j``; none when ``w_ref = 0``) and
    ``f_v(z) = (1 - v) z / (1 + rs |z|)``."""
    y_ref = -w_ref * xsum[:, None]
    f = lambda z, vv: (1 - vv) * z / (1 + rs * np.abs(z))  # noqa: E731
    return f(y + y_ref, v) - f(y_ref, -v) if w_ref != 0 else f(y, v)


@pytest.mark.parametrize("w_ref,rs", [(0.0, 0.5), (1.0, 0.0), (1.0, 0.3), (-1.0, 0.3)])
def test_voltage_offsets_and_series_resistance(w_ref, rs):
    # kills (1 - v) -> (1 + v) in the no-reference branch, and v_offset_w_min == 0 -> == 1
    cfg = IOParameters(**QUIET, v_offset_std=0.2, v_offset_w_min=w_ref, r_series=rs)
    w, x = _inputs()
    state = sample_io_state(cfg, w.shape[0], KEY)
    v = np.array([0.05, 0.1, 0.0, 0.2])
    state["v_offset"] = v.astype(F32)
    got = mvm(w, x, cfg, KEY, 0, state=state)
    x64 = x.astype(np.float64)
    want = _offset_reference(x64 @ w.astype(np.float64).T, x64.sum(1), v, rs, w_ref)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    # the offsets act: the same read without them differs
    assert np.abs(want - _offset_reference(x64 @ w.astype(np.float64).T, x64.sum(1), 0 * v, rs, w_ref)).max() > 1e-2


# ---- transfer reads: read_vectors is the MVM of a one-hot input (its docstring) --------------------------

READS = {
    "additive_w_noise": dict(w_noise=0.05, w_noise_type="additive_constant", out_noise=0.1, out_res=1 / 510,
                             out_bound=1.0),
    "pcm_w_noise_line_sigma": dict(w_noise=0.05, w_noise_type="pcm_read", out_noise=0.05, out_noise_std=0.3),
    "typed_none_ignores_w_noise": dict(w_noise=0.1, w_noise_type="none", out_nonlinearity=0.5),
    "scaled_and_clipped": dict(out_scale=2.0, out_bound=0.3, out_noise=0.02),
    # a DAC that clips the driven 1 to 0.5: weight noise scales with the DAC output, not with 1
    "half_dac_additive": dict(inp_bound=0.5, w_noise=0.05, w_noise_type="additive_constant"),
    "half_dac_pcm": dict(inp_bound=0.5, w_noise=0.05, w_noise_type="pcm_read"),
}


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("name", sorted(READS))
def test_read_vectors_is_the_mvm_of_a_one_hot_input(name, transposed):
    """Row t of ``v`` (column c_t of W, or row r_t when transposed) read with the transfer IO equals
    ``mvm(W, e_{c_t})`` with the draws of sample ``sample0 + t``, noise included (no input noise, DAC
    rounding, IR drop or offsets here, so the undriven lines add nothing)."""
    cfg = IOParameters(**{**QUIET, **READS[name]})
    w = (rng.uniform_array(rng.seed_key(4), 0, (5, 6)) * F32(1.2) - F32(0.6)).astype(F32)
    lines = np.array([3, 0, 3, 1]) if not transposed else np.array([4, 2, 2, 0])
    size = w.shape[1] if transposed else w.shape[0]  # length of a stored vector = output lines of the read
    onehot = np.eye(w.shape[0] if transposed else w.shape[1], dtype=F32)[lines]
    stored = (w[lines] if transposed else w[:, lines].T).astype(np.float64)  # float64 in: cast on entry
    key, s0 = rng.seed_key(8, 1), 17
    given = name != "typed_none_ignores_w_noise"  # that config needs no drawn line: read builds its own state
    state = sample_io_state(cfg, size, rng.seed_key(8, 2), transposed=transposed) if given else None
    got = read_vectors(stored, cfg, key, s0, transposed=transposed, state=state)
    want = mvm(w, onehot, cfg, key, s0, transposed=transposed,
               state=state if given else sample_io_state(cfg, size, None, transposed=transposed))
    assert got.dtype == np.float32 and got.shape == (lines.size, size)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    if name == "typed_none_ignores_w_noise":  # w_noise without a noise type is no noise: a plain nonlinearity
        n_i = 0.5  # out_nonlinearity / (out_bound <= 0: range 1)
        np.testing.assert_allclose(got, stored / (1 + np.abs(n_i * stored)), rtol=1e-6, atol=1e-7)
    else:  # the noise is drawn: the read differs from the noiseless one
        quiet = IOParameters(**{**QUIET, "out_scale": cfg.out_scale, "out_bound": cfg.out_bound})
        assert np.abs(got - read_vectors(stored, quiet, key, s0, transposed=transposed)).max() > 1e-3


@pytest.mark.parametrize("out_scale", [1.0, 2.0, 2.5])
def test_perfect_read_is_the_scaled_stored_vector(out_scale):
    v = rng.normal_array(rng.seed_key(3), 0, (4, 3)).astype(F32)
    got = read_vectors(v, IOParameters(is_perfect=True, out_scale=out_scale), KEY, 0)
    np.testing.assert_allclose(got, out_scale * v.astype(np.float64), rtol=1e-6)
    assert not np.shares_memory(got, v)  # a read never aliases the stored vectors


def test_read_vectors_defaults_to_the_forward_direction():
    # without ``transposed`` a read is a forward read: its noise is named like mvm's forward pass (c2 = 0)
    cfg = IOParameters(**{**QUIET, **READS["additive_w_noise"]})
    w = (rng.uniform_array(rng.seed_key(4), 0, (5, 6)) * F32(1.2) - F32(0.6)).astype(F32)
    state = sample_io_state(cfg, 5, rng.seed_key(8, 2))
    got = read_vectors(w[:, [2, 4]].T, cfg, rng.seed_key(8, 1), 3, state=state)
    want = mvm(w, np.eye(6, dtype=F32)[[2, 4]], cfg, rng.seed_key(8, 1), 3, state=state)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("res,bound,step", [(-1, 1.0, 0.0), (0, 1.0, 0.0), (0.5, 0, 0.0), (1 / 126, 1.0, 2 / 126),
                                            (1.0, 2.0, 4.0), (2.0, 1.0, 1.0), (4.0, 3.0, 1.5)])
def test_quantisation_step_of_a_user_resolution(res, bound, step):
    # "<= 0 none, > 1 a number of steps, else a fraction of the range 2 bound"; no range (bound <= 0): none
    assert quant_step(res, bound) == pytest.approx(step)


def test_output_nonlinearity_is_relative_to_a_small_adc_range():
    # n_i = out_nonlinearity / out_bound (unbounded: range 1), here with a range below 1
    st = sample_io_state(IOParameters(out_nonlinearity=0.2, out_bound=0.5), 3, None)
    np.testing.assert_allclose(st["out_nonlinearity"], 0.4, rtol=1e-6)
    st = sample_io_state(IOParameters(out_nonlinearity=0.2, out_bound=0.0), 3, None)
    np.testing.assert_allclose(st["out_nonlinearity"], 0.2, rtol=1e-6)


# ---- bound management, noise management and asymmetry corner cases ---------------------------------------

BM = dict(QUIET, bound_management="iterative")


def test_an_output_exactly_at_the_bound_does_not_trigger_bound_management():
    # "exceeded = any(y > out_bound) or any(y < -out_bound)": strict. y = 0.65 / (1 + 0.5 * 0.65) = 0.4906
    # reads 0.5 (ADC step 0.1), exactly the bound: no retry, so 0.5 and not the halved-input retry (0.6)
    cfg = IOParameters(**{**BM, "out_bound": 0.5, "out_res": 0.1, "out_nonlinearity": 0.25})
    y = mvm(np.array([[0.65]], F32), np.array([[1.0], [-1.0]], F32), cfg, KEY, 0)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[0.5], [-0.5]], rtol=1e-6)


def test_bound_management_retry_without_noise_management():
    # sample 0 saturates (W x = 2 > 1): its input is halved once (y = 1, not above the bound) and the
    # output rescaled by 2; sample 1 is untouched. The result stays float32.
    cfg = IOParameters(**{**BM, "out_bound": 1.0})
    y = mvm(np.array([[2.0]], F32), np.array([[1.0], [0.1]], F32), cfg, KEY, 0)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[2.0], [0.2]], rtol=1e-6)


def test_bound_management_retries_do_not_depend_on_the_rest_of_the_batch():
    # "a sample's output never depends on the rest of the batch": with input and weight noise drawn in
    # the retry rounds, each sample alone (numbered as in the batch) gives its batch row
    cfg = IOParameters(**{**BM, "out_bound": 1.0, "inp_noise": 0.02, "w_noise": 0.02,
                          "w_noise_type": "additive_constant", "out_noise": 0.02})
    w = np.array([[1.5, 0.8, -0.2], [0.3, -0.4, 0.9]], F32)
    x = np.array([[1.0, 1.0, 0.0], [0.1, 0.2, 0.1], [0.9, 0.5, -0.3], [-0.2, 0.1, 0.0]], F32)
    s0 = 40
    y = mvm(w, x, cfg, KEY, s0)
    assert np.abs(y).max() > 1.5  # some samples were retried
    for b in range(x.shape[0]):
        np.testing.assert_array_equal(mvm(w, x[b:b + 1], cfg, KEY, s0 + b)[0], y[b])


@pytest.mark.parametrize("where", ["inp", "out"])
def test_full_asymmetry_zeroes_the_negative_side(where):
    # inp_asymmetry = 1 (out_asymmetry = 1): negative inputs (outputs) are scaled by 1 - 1 = 0
    cfg = IOParameters(**QUIET, **{f"{where}_asymmetry": 1.0})
    w, x = _inputs()
    y = mvm(w, x, cfg, KEY, 0).astype(np.float64)
    w64, x64 = w.astype(np.float64), x.astype(np.float64)
    want = np.maximum(x64, 0) @ w64.T if where == "inp" else np.maximum(x64 @ w64.T, 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_constant_noise_management_uses_the_threshold_below_one():
    # CONSTANT: alpha = nm_thres (0.5); the DAC sees clip(x / 0.5, +-1), the output is rescaled by 0.5
    cfg = IOParameters(**{**QUIET, "noise_management": "constant", "nm_thres": 0.5})
    w, x = _inputs()
    y = mvm(w, x, cfg, KEY, 0)
    want = 0.5 * np.clip(x.astype(np.float64) / 0.5, -1, 1) @ w.astype(np.float64).T
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("out_bound", [0.5, 0.0, 3.0])
def test_abs_max_np_sum_alpha_uses_the_adc_range(out_bound):
    # alpha = max(amax, total * nm_assumed_wmax / B) with B = out_bound (unbounded: 1), here with a DAC step
    # of 0.5 (inp_res 0.25) and max_bm_res large enough not to cap it; y = W (alpha q(x / alpha))
    cfg = IOParameters(**{**QUIET, "noise_management": "abs_max_np_sum", "inp_res": 0.25, "max_bm_res": 100.0,
                          "out_bound": out_bound, "out_res": -1})
    w, x = _inputs()
    x64 = x.astype(np.float64)
    total = np.maximum(np.maximum(x64, 0).sum(1), -np.minimum(x64, 0).sum(1))
    alpha = np.maximum(np.abs(x64).max(1), total * 0.6 / (out_bound if out_bound > 0 else 1.0))
    xq = 0.5 * np.rint(x64 / alpha[:, None] / 0.5)
    want = (alpha[:, None] * xq) @ w.astype(np.float64).T
    if out_bound > 0:
        want = np.clip(want, -out_bound * alpha[:, None], out_bound * alpha[:, None])
    np.testing.assert_allclose(mvm(w, x, cfg, KEY, 0), want, rtol=1e-5, atol=1e-6)


def test_average_abs_max_state_restored_as_float64_keeps_float32():
    cfg = IOParameters(**{**QUIET, "noise_management": "average_abs_max", "inp_res": 1 / 126})
    w, x = _inputs()
    state32 = sample_io_state(cfg, w.shape[0], KEY)
    state32["nm_alpha"] = F32(0.7)
    state64 = dict(state32, nm_alpha=np.float64(0.7))
    y32, y64 = mvm(w, x, cfg, KEY, 0, state=state32), mvm(w, x, cfg, KEY, 0, state=state64)
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, y32)


def test_empty_batch_and_empty_input():
    w, x = _inputs()
    cfg = IOParameters()
    y = mvm(w, x[:0], cfg, KEY, 0)
    assert y.shape == (0, w.shape[0]) and y.dtype == np.float32
    # no input lines: every output reads 0 (W x with an empty sum)
    y = mvm(np.zeros((3, 0), F32), np.zeros((2, 0), F32), IOParameters(**QUIET), KEY, 0)
    assert y.shape == (2, 3) and y.dtype == np.float32 and not y.any()


def test_mvm_builds_the_undrawn_line_state_itself():
    # without ``state``, a config whose per-line parameters need no draw (an output nonlinearity without
    # spread) is built on the fly: n_i = out_nonlinearity / range, range 1 when unbounded
    cfg = IOParameters(**QUIET, out_nonlinearity=0.5)
    w, x = _inputs()
    y = mvm(w, x, cfg, KEY, 0)
    z = x.astype(np.float64) @ w.astype(np.float64).T
    np.testing.assert_allclose(y, z / (1 + 0.5 * np.abs(z)), rtol=1e-5, atol=1e-6)


def test_shape_errors_name_the_offending_array():
    w, x = _inputs()
    with pytest.raises(ValueError, match=r"mvm: x \[batch, in\] has shape"):
        mvm(w, x[:, :-1], IOParameters(), KEY, 0)
    with pytest.raises(ValueError, match=r"mvm: d \[batch, out\] has shape"):
        mvm(w, x, IOParameters(), KEY, 0, transposed=True)


def test_stochastic_dac_rounding_in_a_bound_management_retry_stays_on_neighbouring_levels():
    # DAC step 0.125 with stochastic rounding: q(v) is one of the two levels around v (U in [0, 1)).
    # W = 2, x = 0.9: round 0 gives 1.75 or 2 > 1 = out_bound, so every sample is retried with x / 2 = 0.45,
    # whose DAC output is 0.375 or 0.5 (y = 0.75 or 1.0, not above the bound); rescaled: 1.5 or 2.0 only
    cfg = IOParameters(**{**BM, "out_bound": 1.0, "inp_res": 1 / 16, "inp_sto_round": True})
    y = mvm(np.array([[2.0]], F32), np.full((4000, 1), 0.9, F32), cfg, KEY, 0)
    assert set(np.unique(y).tolist()) == {1.5, 2.0}
    # P(0.5) = (0.45 - 0.375) / 0.125 = 0.6; sd of the fraction 0.0077 (6 sigma: 0.047)
    assert abs((y == 2.0).mean() - 0.6) < 0.047
