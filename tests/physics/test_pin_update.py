"""Every field of ``UpdateParameters`` and ``DriftParameter`` pinned against an independent float64 reference.

Update (as ``crossbar/physics/pulses.py`` documents it). The reference below computes the
pulse-train length BL and the probability scales A (for d) and B (for x) of update management, the
probabilities ``p_x = B |x|``, ``p_d = A |d|`` with their discretisation (``res``, ``sto_round``), the
deterministic pulse counts (MEAN_COUNT, DETERMINISTIC_IMPLICIT) and the floating-point updates (NONE,
NONE_WITH_DEVICE) from the formulas, in float64, sharing no helper with ``crossbar.physics.pulses``. The code is
observed through ``pulses.update_management``, ``pulses.probabilities``, ``pulses.coincidences`` and
``AnalogTile.update``.

Drift (``AnalogTile.drift``, documented in ``crossbar/physics/devices/base.py``). The reference replays
``w = w0 max(T - t_ij, 1)^-nu + a (f - 1)`` with its clock restarts, the conductance dependence of nu and the
additive noise, from the device-to-device normal of nu and the drift draws named by the tile's operation counter.

Only ``crossbar.physics.rng`` is shared, to regenerate named draws (the stochastic rounding of probabilities,
drift noise). Each check sets its field away from the default in a scenario where it acts, asserts code ==
reference (float32 rounding: ``|code - ref| <= 2e-6 |ref| + 1e-6 max|ref|``; integer counts exactly), and
asserts that the reference moves by more than 20 tolerances when the field takes its default or is changed
by 10% (integers: by 1). Random effects (``sto_round``, ``nu_std``, ``w_noise_std``) are also checked by a
statistic that does not depend on how the draws are named, with its tolerance and false-failure rate.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import AnalogTile, DriftParameter, IOParameters, TileConfig, UpdateParameters
from crossbar.physics import pulses, rng

F32 = np.float32
S = rng.Stream
KEY = rng.seed_key(21, 0)
LR, DW = 0.01, 0.001
UPDATE_DEFAULTS = {f.name: f.default for f in dataclasses.fields(UpdateParameters)}
DRIFT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DriftParameter)}


# ---- the update reference -----------------------------------------------------------------------------

def step_of(res):
    """Discretisation step of a resolution: none if res <= 0, 1/res if res > 1, else res."""
    return 0.0 if res <= 0 else (1.0 / res if res > 1 else float(res))


def ref_management(x_max, d_max, lr, dw, cfg):
    """BL, A (d scale) and B (x scale) per sample, float64 (update management)."""
    lam, bld = abs(lr), cfg.desired_bl
    n = len(x_max)
    if lam == 0:
        return np.zeros(n), np.zeros(n), np.zeros(n)
    if cfg.fixed_bl or cfg.update_bl_management or dw * bld >= lam:
        bl = np.full(n, float(bld))
        a = np.sqrt(lam / (dw * bl))
    else:
        bl = np.full(n, max(np.ceil(lam / dw), 1.0))
        a = np.ones(n)
    b = a.copy()
    if cfg.update_management or cfg.update_bl_management:  # UBLM forces UM
        dead = (x_max == 0) | (d_max == 0)
        xm, dm = np.where(dead, 1.0, x_max), np.where(dead, 1.0, d_max)
        d_v = cfg.um_grad_scale * dm
        k = lam * xm * d_v / dw  # expected pulses at the largest product
        if cfg.update_bl_management:
            bl = np.minimum(np.ceil(k), bld)
            a = b = np.sqrt(lam / (dw * bl))
        d_v = np.where(k > bld, d_v * bld / k, d_v)  # the gradient is clipped first
        a, b = a * np.sqrt(xm / d_v), b * np.sqrt(d_v / xm)
        bl, a, b = np.where(dead, 0, bl), np.where(dead, 0, a), np.where(dead, 0, b)
    return bl, a, b


def k_values(x, d, lr, dw, cfg):
    return abs(lr) * np.abs(x).max(1) * cfg.um_grad_scale * np.abs(d).max(1) / dw


def ref_probabilities(x, d, lr, dw, cfg, key=KEY, s0=0):
    """``(bl, A, B, p_x, p_d)`` and whether any discretised value sits within 1e-4 of a rounding tie."""
    x, d = np.asarray(x, np.float64), np.asarray(d, np.float64)
    bl, a, b = ref_management(np.abs(x).max(1), np.abs(d).max(1), lr, dw, cfg)
    px, pd = b[:, None] * np.abs(x), a[:, None] * np.abs(d)
    r = step_of(cfg.res)
    tie = False
    if r > 0:
        out = []
        for p, c2 in ((px, 0), (pd, 1)):
            t = p / r
            if cfg.sto_round:  # uniform word 0 of counter (line, sample, 0 for x / 1 for d, PROB_ROUND)
                u = rng.uniform(key, S.PROB_ROUND, np.arange(p.shape[1])[None, :],
                                (s0 + np.arange(len(p)))[:, None], c2)[0].astype(np.float64)
                t = t + u - 0.5
            tie |= bool((np.abs(t - np.floor(t) - 0.5) < 1e-4).any())
            out.append(np.rint(t) * r)
        px, pd = out
    return dict(bl=bl, a=a, b=b, px=px, pd=pd), tie


def code_probabilities(x, d, lr, dw, cfg, key=KEY, s0=0):
    bl, a, b = pulses.update_management(np.abs(x).max(1), np.abs(d).max(1), lr, dw, cfg)
    px, pd, bl2 = pulses.probabilities(x, d, lr, dw, cfg, key, s0)
    assert np.array_equal(bl, bl2)
    return {k: np.asarray(v, np.float64) for k, v in dict(bl=bl, a=a, b=b, px=px, pd=pd).items()}


def ref_counts(x, d, lr, dw, cfg):
    """Signed counts ``(batch, out, in)`` of the deterministic pulse types (positive = down), and whether a
    rounding sits within 1e-4 of a tie."""
    x, d = np.asarray(x, np.float64), np.asarray(d, np.float64)
    bl, a, b = ref_management(np.abs(x).max(1), np.abs(d).max(1), lr, dw, cfg)
    px, pd = b[:, None] * np.abs(x), a[:, None] * np.abs(d)
    ties = []

    def rint(v):
        ties.append((np.abs(v - np.floor(v) - 0.5) < 1e-4).any())
        return np.rint(v)

    blc = bl[:, None]
    if cfg.pulse_type == "mean_count":
        cx = np.sign(x) * np.clip(rint(blc * px), 0, blc)
        cd = np.sign(d) * np.clip(rint(blc * pd), 0, blc)
        prod = cd[:, :, None] * cx[:, None, :]
        c = np.rint(np.divide(prod, bl[:, None, None], out=np.zeros_like(prod), where=bl[:, None, None] > 0))
    else:  # deterministic_implicit
        def q(v, res):
            r = step_of(res)
            return rint(v / r) * r if r > 0 else v
        xh = np.sign(x) * np.clip(q(px, cfg.x_res_implicit), 0, 1)
        dh = np.sign(d) * np.clip(q(pd, cfg.d_res_implicit), 0, 1)
        c = rint(bl[:, None, None] * dh[:, :, None] * xh[:, None, :])
    return np.sign(lr) * c, any(ties)


def tolerance(ref):
    return 2e-6 * np.abs(ref) + 1e-6 * max(float(np.abs(ref).max()), 1e-6)


def distance(a, b):
    """Largest difference between two observations (dicts of arrays) in tolerances of ``b``."""
    return max(float((np.abs(np.asarray(a[k], np.float64) - b[k]) / tolerance(b[k])).max()) for k in b)


# ---- update inputs -----------------------------------------------------------------------------------

def update_data():
    """8 samples with k = lr max|x| max|d| / dw from 0.7 to 90 (UBLM gives BL 1 .. desired_bl), one with
    x = 0 and one with d = 0; no k near an integer (checked per scenario)."""
    r = np.random.default_rng(31)
    x = r.uniform(-1, 1, (8, 5))
    d = r.uniform(-1, 1, (8, 4))
    k = np.array([0.73, 2.41, 5.62, 9.37, 13.3, 22.6, 44.3, 90.7])
    x /= np.abs(x).max(1, keepdims=True)
    d *= (k * DW / LR / np.abs(d).max(1))[:, None]
    x[2], d[5] = 0.0, 0.0
    return x.astype(F32), d.astype(F32)


def assert_no_integer_k(x, d, lr, cfg):
    k = k_values(x.astype(np.float64), d.astype(np.float64), lr, DW, cfg)
    k = k[k > 0]
    assert np.abs(k - np.rint(k)).min() > 1e-3, "a k near an integer: float32 and float64 could ceil apart"


@dataclasses.dataclass
class Scenario:
    value: object
    others: dict = dataclasses.field(default_factory=dict)
    lr: float = LR
    nearby: tuple | None = None


def nearby(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ()
    if isinstance(value, int):
        return (value - 1, value + 1)
    return (value * 1.1, value * 0.9)


def sensitivity(field, sc, observe):
    """The reference observation at the default and at nearby values differs from the one at the value."""
    base = UpdateParameters(**sc.others)
    want = observe(base.replace(**{field: sc.value}), sc)
    for other in [UPDATE_DEFAULTS[field]] + list(sc.nearby if sc.nearby is not None else nearby(sc.value)):
        if other == sc.value:
            continue
        try:
            cfg = base.replace(**{field: other})
        except ValueError:  # outside the allowed range
            continue
        gap = distance(observe(cfg, sc), want)
        assert gap > 20, f"{field}: {sc.value!r} vs {other!r} barely moves the reference ({gap:.3g})"


def ref_observe_probabilities(cfg, sc):
    x, d = update_data()
    return ref_probabilities(x, d, sc.lr, DW, cfg)[0]


def pin_management(field, scenarios, extra=None):
    """Update management and probabilities: code == reference, and the reference moves with the field."""
    def check():
        x, d = update_data()
        for sc in scenarios:
            cfg = UpdateParameters(**sc.others).replace(**{field: sc.value})
            assert_no_integer_k(x, d, sc.lr, cfg)
            want, tie = ref_probabilities(x, d, sc.lr, DW, cfg)
            assert not tie, "a probability sits at a rounding tie: change the scenario"
            got = code_probabilities(x, d, sc.lr, DW, cfg)
            assert np.array_equal(got["bl"], want["bl"]), (got["bl"], want["bl"])
            gap = distance(got, want)
            assert gap <= 1, f"{field}={sc.value!r}: code differs from the reference by {gap:.3g} tol"
            sensitivity(field, sc, ref_observe_probabilities)
        if extra is not None:
            extra()
    return check


# ---- pulse types: counts and tile updates ------------------------------------------------------------

BOUND = 0.3
DEVICE = D.ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=BOUND,
                              w_min=-BOUND, w_max_dtod=0.0, w_min_dtod=0.0)


def tile_data():
    """Weights near the bounds and an update (lr 0.2, dw 0.01: k up to 18) that pushes some beyond them."""
    r = np.random.default_rng(32)
    w = r.uniform(-0.28, 0.28, (4, 5))
    x = r.uniform(-1, 1, (3, 5))
    d = r.uniform(-0.9, 0.9, (3, 4))
    return w.astype(F32), x.astype(F32), d.astype(F32), 0.2


def ref_tile_update(cfg, w, x, d, lr):
    """Weights after ``update(x, d, lr)`` of DEVICE (exact steps of 0.01 between hard bounds), float64.

    Deterministic counts: each sample's pulses on a weight have one sign, so clipping after every pulse
    equals clipping after the sample. STOCHASTIC_COMPRESSED: the expected change, BL min(p_x, 1) min(p_d, 1)
    dw (away from the bounds). NONE: the plain SGD step (the device is replaced by a floating-point one: no bounds).
    NONE_WITH_DEVICE: that step, then the device bounds."""
    w = w.astype(np.float64)
    x64, d64 = x.astype(np.float64), d.astype(np.float64)
    if cfg.pulse_type in ("none", "none_with_device"):
        w = w - lr * d64.T @ x64
        return np.clip(w, -BOUND, BOUND) if cfg.pulse_type == "none_with_device" else w
    if cfg.pulse_type == "stochastic_compressed":
        p, _ = ref_probabilities(x, d, lr, DEVICE.dw_min, cfg)
        # a probability >= 1 always fires
        n = p["bl"][:, None, None] * np.minimum(p["pd"], 1)[:, :, None] * np.minimum(p["px"], 1)[:, None, :]
        return w - DEVICE.dw_min * (np.sign(lr) * np.sign(d64)[:, :, None] * np.sign(x64)[:, None, :] * n).sum(0)
    c, tie = ref_counts(x, d, lr, DEVICE.dw_min, cfg)
    assert not tie, "a count sits at a rounding tie: change the scenario"
    for cb in c:
        w = np.clip(w - DEVICE.dw_min * cb, -BOUND, BOUND)
    return w


def pin_pulse_type(value, others=None):
    def check():
        cfg = UpdateParameters(**(others or {}), pulse_type=value)
        w, x, d, lr = tile_data()
        if value in ("mean_count", "deterministic_implicit"):  # the counts themselves
            for sign in (1, -1):
                ev = pulses.coincidences(x, d, sign * lr, DEVICE.dw_min, cfg, KEY, 0)
                want, _ = ref_counts(x, d, sign * lr, DEVICE.dw_min, cfg)
                assert np.array_equal(ev.dense_counts(*want.shape), want)
                assert np.abs(want).max() >= 2 and (want != 0).mean() > 0.3  # not a trivial scenario
        tile = AnalogTile(4, 5, TileConfig(device=DEVICE, forward=IOParameters(is_perfect=True), update=cfg), seed=5)
        tile.set_weights(w)
        tile.update(x, d, lr)
        want = ref_tile_update(cfg, w, x, d, lr)
        np.testing.assert_allclose(tile.get_weights(), want, rtol=2e-6, atol=1e-6)
        default = ref_tile_update(cfg.replace(pulse_type=UPDATE_DEFAULTS["pulse_type"]), w, x, d, lr)
        assert np.abs(default - want).max() > 1e-3  # the default pulse type gives other weights
        if value in ("none", "none_with_device"):  # the scenario leaves the bounds: bounds visible
            assert np.abs(want).max() > BOUND + 0.01 if value == "none" else np.abs(want).max() == BOUND
    return check


def stochastic_counts_statistic():
    """STOCHASTIC_COMPRESSED: one sample repeated 20000 times (each with its own trains): the mean count of
    each of the 4 x 5 weights is BL p_x p_d within 5 standard errors of the binomial (20 entries: false-failure
    rate < 20 * 5.7e-7), and so is the mean total count per sample (its standard error measured over the
    i.i.d. samples; rate 5.7e-7). A 10% error of p_x p_d moves that total by more than 13 standard errors."""
    x = np.array([[0.9, -0.5, 0.3, 0.7, -0.15]], F32)
    d = np.array([[0.4, -0.8, 0.25, 0.6]], F32)
    cfg = UpdateParameters()
    p, _ = ref_probabilities(x, d, LR, DW, cfg)
    bl = int(p["bl"][0])
    prob = p["pd"][0][:, None] * p["px"][0][None, :]
    assert 1 < bl < cfg.desired_bl
    n = 20000
    ev = pulses.coincidences(np.repeat(x, n, 0), np.repeat(d, n, 0), LR, DW, cfg, KEY, 0)
    dense = ev.dense_counts(n, 4, 5)
    counts = np.abs(dense).mean(0)
    se = np.sqrt(bl * prob * (1 - prob) / n)
    assert np.all(np.abs(counts - bl * prob) <= 5 * se), np.abs(counts - bl * prob) / se
    total = np.abs(dense).sum((1, 2))
    se_total = total.std() / np.sqrt(n)
    assert abs(total.mean() - bl * prob.sum()) <= 5 * se_total
    assert 0.1 * bl * prob.sum() > 13 * se_total
    signs = dense.sum(0)  # positive = down = sign(x d lr) > 0
    assert np.array_equal(np.sign(signs), np.sign(d[0][:, None] * x[0][None, :]))


def sto_round_statistic():
    """Stochastic rounding of the probabilities is unbiased with variance res^2 f (1 - f).

    One sample (64 x lines) repeated 8192 times, res = 0.05; the x lines with f in [0.15, 0.85] are used. (a)
    The pooled variance of (p - p_exact) divided by sum_j res^2 f_j (1 - f_j) is 1 within 4%: a line's sample
    variance of a two-point variable has relative std sqrt((1 - 4q)/(q N)) <= 3.1% (q >= 0.1275), the pool of
    >= 30 lines <= 0.6%, so 4% is >= 6.9 sigma (false-failure rate < 1e-11); deterministic rounding gives 0.
    (b) sum_j (mean_j - p_j)^2 / Var(mean_j) is chi^2 with m <= 64 degrees of freedom, below 130 with
    probability > 1 - 3e-7; deterministic rounding gives more than 1e4."""
    r = np.random.default_rng(33)
    x = r.uniform(0.05, 1, (1, 64)).astype(F32)
    d = np.array([[0.3, -0.2]], F32)
    cfg = UpdateParameters(res=0.05, sto_round=True)
    exact, _ = ref_probabilities(x, d, LR, DW, cfg.replace(res=0.0))
    t = exact["px"][0] / 0.05
    f = t - np.floor(t)
    use = (f > 0.15) & (f < 0.85)
    assert use.sum() >= 30
    n = 8192
    px, _, _ = pulses.probabilities(np.repeat(x, n, 0), np.repeat(d, n, 0), LR, DW, cfg, KEY, 0)
    err = (px.astype(np.float64) - exact["px"][0])[:, use]
    q = (f * (1 - f))[use]
    ratio = (err ** 2).mean(0).sum() / (0.05 ** 2 * q).sum()
    assert abs(ratio - 1) < 0.04, ratio
    chi2 = (err.mean(0) ** 2 / (0.05 ** 2 * q / n)).sum()
    assert chi2 < 130, chi2
    det, _, _ = pulses.probabilities(x, d, LR, DW, cfg.replace(sto_round=False), KEY, 0)
    assert np.abs(det[0] - exact["px"][0])[use].min() > 0.1 * 0.05  # deterministic rounding is biased


def pin_implicit_res(field, value):
    """DETERMINISTIC_IMPLICIT counts with a quantised x (or d): code == reference, and the reference counts
    move when the resolution is off (the default) or 10% coarser or finer."""
    def check():
        w, x, d, lr = tile_data()
        cfg = UpdateParameters(pulse_type="deterministic_implicit", **{field: value})
        for sign in (1, -1):
            ev = pulses.coincidences(x, d, sign * lr, DEVICE.dw_min, cfg, KEY, 0)
            want, tie = ref_counts(x, d, sign * lr, DEVICE.dw_min, cfg)
            assert not tie
            assert np.array_equal(ev.dense_counts(*want.shape), want)
        for other in (UPDATE_DEFAULTS[field], value * 1.1, value * 0.9):
            moved, _ = ref_counts(x, d, lr, DEVICE.dw_min, cfg.replace(**{field: other}))
            assert np.abs(moved - ref_counts(x, d, lr, DEVICE.dw_min, cfg)[0]).sum() >= 2, other
    return check


# ---- drift --------------------------------------------------------------------------------------------

DRIFT_SEED = 4
DELTAS = np.array([0.0, 0.0, 0.003, -0.0095, 0.0105, -0.02, 0.05, 0.0])  # weight changes between drifts


def drift_device(drift):
    return D.ConstantStepDevice(dw_min_dtod=0.0, up_down_dtod=0.0, w_max=1.0, w_min=-1.0, w_max_dtod=0.0,
                                w_min_dtod=0.0, drift=drift)


def drift_weights(shape):
    return np.random.default_rng(34).uniform(0.35, 0.8, shape).astype(F32)


def deltas(shape):
    return np.resize(DELTAS, shape).astype(F32)


class RefDrift:
    """The drift of one tile in float64: state w0, t_ij, prev, T."""

    def __init__(self, cfg, shape, seed=DRIFT_SEED):
        self.cfg, self.shape = cfg, shape
        xi = rng.normal_array(rng.seed_key(seed, 1), S.D2D, shape, c2=zlib.crc32(b"drift_nu")).astype(np.float64)
        self.nu = cfg.nu * (1 + cfg.nu_dtod * xi)
        self.key = rng.seed_key(seed, 0)
        self.ops = 0
        self.state = None
        self.w = None

    def set_weights(self, w):
        self.w = np.clip(np.asarray(w, np.float64), -1, 1)

    def drift(self, dt):
        c, g = self.cfg, self.w
        if self.state is None:
            self.state = dict(w0=g.copy(), t=np.zeros(self.shape), prev=g.copy(), T=0.0)
        st = self.state
        st["T"] += dt / c.t_0
        moved = np.abs(st["prev"] - g) > c.reset_tol  # updated since the last call: restart its clock
        st["t"] = np.where(moved, st["T"], st["t"])
        st["w0"] = np.where(moved, g, st["w0"])
        op, self.ops = self.ops, self.ops + 1
        normal = lambda c2: rng.normal_array(self.key, S.DRIFT, self.shape, c1=op, c2=c2).astype(np.float64)  # noqa
        nu = self.nu
        if c.nu_std > 0:
            nu = nu * (1 + c.nu_std * normal(0))
        if c.nu_k != 0:
            nu = nu - c.nu_k * np.log((g - c.w_offset) / c.wg_ratio + c.g_offset) + c.nu_k * c.log_g0
        f = np.maximum(st["T"] - st["t"], 1.0) ** -nu
        a = c.g_offset * c.wg_ratio + c.w_offset
        a = 0.0 if abs(a) < c.reset_tol else a
        g = np.where(moved, g, st["w0"] * f + a * (f - 1))
        if c.w_noise_std > 0:
            g = g + c.w_noise_std * normal(1)
        self.w = st["prev"] = np.clip(g, -1, 1)


def run_drift(cfg, shape=(8, 8), reference=False):
    """set, drift 5, drift 20, change some weights by DELTAS, drift 30: the weights after each drift."""
    t = RefDrift(cfg, shape) if reference else AnalogTile(*shape, TileConfig(device=drift_device(cfg)),
                                                          seed=DRIFT_SEED)
    get = (lambda: t.w.copy()) if reference else (lambda: t.get_weights().astype(np.float64))
    t.set_weights(drift_weights(shape))
    out = {}
    for name, dt in (("a", 5.0), ("b", 20.0)):
        t.drift(dt)
        out[name] = get()
    w = t.w + deltas(shape) if reference else t.get_weights() + deltas(shape)
    t.set_weights(w)
    t.drift(30.0)
    out["c"] = get()
    return out


BASE_DRIFT = DriftParameter(nu=0.1)


def pin_drift(field, scenarios, extra=None):
    """Code == reference at each scenario; the reference moves at the default and at +-10%."""
    def check():
        for value, others, near in scenarios:
            base = BASE_DRIFT.replace(**others)
            cfg = base.replace(**{field: value})
            want = run_drift(cfg, reference=True)
            gap = distance(run_drift(cfg), want)
            assert gap <= 1, f"{field}={value!r}: code differs from the reference by {gap:.3g} tol"
            for other in [DRIFT_DEFAULTS[field]] + list(near if near is not None else nearby(value)):
                if other == value:
                    continue
                gap = distance(run_drift(base.replace(**{field: other}), reference=True), want)
                assert gap > 20, f"{field}: {value!r} vs {other!r} barely moves the reference ({gap:.3g})"
        if extra is not None:
            extra()
    return check


def drift_statistic(field):
    """One drift call (dt = 100, t_0 = 1) on 128 x 128 devices with nu = 0.1, no device-to-device spread.

    nu_std: z = -ln(w / w0) / (ln(100) nu) - 1 = nu_std xi; w_noise_std: z = (w - w_noise_free) = w_noise_std
    xi. The std of z over 16384 devices has relative std 1/sqrt(2 * 16384) = 0.55%: std / value = 1 within
    3% is 5.4 sigma (false-failure rate 6e-8), and a 10% error fails. The mean is 0 within 6 standard errors."""
    def check():
        shape, value = (128, 128), 0.2 if field == "nu_std" else 0.01
        cfg = BASE_DRIFT.replace(**{field: value})
        w0 = drift_weights(shape).astype(np.float64)

        def after(c):
            tile = AnalogTile(*shape, TileConfig(device=drift_device(c)), seed=DRIFT_SEED)
            tile.set_weights(drift_weights(shape))
            tile.drift(100.0)
            return tile.get_weights().astype(np.float64)
        w, clean = after(cfg), after(BASE_DRIFT)
        if field == "nu_std":
            z = -np.log(w / w0) / (np.log(100.0) * 0.1) - 1
        else:
            z = w - clean
        assert abs(z.std() / value - 1) < 0.03 and abs(z.mean()) < 6 * value / np.sqrt(z.size), (z.std(), z.mean())
    return check


# ---- the pins ---------------------------------------------------------------------------------------------

NO_UM = dict(update_bl_management=False, update_management=False)

PINS = {
    "UpdateParameters.desired_bl": pin_management("desired_bl", [
        Scenario(15), Scenario(15, dict(update_bl_management=False)), Scenario(15, NO_UM)]),
    # variable BL: lr / dw = 44.3 > desired_bl gives BL = 45 and A = B = 1
    "UpdateParameters.fixed_bl": pin_management("fixed_bl", [
        Scenario(False, NO_UM, lr=0.0443), Scenario(False, dict(update_bl_management=False), lr=0.0443)]),
    "UpdateParameters.update_bl_management": pin_management("update_bl_management", [
        Scenario(False), Scenario(False, dict(update_management=False)),
        Scenario(True, dict(update_management=False), nearby=())]),
    "UpdateParameters.update_management": pin_management("update_management", [
        Scenario(False, dict(update_bl_management=False)), Scenario(True, dict(update_bl_management=False))]),
    # k = lr x_max um_grad_scale d_max / dw: BL = ceil(k) under UBLM, A and B rebalanced unless d is clipped
    "UpdateParameters.um_grad_scale": pin_management("um_grad_scale", [
        Scenario(0.5), Scenario(2.0), Scenario(0.5, dict(update_bl_management=False))]),
    "UpdateParameters.res": pin_management("res", [Scenario(0.1), Scenario(8.0), Scenario(0.1, NO_UM)]),
    "UpdateParameters.sto_round": pin_management("sto_round", [Scenario(True, dict(res=0.1))],
                                                 sto_round_statistic),
    "UpdateParameters.x_res_implicit": pin_implicit_res("x_res_implicit", 0.3),
    "UpdateParameters.d_res_implicit": pin_implicit_res("d_res_implicit", 0.3),
}


def _pulse_type_check():
    for value in ("mean_count", "deterministic_implicit"):
        pin_pulse_type(value)()
    for value in ("none", "none_with_device"):  # BL 3 clips d in the default pulse type: its mean differs
        pin_pulse_type(value, dict(desired_bl=3))()
    pin_pulse_type("mean_count", dict(desired_bl=7))()
    stochastic_counts_statistic()


PINS["UpdateParameters.pulse_type"] = _pulse_type_check

A_OFF = dict(nu_k=0.05)  # nu depends on the conductance: wg_ratio, g_offset, w_offset, log_g0 act through it
PINS.update({
    "DriftParameter.nu": pin_drift("nu", [(0.1, {}, None), (0.3, dict(nu_dtod=0.2), None)]),
    "DriftParameter.nu_dtod": pin_drift("nu_dtod", [(0.3, {}, None)]),
    "DriftParameter.nu_std": pin_drift("nu_std", [(0.2, {}, None)], drift_statistic("nu_std")),
    "DriftParameter.wg_ratio": pin_drift("wg_ratio", [(2.0, dict(A_OFF, g_offset=0.1), None),
                                                      (2.0, dict(g_offset=0.1), None)]),
    "DriftParameter.g_offset": pin_drift("g_offset", [(0.1, A_OFF, None), (0.1, {}, None)]),
    "DriftParameter.w_offset": pin_drift("w_offset", [(0.1, A_OFF, None), (0.1, {}, None)]),
    "DriftParameter.nu_k": pin_drift("nu_k", [(0.05, {}, None), (-0.05, dict(g_offset=0.1), None)]),
    "DriftParameter.log_g0": pin_drift("log_g0", [(0.5, A_OFF, None)]),
    "DriftParameter.t_0": pin_drift("t_0", [(2.0, {}, None)]),
    # DELTAS include changes of 0.0095 and 0.0105: a 10% change of reset_tol 0.01 restarts other clocks;
    # 0.04 against w_offset 0.03: the offset term a = 0.03 is dropped as below the tolerance (not at 0.025)
    "DriftParameter.reset_tol": pin_drift("reset_tol", [(0.01, {}, None), (0.04, dict(w_offset=0.03), (0.025,))]),
    "DriftParameter.w_noise_std": pin_drift("w_noise_std", [(0.01, {}, None)], drift_statistic("w_noise_std")),
})

EXEMPT: dict = {}  # every update and drift field changes the physics


@pytest.mark.parametrize("name", sorted(PINS))
def test_pin(name):
    PINS[name]()


def test_every_update_and_drift_field_is_pinned():
    want = {f"{cls.__name__}.{f.name}" for cls in (UpdateParameters, DriftParameter) for f in dataclasses.fields(cls)}
    assert set(PINS) == want


def test_the_distance_can_fail():
    want = ref_observe_probabilities(UpdateParameters(), Scenario(None))
    assert distance(want, want) == 0
    assert distance({k: v * (1 + 1e-5) for k, v in want.items()}, want) > 1
