"""Pulsed update statistics (the model of ``crossbar/physics/pulses.py``) and the order semantics of applying pulses."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

import crossbar.physics.devices as D
from crossbar import AnalogTile, TileConfig, UpdateParameters
from crossbar.physics import pulses, rng
from crossbar.physics.devices.base import apply_events

F32 = np.float32
X = np.array([0.9, -0.45, 0.2, 0.05], F32)
DV = np.array([0.3, -0.12, 0.06], F32)
TRIALS = 3000


def ideal_constant_step(std):
    return D.ConstantStepDevice(dw_min_std=std, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=100.0, w_min=-100.0,
                                w_max_dtod=0.0, w_min_dtod=0.0)


def single_sample_changes(std, lr):
    """``TRIALS`` independent batch-1 updates (each sample has its own pulse trains), as (3, 4, TRIALS)."""
    tile = AnalogTile(3, 4, TileConfig(device=ideal_constant_step(std)), seed=7)
    out = np.empty((TRIALS, 3, 4))
    for t in range(TRIALS):
        before = tile.get_weights()
        tile.update(X, DV, lr)
        out[t] = tile.get_weights().astype(np.float64) - before
    return out.transpose(1, 2, 0)


@pytest.mark.parametrize("std", [0.0, 0.3])
def test_constant_step_mean_and_variance(std):
    lr, dw = 0.01, 0.001
    w = single_sample_changes(std, lr)
    # expected: E = -lr d x^T; Var = dw^2 (BL p (1 - p) + std^2 BL p) with p = p_x p_d from update management
    p_x, p_d, bl = pulses.probabilities(X[None], DV[None], lr, dw, UpdateParameters(), None, 0)
    p = (p_d[0][:, None] * p_x[0][None, :]).astype(np.float64)
    bl = int(bl[0])
    mean = -lr * np.outer(DV, X)
    var = dw**2 * (bl * p * (1 - p) + std**2 * bl * p)
    assert np.allclose(bl * p * dw, np.abs(mean), rtol=1e-5)  # no clipping: E[n] dw = lr |d x|
    n = w.shape[-1]
    # 5 standard errors per entry, 12 entries: false-failure rate < 12 * 5.7e-7
    assert (np.abs(w.mean(-1) - mean) <= 5 * np.sqrt(var / n)).all()
    # the sample variance of n draws has a relative std of about sqrt((kurtosis - 1) / n) <= 6%
    # for these binomials: a 25% band is more than 4 sigma
    assert np.allclose(w.var(-1), var, rtol=0.25)


def block_mean_std_error(xs, ds, lr, dw, std, copies, repeats):
    """Standard error of the mean change of the ``copies x copies`` weights that see line pair (i, j), per
    (i, j), after ``repeats`` updates with the samples ``xs``, ``ds`` (the binomial pulse model, written out here).

    Sample b (UBLM): ``k = lr max|x| max|d| / dw``, ``BL = ceil(k)``, ``p_x = B |x|``, ``p_d = A |d|`` with
    ``A = sqrt(lr / (dw BL) max|x| / max|d|)``, ``B = sqrt(lr / (dw BL) max|d| / max|x|)``. The x lines of one
    copy share nothing with the other copies, but all copies of weight (i, j) in one x line share that line's
    train: the block mean of the counts is ``sum_k Xbar_k Dbar_k`` (Xbar_k: the mean slot-k bit of the copies
    of x line j), with variance per slot ``E[Xbar^2] E[Dbar^2] - (p_x p_d)^2``, ``E[Xbar^2] = p_x^2 + p_x (1 -
    p_x) / copies``. The cycle-to-cycle noise adds ``std^2 dw^2 E[n]`` per weight, independently."""
    var = np.zeros((ds.shape[1], xs.shape[1]))
    for x, d in zip(xs.astype(np.float64), ds.astype(np.float64)):
        xm, dm = np.abs(x).max(), np.abs(d).max()
        bl = min(np.ceil(lr * xm * dm / dw), 31)
        px = np.sqrt(lr / (dw * bl) * dm / xm) * np.abs(x)
        pd = np.sqrt(lr / (dw * bl) * xm / dm) * np.abs(d)
        ex2, ed2 = px ** 2 + px * (1 - px) / copies, pd ** 2 + pd * (1 - pd) / copies
        var += dw ** 2 * bl * (np.outer(ed2, ex2) - np.outer(pd ** 2, px ** 2)
                               + std ** 2 * np.outer(pd, px) / copies ** 2)
    return np.sqrt(var * repeats) / repeats


def test_small_step_limit_is_sgd_for_many_samples():
    # the mean over a batch of updates is -lr sum_b d_b x_b^T (samples add)
    dev = ideal_constant_step(0.3)
    xs = np.array([[0.5, -0.2, 0.0], [0.1, 0.4, -0.3]], F32)
    ds = np.array([[0.23, -0.1], [-0.05, 0.3]], F32)  # k = 1.15 and 1.2: no BL at a ceil boundary
    copies, repeats, lr = 150, 4, 0.01
    tile = AnalogTile(2 * copies, 3 * copies, TileConfig(device=dev), seed=3)
    tile.update(np.tile(xs, (repeats, copies)), np.tile(ds, (repeats, copies)), lr)
    w = tile.get_weights().astype(np.float64).reshape(copies, 2, copies, 3).mean(axis=(0, 2)) / repeats
    mean = -lr * ds.T.astype(np.float64) @ xs
    se = block_mean_std_error(xs, ds, lr, dev.dw_min, dev.dw_min_std, copies, repeats)
    # 5 standard errors per entry, 6 entries: false-failure rate < 6 * 5.7e-7 (the block means are sums of
    # thousands of independent terms: normal); every |mean| exceeds 5 SE, so a wrong sign (a shift of
    # 2 |mean| > 10 SE) on any entry fails
    assert np.all(np.abs(mean) > 5 * se), np.abs(mean) / se
    assert np.all(np.abs(w - mean) <= 5 * se), (w - mean) / se


def test_coincidences_are_binomial():
    # one (x, d) pair in 20000 samples: each sample has its own trains, so the counts are i.i.d.
    samples = 20_000
    px = np.full((samples, 1), 0.6, F32)
    pd = np.full((samples, 1), 0.5, F32)
    bl = np.full(samples, 15, np.int32)
    b, i, j, n = pulses.stochastic_counts(px, pd, bl, rng.seed_key(2), 0)
    counts = np.zeros(samples, np.int64)
    counts[b] = n
    observed = np.bincount(counts, minlength=16)
    expected = stats.binom.pmf(np.arange(16), 15, 0.3) * samples
    keep = expected >= 5
    observed = np.r_[observed[keep], observed[~keep].sum()]
    expected = np.r_[expected[keep], expected[~keep].sum()]
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < stats.chi2.ppf(1 - 1e-6, observed.size - 1)  # false-failure rate 1e-6
    # and it can fail: the same counts do not fit p = 0.31
    wrong = stats.binom.pmf(np.arange(16), 15, 0.31) * samples
    wrong = np.r_[wrong[keep], wrong[~keep].sum()]
    assert ((observed - wrong) ** 2 / wrong).sum() > stats.chi2.ppf(1 - 1e-6, observed.size - 1)


def test_update_management_balances_and_clips_d_first():
    cfg = UpdateParameters()
    x_max, d_max = np.array([1.0, 0.5, 0.0], F32), np.array([2.0, 1e-3, 1.0], F32)
    bl, sd, sx = pulses.update_management(x_max, d_max, 0.1, 0.001, cfg)
    assert bl.tolist()[2] == 0  # no x: no update
    # k = lr x d / dw = 200 > BL: BL = 31, x never clipped, d clipped first
    assert bl[0] == 31 and sx[0] * x_max[0] <= 1 + 1e-6 and sd[0] * d_max[0] > 1.5
    # small k: BL = ceil(k); product A B = lr / (dw BL)
    k = 0.1 * 0.5 * 1e-3 / 0.001
    assert bl[1] == int(np.ceil(k)) and np.isclose(sd[1] * sx[1], 0.1 / (0.001 * bl[1]), rtol=1e-6)


def naive_apply(dev, w, params, ev, key, sample0):
    """The order semantics written as plainly as possible: event by event, pulse by pulse."""
    w = w.copy()
    target = params["persistent_weights"].copy() if dev.write_noise_std > 0 else w
    for e in range(ev.widx.size):
        k, s = int(ev.widx[e]), (sample0 + int(ev.sample[e])) & 0xFFFFFFFF
        p = {name: v[k:k + 1] for name, v in params.items()}
        g = dev.to_device(target[k:k + 1], p)
        up = ev.up[e:e + 1]
        if dev.summing():
            g = dev.step_n(g, ev.n[e:e + 1], up, p, rng.normal(key, rng.Stream.SUM_NOISE, k, s >> 2, 0)[s & 3])
        else:
            for t in range(int(ev.n[e])):
                g = dev.step(g, up, p, rng.normal(key, 4, k, s, t // 4)[t % 4])
        target[k] = dev.from_device(g, p)[0]
        if dev.write_noise_std > 0:
            w[k] = target[k] + F32(dev.write_noise_std * dev.dw_min) * rng.normal(key, 5, k, s)[0]
    return w, target


NOISY = {D.LinearStepDevice: dict(write_noise_std=0.5, gamma_up=0.3), D.SoftBoundsReferenceDevice:
         dict(reference_std=0.05, subtract_symmetry_point=True), D.ExpStepDevice: dict(dw_min_std_add=0.01),
         D.PiecewiseStepDevice: dict(piecewise_up=(0.5, 1, 2), piecewise_down=(2, 1, 0.5))}


@pytest.mark.parametrize("cls", D.PULSED_DEVICES, ids=lambda c: c.__name__)
@settings(max_examples=6)
@given(seed=st.integers(0, 1000), batch=st.integers(1, 9), lr=st.sampled_from([0.05, -0.2, 1.0]))
def test_apply_events_equals_the_naive_order_bit_for_bit(cls, seed, batch, lr):
    dev = cls(dw_min=0.02, w_max=0.3, w_min=-0.3, **NOISY.get(cls, {}))  # large steps: bounds are hit
    tile = AnalogTile(5, 7, TileConfig(device=dev), seed=seed)
    tile.set_weights(rng.uniform_array(rng.seed_key(seed), 0, (5, 7)) * F32(0.6) - F32(0.3))
    xs = rng.normal_array(rng.seed_key(seed), 1, (batch, 7))
    ds = rng.normal_array(rng.seed_key(seed), 2, (batch, 5))
    ev = pulses.coincidences(xs, ds, lr, dev.granularity(), tile.config.update, tile.key, 11)
    assert ev.n.sum() > 0
    flat = {k: v.reshape(-1).copy() for k, v in tile.params.items()}
    want_w, want_target = naive_apply(dev, tile.weights.reshape(-1), flat, ev, tile.key, 11)
    w = tile.weights.reshape(-1).copy()
    apply_events(dev, w, flat, ev, tile.key, 11)
    assert np.array_equal(w, want_w)
    if dev.write_noise_std > 0:
        assert np.array_equal(flat["persistent_weights"], want_target)


def test_mean_count_and_implicit_counts():
    x = np.array([[1.0, -0.5, 0.0]], F32)
    d = np.array([[0.5, -1.0]], F32)
    base = dict(update_management=False, update_bl_management=False, desired_bl=10)
    for ptype in ("mean_count", "deterministic_implicit"):
        cfg = UpdateParameters(pulse_type=ptype, **base)
        ev = pulses.coincidences(x, d, 0.01, 0.001, cfg, rng.seed_key(0), 0)
        c = ev.dense_counts(1, 2, 3)[0]
        # A = B = sqrt(lr / (dw BL)) = 1: p = |x|, |d|; counts rint(BL p_d p_x) with the coincidence sign
        assert c.tolist() == [[5, -2, 0], [-10, 5, 0]], ptype
        ev_neg = pulses.coincidences(x, d, -0.01, 0.001, cfg, rng.seed_key(0), 0)
        assert (ev_neg.dense_counts(1, 2, 3) == -c).all()


@pytest.mark.parametrize("lr", [0.0, 0.001, 0.006, 0.01, 0.5, 3.0])
@pytest.mark.parametrize("upd", [UpdateParameters(), UpdateParameters(update_management=False),
                                 UpdateParameters(update_bl_management=False, fixed_bl=False),
                                 UpdateParameters(update_management=False, update_bl_management=False, fixed_bl=False),
                                 UpdateParameters(desired_bl=5, update_bl_management=False, fixed_bl=False)])
def test_max_train_length_bounds_every_sample(lr, upd):
    """The BL cap that sizes the GPU's pulse words: no sample exceeds it, and some sample reaches it."""
    dw = 0.0003  # lr / dw is not an integer: ceil and floor differ; dw BL lies between lr and 2 lr at lr = 0.006
    x_max = np.array([0.0, 0.2, 1.0, 7.0], np.float32)
    d_max = np.array([0.5, 0.0, 1.0, 7.0], np.float32)
    bl, _, _ = pulses.update_management(x_max, d_max, lr, dw, upd)
    cap = pulses.max_train_length(lr, dw, upd)
    assert bl.max() <= cap
    # without BL management, lr / dw above desired_bl gives ceil(lr / dw) slots at full probability
    keeps = lr == 0 or upd.fixed_bl or upd.update_bl_management or np.float32(dw) * upd.desired_bl >= np.float32(lr)
    want = upd.desired_bl if keeps else int(np.ceil(np.float32(lr) / np.float32(dw)))
    assert cap == want
    if lr > 0:
        assert bl.max() == cap
