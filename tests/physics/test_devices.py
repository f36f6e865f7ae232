"""Device update rules under random parameters: bounds, step laws, symmetry points."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import crossbar.physics.devices as D
from crossbar.physics import rng
from crossbar.physics.devices.soft_bounds_reference import symmetry_point

F32 = np.float32
SHAPE = (6, 7)

common = dict(
    dw_min=st.floats(1e-4, 0.05), dw_min_dtod=st.floats(0, 0.5), dw_min_std=st.floats(0, 1.0),
    up_down=st.floats(-0.5, 0.5), up_down_dtod=st.floats(0, 0.1), w_max=st.floats(0.1, 2.0),
    w_min=st.floats(-2.0, -0.1), w_max_dtod=st.floats(0, 0.5), w_min_dtod=st.floats(0, 0.5),
    construction_seed=st.integers(0, 2**32),
)
extra = {
    D.ConstantStepDevice: {},
    D.LinearStepDevice: dict(gamma_up=st.floats(0, 1), gamma_down=st.floats(0, 1), mult_noise=st.booleans(),
                             mean_bound_reference=st.booleans()),
    D.SoftBoundsDevice: dict(mult_noise=st.booleans()),
    D.SoftBoundsPmaxDevice: dict(p_max=st.integers(10, 2000), alpha=st.floats(1e-4, 0.01)),
    D.SoftBoundsReferenceDevice: dict(mult_noise=st.booleans(), slope_up_dtod=st.floats(0, 0.3),
                                      slope_down_dtod=st.floats(0, 0.3), reference_std=st.floats(0, 0.2),
                                      subtract_symmetry_point=st.booleans()),
    D.ExpStepDevice: dict(dw_min_std_add=st.floats(0, 0.05), dw_min_std_slope=st.floats(0, 0.2)),
    D.PowStepDevice: dict(pow_gamma=st.floats(0.3, 3), pow_gamma_dtod=st.floats(0, 0.3)),
    D.PowStepReferenceDevice: dict(pow_gamma=st.floats(0.3, 3), reference_std=st.floats(0, 0.1),
                                   subtract_symmetry_point=st.booleans(), n_estimation_steps=st.just(200)),
    D.PiecewiseStepDevice: dict(piecewise_up=st.lists(st.floats(0, 2), min_size=3, max_size=3),
                                piecewise_down=st.lists(st.floats(0, 2), min_size=3, max_size=3)),
}
assert set(extra) == set(D.PULSED_DEVICES)


def devices(cls):
    fields = {k: v for k, v in common.items() if cls is not D.SoftBoundsPmaxDevice or k not in
              ("dw_min", "up_down", "w_max", "w_min")}
    return st.builds(cls, **fields, **extra[cls])


def sample(dev):
    return dev.sample(SHAPE, rng.seed_key(dev.construction_seed or 0, 1))


def noise_free(dev):
    return dev.replace(dw_min_std=0.0)


@pytest.mark.parametrize("cls", D.PULSED_DEVICES, ids=lambda c: c.__name__)
@settings(max_examples=25)
@given(data=st.data())
def test_weights_never_leave_the_bounds(cls, data):
    dev = data.draw(devices(cls))
    p = sample(dev)
    lo, hi = p["min_bound"], p["max_bound"]
    u = rng.uniform_array(rng.seed_key(1), 0, SHAPE).astype(F32)
    g = lo + (hi - lo) * u
    for t in range(100):
        up = rng.uniform_array(rng.seed_key(2), 0, SHAPE, c1=t) < F32(data.draw(st.floats(0, 1), label="p_up"))
        xi = rng.normal_array(rng.seed_key(3), 0, SHAPE, c1=t) * F32(3)  # heavy noise: worst case for bounds
        g = dev.step(g, up, p, xi)
        assert g.dtype == F32
        assert (g >= lo).all() and (g <= hi).all()


def expected_step(dev, g, up, p):
    """The deterministic step of each device model (the step laws of the ``crossbar.physics.devices`` module docstrings)
    in float64, written independently of the package."""
    g, q = g.astype(np.float64), {k: v.astype(np.float64) for k, v in p.items()}
    bu, bd, du, dd = q["max_bound"], q["min_bound"], q["dwmin_up"], q["dwmin_down"]
    if isinstance(dev, D.ConstantStepDevice):
        step = np.where(up, du, -dd)
    elif isinstance(dev, D.LinearStepDevice):  # SoftBounds and Pmax are LinearSteps
        step = np.where(up, q["slope_up"] * g + du, -(q["slope_down"] * g + dd))
    elif isinstance(dev, D.SoftBoundsReferenceDevice):
        step = np.where(up, du * (1 - np.where(bu > 0, g / bu, 0)), -dd * (1 - np.where(bd < 0, g / bd, 0)))
    elif isinstance(dev, D.ExpStepDevice):
        z = 2 * dev.a * g / (bu - bd) + dev.b
        step = np.where(up, np.maximum(1 - dev.A_up * np.exp(dev.gamma_up * z), 0) * du,
                        -np.maximum(1 - dev.A_down * np.exp(-dev.gamma_down * z), 0) * dd)
    elif isinstance(dev, D.PowStepDevice):
        r = bu - bd
        step = np.where(up, du * ((bu - g) / r) ** q["gamma_up"], -dd * ((g - bd) / r) ** q["gamma_down"])
    elif isinstance(dev, D.PiecewiseStepDevice):
        nodes = np.asarray(np.where(up, 1, 0))
        n = len(dev.piecewise_up) - 1
        qq = np.maximum((g - bd) / (bu - bd) * n, 0)
        k = np.minimum(np.floor(qq), n - 1).astype(int)
        t = np.minimum(qq - k, 1)
        vu, vd = np.asarray(dev.piecewise_up), np.asarray(dev.piecewise_down)
        v = np.where(nodes == 1, (1 - t) * vu[k] + t * vu[k + 1], (1 - t) * vd[k] + t * vd[k + 1])
        step = np.where(up, du * v, -dd * v)
    return np.clip(g + step, bd, bu) - g


@pytest.mark.parametrize("cls", D.PULSED_DEVICES, ids=lambda c: c.__name__)
@settings(max_examples=25)
@given(data=st.data())
def test_noise_free_steps_follow_the_formulas(cls, data):
    dev = noise_free(data.draw(devices(cls)))
    p = sample(dev)
    lo, hi = p["min_bound"], p["max_bound"]
    g = (lo + (hi - lo) * rng.uniform_array(rng.seed_key(4), 0, SHAPE)).astype(F32)
    for up_value in (True, False):
        up = np.full(SHAPE, up_value)
        got = dev.step(g, up, p, np.zeros(SHAPE, F32)).astype(np.float64) - g
        want = expected_step(dev, g, up, p)
        scale = np.maximum(np.abs(p["dwmin_up"]), np.abs(p["dwmin_down"])).astype(np.float64)
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5 * scale + 4 * np.spacing(np.abs(g).astype(F32))), \
            (up_value, np.abs(got - want).max())
        sign_ok = got >= 0 if up_value else got <= 0
        assert sign_ok[np.abs(want) > 1e-6 * scale].all() or isinstance(dev, D.LinearStepDevice)


@pytest.mark.parametrize("cls", [D.SoftBoundsDevice, D.SoftBoundsReferenceDevice, D.SoftBoundsPmaxDevice],
                         ids=lambda c: c.__name__)
@settings(max_examples=25)
@given(data=st.data())
def test_soft_bounds_steps_vanish_at_the_bounds(cls, data):
    dev = data.draw(devices(cls))
    p = sample(dev)
    xi = rng.normal_array(rng.seed_key(5), 0, SHAPE)
    at_top = dev.step(p["max_bound"].copy(), np.ones(SHAPE, bool), p, xi)
    at_bottom = dev.step(p["min_bound"].copy(), np.zeros(SHAPE, bool), p, xi)
    ok = (p["max_bound"] > 0) & (p["min_bound"] < 0) & (p["dwmin_up"] > 0)
    # with additive noise (SoftBoundsReference default) the mean step vanishes but one noisy pulse may still
    # push down from the top bound; the clip keeps it at the bound from above
    assert (at_top[ok] <= p["max_bound"][ok]).all() and (at_bottom[ok] >= p["min_bound"][ok]).all()
    # noise free, the step shrinks linearly to zero at the bound: a fraction f of the way from 0 to the
    # bound, the step is (1 - f) of the step at 0 (hard bounds would give the full step everywhere); on
    # devices whose step is smaller than the bound, so that the clip does not cut it
    ok &= (p["dwmin_up"] < p["max_bound"]) & (p["dwmin_down"] < -p["min_bound"])
    quiet = noise_free(dev)
    up, down = np.ones(SHAPE, bool), np.zeros(SHAPE, bool)
    for f in (0.0, 0.5, 0.9, 1.0):
        g_top, g_bottom = (f * p["max_bound"]).astype(F32), (f * p["min_bound"]).astype(F32)
        step_up = quiet.step(g_top.copy(), up, p, xi).astype(np.float64) - g_top
        step_down = g_bottom - quiet.step(g_bottom.copy(), down, p, xi).astype(np.float64)
        tol = 1e-4 * p["dwmin_up"] + 2 * np.spacing(np.abs(p["max_bound"]))
        assert np.allclose(step_up[ok], (1 - f) * p["dwmin_up"][ok], rtol=1e-4, atol=tol[ok].max()), f
        tol = 1e-4 * p["dwmin_down"] + 2 * np.spacing(np.abs(p["min_bound"]))
        ok_down = ok & (p["dwmin_down"] > 0)
        assert np.allclose(step_down[ok_down], (1 - f) * p["dwmin_down"][ok_down], rtol=1e-4,
                           atol=tol[ok_down].max() if ok_down.any() else 0), f


@settings(max_examples=30)
@given(data=st.data())
def test_soft_bounds_reference_symmetry_point(data):
    dev = noise_free(data.draw(devices(D.SoftBoundsReferenceDevice))).replace(reference_std=0.0)
    p = sample(dev)
    ok = (p["max_bound"] > 0) & (p["min_bound"] < 0)
    sp = symmetry_point({k: v.astype(np.float64) for k, v in p.items()})
    zero = np.zeros(SHAPE, F32)
    g = sp.astype(F32)
    up = dev.step(g, np.ones(SHAPE, bool), p, zero) - g
    down = g - dev.step(g, np.zeros(SHAPE, bool), p, zero)
    step = 2 * np.maximum(p["dwmin_up"], p["dwmin_down"])  # one step from sp must not reach a bound
    inside = ok & (sp - step > p["min_bound"]) & (sp + step < p["max_bound"])
    assert np.allclose(up[inside], down[inside], rtol=1e-3, atol=1e-6 * dev.dw_min)
    if dev.subtract_symmetry_point:  # the reference sits at the symmetry point: w = 0 is symmetric
        assert np.allclose(p["reference"][inside], sp[inside] + dev.reference_mean, rtol=1e-5, atol=1e-7)


@settings(max_examples=20)
@given(data=st.data())
def test_pow_step_reference_symmetry_point_is_a_fixed_point(data):
    dev = noise_free(data.draw(devices(D.PowStepReferenceDevice))).replace(
        subtract_symmetry_point=True, reference_std=0.0, reference_mean=0.0, n_estimation_steps=-1,
        dw_min=0.01)
    p = {k: v.astype(np.float64) for k, v in sample(dev).items()}
    sp = p["reference"]
    r = p["max_bound"] - p["min_bound"]
    up = p["dwmin_up"] * ((p["max_bound"] - sp) / r) ** p["gamma_up"]
    down = p["dwmin_down"] * ((sp - p["min_bound"]) / r) ** p["gamma_down"]
    # after 10 R / dw_min up/down pairs (unless capped at 10000) the simulated point has converged: the up
    # and down steps there differ by under 0.2% of a step (worst seen over 1000 examples: 0.017%; with
    # 2 R / dw_min pairs: 7%)
    ok = (r > 0) & (10 * r / np.minimum(p["dwmin_up"], p["dwmin_down"]) < 10000)
    assert (np.abs(up - down)[ok] <= 0.002 * np.maximum(p["dwmin_up"], p["dwmin_down"])[ok]).all()


def test_d2d_sampling_follows_the_spec():
    dev = D.ConstantStepDevice(w_max_dtod=0.0, w_min_dtod=0.0, dw_min_dtod=0.0, up_down=0.2, up_down_dtod=0.0)
    p = sample(dev)
    assert (p["max_bound"] == F32(0.6)).all() and (p["min_bound"] == F32(-0.6)).all()
    # up_down > 0 shrinks the down step: dwmin_down = (1 - 0.2) dw_min
    assert np.allclose(p["dwmin_up"], 0.001) and np.allclose(p["dwmin_down"], 0.0008)
    big = D.ConstantStepDevice(dw_min_dtod=0.3).sample((200, 200), rng.seed_key(9, 1))
    rel = big["dwmin_up"] / 0.001 - 1
    assert abs(rel.std() - 0.3) < 0.01 and abs(rel.mean()) < 0.005  # 40k draws: std error 1e-3
    corrupt = D.ConstantStepDevice(corrupt_devices_prob=0.5).sample((100, 100), rng.seed_key(3, 1))
    stuck = corrupt["dwmin_up"] == 0
    assert abs(stuck.mean() - 0.5) < 0.03
    assert (corrupt["max_bound"][stuck] == corrupt["min_bound"][stuck]).all()
    assert (np.abs(corrupt["max_bound"][stuck]) <= 0.1 + 1e-7).all()


def test_same_construction_seed_same_parameters():
    dev = D.SoftBoundsReferenceDevice(reference_std=0.1, slope_up_dtod=0.1)
    a = dev.sample((5, 5), rng.seed_key(42, 1))
    b = dev.sample((5, 5), rng.seed_key(42, 1))
    c = dev.sample((5, 5), rng.seed_key(43, 1))
    assert all((a[k] == b[k]).all() for k in a)
    assert not (a["reference"] == c["reference"]).all()
