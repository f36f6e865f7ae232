"""Every field of ``IOParameters`` pinned against an independent float64 reference of the analog MVM.

The reference below (``ref_mvm``) is written from the MVM model of ``crossbar/physics/io.py``'s module docstring
(noise management, the bound-management loop and its stop rule, DAC, input noise and asymmetry, IR drop,
voltage offsets and series resistance, weight noise, output nonlinearity and slope calibration, output
asymmetry and noise, ADC, clip, rescale) in float64. It shares no helper with ``crossbar.physics.io``: it derives
the per-line parameters from the named device-to-device normals itself and maps resolutions to steps
itself. Only ``crossbar.physics.rng`` (Philox) is shared, to regenerate the draws that the code names (key, element,
sample, ``c2 = 2 round + transposed``, stream), so that a noisy MVM can be compared value by value.

The code is exercised through ``AnalogTile.forward`` and ``AnalogTile.backward`` (an ideal device, so the
weights are exact), each with two calls (the second call's samples are numbered after the first's, and
AVERAGE_ABS_MAX carries its running alpha across them).

A check (``PINS[f"IOParameters.{field}"]``) sets the field away from its default in a scenario where it
acts (all other effects off unless named), and in both directions asserts:

* code == reference, to float32 rounding: ``|code - ref| <= 2e-6 |ref| + 1e-5 max|ref|``. Entries next to a
  quantiser's rounding tie (within 3e-5 of a DAC step, 1e-3 of an ADC step; float32 and float64 may round
  them apart), and samples whose bound-management decision sits at the bound, are left out; at most 10% may be;
* the reference moves, by more than 20 tolerances, when the field takes its default and when it is changed
  by 10% (where a 10% change can matter), so ignoring the field or a 10% error fails the check.

The backward direction has no bound management: its code is compared with the reference without it, and
the ``bound_management`` check asserts that the reference with it would differ.

Random effects (``inp_noise``, ``out_noise``, ``w_noise``, ``inp_sto_round``, ``out_sto_round``) are also
checked by a statistic over >= 65536 draws that does not depend on how the draws are named; each states
its tolerance and false-failure rate.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest

from crossbar import AnalogTile, IOParameters, TileConfig
from crossbar.physics import rng
from crossbar.physics.devices import IdealDevice

F32 = np.float32
S = rng.Stream
SEED = 11
#: distance (in steps) to a rounding tie below which float32 and float64 may round apart: the DAC sees the
#: scaled input (two float32 roundings: <= 1e-5 steps at 60 steps), the ADC a float32 dot product (~1e-4 steps)
TIE_DAC, TIE_ADC = 3e-5, 1e-3
DEFAULTS = {f.name: f.default for f in dataclasses.fields(IOParameters)}

#: every effect off: no noise, no quantisation, no noise or bound management, unbounded output
QUIET = IOParameters(out_noise=0.0, inp_res=-1, out_res=-1, noise_management="none", bound_management="none",
                     out_bound=0.0)


# ---- the reference --------------------------------------------------------------------------------

def d2d(key, name, size):
    """The named device-to-device normal of the construction contract: stream D2D, c2 = crc32(name)."""
    return rng.normal_array(key, S.D2D, (size,), c2=zlib.crc32(name.encode())).astype(np.float64)


def step_of(res, bound):
    """Quantisation step of a resolution: none if res <= 0 or bound <= 0; 1/res steps if res > 1."""
    if res <= 0 or bound <= 0:
        return 0.0
    return (1.0 / res if res > 1 else res) * 2.0 * bound


def ref_lines(cfg, size, transposed, seed=SEED):
    """Per-output-line sigma_i, n_i, v_i and the slope-calibration factor f (the ``crossbar.physics.io`` formulas)."""
    key = rng.seed_key(seed, 3 if transposed else 2)
    suffix = "_bwd" if transposed else ""
    bound = cfg.out_bound if cfg.out_bound > 0 else 1.0
    sigma = np.abs(cfg.out_noise * (1 + cfg.out_noise_std * d2d(key, "io_out_noise" + suffix, size)))
    nl = np.abs(cfg.out_nonlinearity / bound * (1 + cfg.out_nonlinearity_std
                                                  * d2d(key, "io_out_nonlinearity" + suffix, size)))
    v = np.maximum(cfg.v_offset_std * d2d(key, "io_v_offset" + suffix, size), 0.0)
    f = (1 + (nl.mean() + cfg.r_series) * cfg.slope_calibration * bound) ** 2 if cfg.slope_calibration > 0 else 1.0
    return dict(sigma=sigma, nl=nl, v=v, f=f)


def ref_alpha(kind, x, cfg, step_in, prev=None):
    """Noise-management scale per sample and the new AVERAGE_ABS_MAX state."""
    cap = (lambda a: np.minimum(a, cfg.nm_thres)) if cfg.nm_thres > 0 else (lambda a: a)
    amax = np.abs(x).max(1)
    if kind == "none":
        return None, prev
    if kind == "abs_max":
        return cap(amax), prev
    if kind == "max":
        return cap(x.max(1)), prev
    if kind == "constant":
        return np.full(len(x), cfg.nm_thres if cfg.nm_thres > 0 else 1.0), prev
    if kind == "average_abs_max":
        m = amax.mean()
        new = m if prev is None else prev * (1 - cfg.nm_decay) + cfg.nm_decay * m
        return np.full(len(x), new), new
    assert kind == "abs_max_np_sum"
    total = np.maximum(np.where(x > 0, x, 0).sum(1), -np.where(x < 0, x, 0).sum(1))
    a = cap(amax)
    s = total * cfg.nm_assumed_wmax / (cfg.out_bound if cfg.out_bound > 0 else 1.0)
    if step_in > 0:
        s = np.minimum(a / step_in * cfg.max_bm_res, s)
    return np.maximum(a, s), prev


def quantise(v, step, u, tie_width):
    """``step * rint(v / step [+ u - 1/2])`` and the entries within ``tie_width`` of a rounding tie."""
    t = v / step if u is None else v / step + u - 0.5
    tie = np.abs(t - np.floor(t) - 0.5) < tie_width
    return step * np.rint(t), tie


def ref_round(W, x, div, cfg, lines, key, s0, c2):
    """One pass of every sample through DAC, crossbar and periphery (the order of ``crossbar.physics.io``), float64.

    Returns the clipped outputs, the exceeded flags, the samples whose flag sits at the bound, the
    samples with a DAC rounding tie and the outputs with an ADC rounding tie."""
    B, n = x.shape
    m = W.shape[0]
    draw = lambda normal, stream, size: (rng.normal_rows if normal else rng.uniform_rows)(  # noqa: E731
        key, stream, B, size, s0, c2).astype(np.float64)
    step_in, step_out = step_of(cfg.inp_res, cfg.inp_bound), step_of(cfg.out_res, cfg.out_bound)
    xs = x / div[:, None]
    dac_tie = np.zeros(B, bool)
    if step_in > 0:
        xs, tie = quantise(xs, step_in, draw(False, S.INP_ROUND, n) if cfg.inp_sto_round else None,
                           TIE_DAC)
        dac_tie = (tie & (np.abs(xs) < cfg.inp_bound + step_in)).any(1)
    xs = np.clip(xs, -cfg.inp_bound, cfg.inp_bound)
    if cfg.inp_noise > 0:
        xs = xs + cfg.inp_noise * draw(True, S.INP_NOISE, n)
    if cfg.inp_asymmetry != 0:
        xs = np.where(xs < 0, (1 - cfg.inp_asymmetry) * xs, xs)
    y = xs @ W.T
    if cfg.ir_drop > 0:
        a = n / cfg.ir_drop_g_ratio * (np.abs(xs) @ np.abs(W).T)
        c = a * (a * (0.05 * a - 0.2) + 0.5)
        x2 = xs * (1 - (1 - np.arange(n) / n) ** 2)  # line 0 is farthest from the output
        y = y - cfg.ir_drop * c * (x2 @ W.T)
    if cfg.v_offset_std > 0 or cfg.r_series > 0:
        v, rs = lines["v"], cfg.r_series
        if cfg.v_offset_w_min == 0:
            y = (1 - v) * y / (1 + rs * np.abs(y))
        else:
            y_ref = -cfg.v_offset_w_min * xs.sum(1, keepdims=True)
            y = (1 - v) * (y + y_ref) / (1 + rs * np.abs(y + y_ref)) - (1 + v) * y_ref / (1 + rs * np.abs(y_ref))
    if cfg.w_noise > 0 and cfg.w_noise_type != "none":
        if cfg.w_noise_type == "additive_constant":
            std = cfg.w_noise * np.sqrt((xs ** 2).sum(1, keepdims=True))
        else:  # pcm_read
            std = cfg.w_noise * np.sqrt((xs ** 2) @ np.abs(W).T)
        y = y + std * draw(True, S.W_NOISE, m)
    if cfg.out_nonlinearity > 0 or cfg.r_series > 0:
        y = lines["f"] * y / (1 + np.abs(lines["nl"] * y))
    if cfg.out_asymmetry != 0:
        y = np.where(y < 0, (1 - cfg.out_asymmetry) * y, y)
    if cfg.out_noise > 0:
        y = y + lines["sigma"] * draw(True, S.OUT_NOISE, m)
    adc_tie = np.zeros(y.shape, bool)
    if step_out > 0:
        y, adc_tie = quantise(y, step_out, draw(False, S.OUT_ROUND, m) if cfg.out_sto_round else None,
                              TIE_ADC)
    ob = cfg.out_bound
    exceeded, at_bound = np.zeros(B, bool), np.zeros(B, bool)
    if ob > 0:
        exceeded = (y > ob).any(1) | (cfg.bm_test_negative_bound & (y < -ob).any(1))
        near = np.abs(np.abs(y) - ob) < 1e-5 * ob + np.where(adc_tie, 1.01 * step_out, 0.0)
        at_bound = near.any(1)
        y = np.clip(y, -ob, ob)
    return y, exceeded, at_bound, dac_tie, adc_tie


def ref_mvm(cfg, w, x, transposed=False, s0=0, nm_state=None, bm_backward=False, seed=SEED):
    """One call (float64): outputs, a mask of the entries safe to compare, and the new NM state.

    ``bm_backward`` applies bound management in the backward direction too (a wrong model, to show that
    the tests could see it)."""
    w, x = np.asarray(w, np.float64), np.asarray(x, np.float64)
    W = w.T if transposed else w  # (out lines, in lines) of this direction
    B, m = len(x), W.shape[0]
    if cfg.is_perfect:
        return cfg.out_scale * (x @ W.T), np.ones((B, m), bool), nm_state
    key = rng.seed_key(seed, 0)
    lines = ref_lines(cfg, m, transposed, seed)
    step_in = step_of(cfg.inp_res, cfg.inp_bound)
    nm = str(cfg.noise_management)
    alpha, nm_state = ref_alpha(nm, x, cfg, step_in, nm_state)
    zero = (alpha <= 0) if nm != "none" and cfg.inp_noise == 0 else np.zeros(B, bool)
    bm = (not transposed or bm_backward) and str(cfg.bound_management) != "none" and cfg.out_bound > 0
    worst = str(cfg.bound_management) == "iterative_worst_case" and nm != "abs_max_np_sum"
    y, div_final = np.zeros((B, m)), np.ones(B)
    unsure, adc_unsure = np.zeros(B, bool), np.zeros((B, m), bool)
    active = np.ones(B, bool)
    r, factor, a = 0, 1.0, alpha
    while True:
        div = (np.where(a > 0, a, 1.0) if nm != "none" else np.ones(B)) * factor
        yr, exceeded, at_bound, dac_tie, adc_tie = ref_round(W, x, div, cfg, lines, key, s0,
                                                             2 * r + (1 if transposed else 0))
        y[active], div_final[active], adc_unsure[active] = yr[active], div[active], adc_tie[active]
        unsure |= active & dac_tie
        if not bm or factor > cfg.max_bm_factor or (step_in > 0 and factor > cfg.max_bm_res / step_in):
            break  # the stop rule: the factor just used exceeded a limit
        unsure |= active & at_bound & ~zero
        active &= exceeded & ~zero
        if not active.any():
            break
        r += 1
        if r == 1 and worst:  # IterativeWorstCase: round 1 uses the NP-sum alpha, factor back to 1
            factor, a = 1.0, ref_alpha("abs_max_np_sum", x, cfg, step_in)[0]
        else:
            factor *= 2
    y = y * cfg.out_scale * div_final[:, None]
    y[zero] = 0.0
    ok = ~(unsure[:, None] | adc_unsure)
    return y, ok, nm_state


def ref_calls(cfg, w, calls, transposed=False, bm_backward=False):
    """The reference of consecutive calls on one tile direction: concatenated outputs and mask."""
    ys, oks, s0, state = [], [], 0, None
    for x in calls:
        y, ok, state = ref_mvm(cfg, w, x, transposed, s0, state, bm_backward)
        ys.append(y), oks.append(ok)
        s0 += len(x)
    return np.concatenate(ys), np.concatenate(oks)


def code_calls(cfg, w, calls, transposed=False):
    """The same calls through an AnalogTile (ideal device: exact weights) with this IO in both directions."""
    tile = AnalogTile(*w.shape, TileConfig(device=IdealDevice(), forward=cfg, backward=cfg), seed=SEED)
    tile.set_weights(w)
    run = tile.backward if transposed else tile.forward
    return np.concatenate([run(x) for x in calls]).astype(np.float64)


def tolerance(ref):
    return 2e-6 * np.abs(ref) + 1e-5 * max(float(np.abs(ref).max()), 1e-3)


def distance(a, b, ok):
    """Largest difference over the entries ``ok``, in tolerances of ``b``."""
    return float((np.abs(a - b) / tolerance(b))[ok].max())


def assert_code_matches(cfg, w, calls, transposed):
    got = code_calls(cfg, w, calls, transposed)
    want, ok = ref_calls(cfg, w, calls, transposed)
    assert ok.mean() >= 0.9, f"too many entries at rounding ties or at the bound: {1 - ok.mean():.3f}"
    gap = distance(got, want, ok)
    assert gap <= 1, f"{'backward' if transposed else 'forward'}: code differs from the reference by {gap:.3g} tol"
    return want, ok


# ---- inputs ---------------------------------------------------------------------------------------

def _u(seed, shape, lo, hi):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(F32)


def _split(x):
    h = len(x) // 2
    return [x[:h], x[h:]]


def data_mixed():
    """(w, forward calls, backward calls): mixed signs, inputs beyond the DAC range."""
    return _u(1, (24, 48), -0.6, 0.6), _split(_u(2, (40, 48), -1.2, 1.2)), _split(_u(3, (40, 24), -1.2, 1.2))


def data_nm():
    """Inputs over +-3 (the DAC clips unless scaled), one all-zero and one all-negative sample per call."""
    w = _u(4, (24, 48), -0.6, 0.6)
    out = []
    for seed, size in ((5, 48), (6, 24)):
        x = _u(seed, (40, size), -3, 3) * np.linspace(0.2, 1, 40, dtype=F32)[:, None]
        x[[0, 20]] = 0.0
        x[[1, 21]] = -np.abs(x[[1, 21]])
        out.append(_split(x))
    return w, *out


def data_bm(strength=1.0):
    """Rows 0-11 are driven by inputs 0-31 (positive), rows 12-23 by inputs 32-63 (negative): each sample
    saturates on the positive side, the negative side, both or neither."""
    r = np.random.default_rng(7)
    w = np.empty((24, 64))
    w[:12, :32], w[:12, 32:] = r.uniform(0.2, 0.5, (12, 32)), r.uniform(-0.1, 0.1, (12, 32))
    w[12:, 32:], w[12:, :32] = -r.uniform(0.2, 0.5, (12, 32)), r.uniform(-0.1, 0.1, (12, 32))
    scale = r.choice([0.05, 0.3, 0.6, 1.0], (40, 2))
    x = np.concatenate([r.uniform(0, 1, (40, 32)) * scale[:, :1], r.uniform(0, 1, (40, 32)) * scale[:, 1:]], 1)
    d = r.uniform(-0.2, 1, (40, 24)) * np.where(r.uniform(size=(40, 1)) < 0.5, 1, -1)
    return (strength * w).astype(F32), _split(x.astype(F32)), _split(d.astype(F32))


def data_bm_strong():
    return data_bm(4.0)


DATA = {"mixed": data_mixed, "nm": data_nm, "bm": data_bm, "bm_strong": data_bm_strong}


# ---- the deterministic check ------------------------------------------------------------------------

@dataclasses.dataclass
class Scenario:
    value: object
    others: dict = dataclasses.field(default_factory=dict)
    data: str = "mixed"
    nearby: tuple | None = None  # values for the sensitivity check; default: the value x 1.1 (numbers)


def nearby(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ()
    return (value * 1.1 if value != 0 else 0.01,)


BM_FIELDS = ("bound_management", "max_bm_factor", "max_bm_res", "bm_test_negative_bound")


def pin_io(field, scenarios, extra=None):
    """Code == reference at each scenario in both directions, and the reference moves with the field."""
    def check():
        for sc in scenarios:
            base = QUIET.replace(**sc.others)
            cfg = base.replace(**{field: sc.value})
            w, fwd, bwd = DATA[sc.data]()
            others = [DEFAULTS[field]] + list(sc.nearby if sc.nearby is not None else nearby(sc.value))
            for transposed, calls in ((False, fwd), (True, bwd)):
                want, ok = assert_code_matches(cfg, w, calls, transposed)
                if transposed and field in BM_FIELDS:
                    continue  # no bound management in backward (pinned below)
                for other in others:
                    if other == sc.value:
                        continue
                    moved = ref_calls(base.replace(**{field: other}), w, calls, transposed)[0]
                    gap = distance(moved, want, ok)
                    assert gap > 20, f"{field}: {sc.value!r} vs {other!r} barely moves the reference ({gap:.3g})"
            if field == "bound_management" and sc.value != "none":
                # backward ignores bound management: the reference with it would differ, so the code can fail
                want, ok = ref_calls(cfg, w, bwd, True)
                assert distance(ref_calls(cfg, w, bwd, True, bm_backward=True)[0], want, ok) > 20
        if extra is not None:
            extra()
    return check


# ---- statistics of the random effects -----------------------------------------------------------

def stat_noise(field, cfg, expected_std, clean):
    """The std of (noisy - noise-free) output, each sample divided by its NM alpha and by the expected
    per-entry std, over 2 x 2048 samples x 32 lines = 131072 draws: the sample std has a relative std of
    1/sqrt(2N) = 0.2%, the 2% band is 10 sigma (false-failure rate < 1e-20); a 10% error fails."""
    def check():
        w = _u(8, (32, 48), -0.6, 0.6)
        x = _u(9, (4096, 48), -1, 1) * np.linspace(0.2, 2, 4096, dtype=F32)[:, None]
        calls = _split(x)
        noisy = code_calls(cfg, w, calls)
        quiet = code_calls(cfg.replace(**clean), w, calls)
        alpha = np.abs(x.astype(np.float64)).max(1, keepdims=True)
        z = (noisy - quiet) / alpha / expected_std(cfg, w, x / alpha)
        assert abs(z.std() - 1) < 0.02 and abs(z.mean()) < 6 / np.sqrt(z.size), (z.std(), z.mean())
        # the statistic is off by far more than the band at the default value
        ref_default = expected_std(cfg.replace(**{field: DEFAULTS[field]}), w, x / alpha)
        assert np.all(np.abs(ref_default / expected_std(cfg, w, x / alpha) - 1) > 0.2)
    return check


def std_out_noise(cfg, w, xs):
    return np.full((len(xs), w.shape[0]), cfg.out_noise)


def std_inp_noise(cfg, w, xs):  # sum_j w_ij sigma xi_j
    return np.broadcast_to(cfg.inp_noise * np.sqrt((w.astype(np.float64) ** 2).sum(1)), (len(xs), w.shape[0]))


def std_w_noise(cfg, w, xs):
    xs = np.clip(xs, -1, 1)
    if cfg.w_noise_type == "additive_constant":
        return np.broadcast_to(cfg.w_noise * np.sqrt((xs ** 2).sum(1, keepdims=True)), (len(xs), w.shape[0]))
    if cfg.w_noise_type == "pcm_read":
        return cfg.w_noise * np.sqrt((xs ** 2) @ np.abs(w.astype(np.float64)).T)
    return np.zeros((len(xs), w.shape[0]))


def stat_sto_round(where):
    """Stochastic rounding is unbiased with variance step^2 f (1 - f), f the fractional position.

    W = I (64 lines), 4096 samples of fixed values v_j with f_j in [0.15, 0.85]. (a) The pooled variance of
    (y - v) over the 262144 draws divided by sum_j step^2 f_j (1 - f_j) is 1 within 3%: each line's sample
    variance of a two-point variable has relative std sqrt((1 - 4q)/(q N)) <= 4.4% (q = f (1 - f) >= 0.1275),
    the pool of 64 lines 0.55%, so 3% is 5.4 sigma (false-failure rate 6e-8). Deterministic rounding gives
    0. (b) The per-line means are unbiased: sum_j (mean_j - v_j)^2 / Var(mean_j) is chi^2 with 64 degrees of
    freedom, below 130 with probability 1 - 3e-7; deterministic rounding gives more than 1e5."""
    def check():
        n, batch = 64, 4096
        r = np.random.default_rng(10)
        if where == "inp":
            cfg = QUIET.replace(inp_res=1 / 20, inp_sto_round=True)
            step = 0.1
        else:
            cfg = QUIET.replace(out_res=1 / 40, out_bound=3.0, out_sto_round=True)
            step = 0.15
        f = r.uniform(0.15, 0.85, n)
        v = ((r.integers(-5, 5, n) + f) * step).astype(F32)
        f = (v.astype(np.float64) / step) % 1
        y = code_calls(cfg, np.eye(n, dtype=F32), _split(np.tile(v, (batch, 1))))
        q = f * (1 - f)
        err = y - v.astype(np.float64)
        ratio = (err ** 2).mean(0).sum() / (step ** 2 * q).sum()
        assert abs(ratio - 1) < 0.03, ratio
        chi2 = ((err.mean(0)) ** 2 / (step ** 2 * q / batch)).sum()
        assert chi2 < 130, chi2
        det = code_calls(cfg.replace(**{f"{where}_sto_round": False}), np.eye(n, dtype=F32), [v[None]])
        assert np.abs(det - v).max() > 0.1 * step  # deterministic rounding is biased: the check can fail
    return check


# ---- the pins ---------------------------------------------------------------------------------------

ABS = dict(noise_management="abs_max")
#: the input scale alpha is visible through the DAC and ADC steps and the output clip
NM_SEEN = dict(inp_res=1 / 126, out_res=1 / 510, out_bound=2.0)
#: a DAC of 64 steps per unit (a power of 2): the scaled max input 1 / 2**r sits at 64 / 2**r steps, never at a
#: rounding tie (where float32 and float64 could round apart), and max_bm_res / step = 64 max_bm_res is exact
INP_RES_BM = 1 / 128
#: and an ADC of 509 steps: the bound 2.0 is not a level (254.5 steps), so no output sits exactly at it
BM_ON = dict(noise_management="abs_max", bound_management="iterative", out_bound=2.0, inp_res=INP_RES_BM,
             out_res=1 / 509)

PINS = {
    "IOParameters.is_perfect": pin_io("is_perfect", [
        Scenario(True, dict(out_noise=0.1, out_scale=2.0, inp_res=1 / 126, out_res=1 / 510, out_bound=2.0, **ABS))]),
    "IOParameters.inp_bound": pin_io("inp_bound", [Scenario(0.7), Scenario(0.7, dict(inp_res=1 / 20))]),
    "IOParameters.inp_res": pin_io("inp_res", [Scenario(1 / 20), Scenario(25), Scenario(1 / 20, ABS)]),
    "IOParameters.inp_sto_round": pin_io("inp_sto_round", [Scenario(True, dict(inp_res=1 / 20)),
                                                           Scenario(True, dict(inp_res=1 / 20, **ABS))],
                                         stat_sto_round("inp")),
    "IOParameters.inp_noise": pin_io("inp_noise", [Scenario(0.05, ABS), Scenario(0.05, dict(noise_management="max"),
                                                                                 "nm")],
                                     stat_noise("inp_noise", QUIET.replace(inp_noise=0.05, **ABS), std_inp_noise,
                                                dict(inp_noise=0.0))),
    "IOParameters.inp_asymmetry": pin_io("inp_asymmetry", [Scenario(0.3), Scenario(-0.2, ABS)]),
    "IOParameters.out_bound": pin_io("out_bound", [Scenario(1.5), Scenario(1.5, dict(out_res=1 / 40))]),
    "IOParameters.out_res": pin_io("out_res", [Scenario(1 / 40, dict(out_bound=3.0)),
                                               Scenario(40, dict(out_bound=3.0)),
                                               Scenario(1 / 40, dict(out_bound=3.0, **ABS))]),
    "IOParameters.out_sto_round": pin_io("out_sto_round", [Scenario(True, dict(out_res=1 / 40, out_bound=3.0))],
                                         stat_sto_round("out")),
    "IOParameters.out_noise": pin_io("out_noise", [Scenario(0.15, ABS)],
                                     stat_noise("out_noise", QUIET.replace(out_noise=0.15, **ABS), std_out_noise,
                                                dict(out_noise=0.0))),
    "IOParameters.out_noise_std": pin_io("out_noise_std", [Scenario(0.5, dict(out_noise=0.1))]),
    "IOParameters.out_scale": pin_io("out_scale", [Scenario(2.5), Scenario(2.5, dict(out_bound=1.5, **ABS))]),
    "IOParameters.out_asymmetry": pin_io("out_asymmetry", [Scenario(0.3), Scenario(-0.25, ABS)]),
    "IOParameters.noise_management": pin_io("noise_management", [
        Scenario(kind, NM_SEEN, "nm")
        for kind in ("none", "abs_max", "max", "constant", "average_abs_max", "abs_max_np_sum")]),
    "IOParameters.nm_thres": pin_io("nm_thres", [
        Scenario(0.8, dict(NM_SEEN, noise_management="abs_max"), "nm"),
        Scenario(0.8, dict(NM_SEEN, noise_management="max"), "nm"),
        Scenario(2.0, dict(NM_SEEN, noise_management="constant"), "nm"),
        Scenario(0.8, dict(NM_SEEN, noise_management="abs_max_np_sum", nm_assumed_wmax=0.1), "nm")]),
    "IOParameters.nm_assumed_wmax": pin_io("nm_assumed_wmax", [
        Scenario(0.9, dict(NM_SEEN, noise_management="abs_max_np_sum"), "nm")]),
    "IOParameters.nm_decay": pin_io("nm_decay", [Scenario(0.3, dict(NM_SEEN, noise_management="average_abs_max"),
                                                          "nm")]),
    "IOParameters.bound_management": pin_io("bound_management", [
        Scenario(kind, BM_ON, "bm") for kind in ("none", "iterative", "iterative_worst_case")] + [
        # NM none: the NP-sum alpha is not applied, round 1 repeats factor 1 with fresh draws (round-named)
        Scenario("iterative_worst_case", dict(BM_ON, noise_management="none", out_noise=0.05), "bm")]),
    # stop after the factor used exceeds the limit: 4 -> factors 1, 2, 4, 8 (3.6 -> 1, 2, 4; '>=' -> 1, 2, 4);
    # 7.9 -> up to 8 (8.69 -> up to 16); the default 1000 leaves max_bm_res's limit 0.25 * 64 = 16 -> up to 32
    "IOParameters.max_bm_factor": pin_io("max_bm_factor", [Scenario(4.0, BM_ON, "bm_strong", (3.6,)),
                                                           Scenario(7.9, BM_ON, "bm_strong", (8.69,))]),
    # max_bm_res / step_in: 0.0625 * 64 = 4 -> up to factor 8 (x 0.9: 3.6 -> up to 4; '>=' -> up to 4; the
    # default 0.25: 16 -> up to 32); and the ABS_MAX_NP_SUM cap a / step_in * max_bm_res
    "IOParameters.max_bm_res": pin_io("max_bm_res", [
        Scenario(0.0625, BM_ON, "bm_strong", (0.0625 * 0.9,)),
        Scenario(0.02, dict(noise_management="abs_max_np_sum", inp_res=1 / 126, out_bound=2.0), "nm")]),
    "IOParameters.bm_test_negative_bound": pin_io("bm_test_negative_bound", [Scenario(False, BM_ON, "bm")]),
    "IOParameters.w_noise": pin_io("w_noise", [Scenario(0.04, dict(w_noise_type="additive_constant", **ABS))],
                                   stat_noise("w_noise", QUIET.replace(w_noise=0.04, w_noise_type="additive_constant",
                                                                       **ABS), std_w_noise, dict(w_noise=0.0))),
    "IOParameters.w_noise_type": pin_io("w_noise_type", [
        Scenario("additive_constant", dict(w_noise=0.04, **ABS)), Scenario("pcm_read", dict(w_noise=0.04, **ABS))],
        stat_noise("w_noise_type", QUIET.replace(w_noise=0.04, w_noise_type="pcm_read", **ABS), std_w_noise,
                   dict(w_noise_type="none"))),
    "IOParameters.ir_drop": pin_io("ir_drop", [Scenario(1.0, dict(ir_drop_g_ratio=2e3)),
                                               Scenario(0.5, dict(ir_drop_g_ratio=4e3, **ABS))]),
    "IOParameters.ir_drop_g_ratio": pin_io("ir_drop_g_ratio", [Scenario(2e3, dict(ir_drop=1.0)),
                                                               Scenario(4e3, dict(ir_drop=0.5, **ABS))]),
    "IOParameters.out_nonlinearity": pin_io("out_nonlinearity", [Scenario(0.5), Scenario(0.5, dict(out_bound=6.0))]),
    "IOParameters.out_nonlinearity_std": pin_io("out_nonlinearity_std", [
        Scenario(0.3, dict(out_nonlinearity=0.5))]),
    "IOParameters.slope_calibration": pin_io("slope_calibration", [
        Scenario(0.5, dict(out_nonlinearity=0.5, out_nonlinearity_std=0.2, out_bound=6.0)),
        Scenario(0.5, dict(r_series=0.05, v_offset_w_min=0.0))]),
    "IOParameters.v_offset_std": pin_io("v_offset_std", [Scenario(0.1, dict(v_offset_w_min=0.0)), Scenario(0.1)]),
    "IOParameters.v_offset_w_min": pin_io("v_offset_w_min", [
        Scenario(-0.5, dict(v_offset_std=0.1)), Scenario(0.0, dict(v_offset_std=0.1)),
        Scenario(-0.5, dict(r_series=0.05))]),
    "IOParameters.r_series": pin_io("r_series", [Scenario(0.05, dict(v_offset_w_min=0.0)),
                                                 Scenario(0.05, dict(v_offset_std=0.1))]),
}

EXEMPT: dict = {}  # every IO field changes the physics


@pytest.mark.parametrize("name", sorted(PINS))
def test_pin(name):
    PINS[name]()


def test_every_io_field_is_pinned():
    assert set(PINS) == {f"IOParameters.{f.name}" for f in dataclasses.fields(IOParameters)}


def test_the_distance_can_fail():
    w, fwd, _ = data_mixed()
    want, ok = ref_calls(QUIET, w, fwd)
    assert distance(want, want, ok) == 0 and distance(want * (1 + 1e-4), want, ok) > 1
