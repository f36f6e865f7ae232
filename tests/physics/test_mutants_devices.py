"""Device-config behaviours that mutation testing (mutmut, ``crossbar/devices``) found unpinned.

Expectations come from the documented parameter ranges and gates of ``crossbar/devices``; each test names
the mutant(s) it kills. (The registered step functions themselves carry a decorator and are not mutated
by mutmut 3; tests/physics/test_pin_devices.py pins them.)
"""

import numpy as np
import pytest

import crossbar.devices as D
from crossbar import rng
from crossbar.devices import base
from crossbar.pulses import Events


@pytest.mark.parametrize("kwargs,field", [
    (dict(alpha=0.0), "alpha"), (dict(p_max=0), "p_max"), (dict(range_min=float("nan")), "range_min"),
    (dict(range_max=float("inf")), "range_max"), (dict(range_min=1.0, range_max=1.0), "range_max"),
])
def test_soft_bounds_pmax_rejects_bad_mapping_inputs_by_name(kwargs, field):
    # the p_max/alpha/range inputs are validated before the mapping to w_min, w_max, dw_min uses them, so
    # the error names the input (not a derived field, nor a ZeroDivisionError); an empty range is refused
    with pytest.raises(ValueError, match=rf"SoftBoundsPmaxDevice\.{field} = "):
        D.SoftBoundsPmaxDevice(**kwargs)


@pytest.mark.parametrize("n,ok", [(1, True), (2, True), (64, True), (65, False)])
def test_piecewise_node_count_is_one_to_sixty_four(n, ok):
    nodes = tuple(float(v) for v in range(1, n + 1))
    if ok:
        assert D.PiecewiseStepDevice(piecewise_up=nodes, piecewise_down=nodes).piecewise_up == nodes
    else:
        with pytest.raises(ValueError, match="1 to 64 node values"):
            D.PiecewiseStepDevice(piecewise_up=nodes, piecewise_down=nodes)


def test_constant_step_closed_form_gate_includes_its_limit():
    # "the dw_min_std <= 0.33 gate" (constant_step_n): 0.33 itself is summed in closed form
    assert D.ConstantStepDevice(dw_min_std=0.33).summing()
    assert not D.ConstantStepDevice(dw_min_std=0.331).summing()


@pytest.mark.parametrize("kwargs,complex_noise", [
    (dict(dw_min_std=0.1, dw_min_std_add=0.01), 1.0), (dict(dw_min_std=0.1, dw_min_std_slope=0.2), 1.0),
    (dict(dw_min_std=0.1, dw_min_std_add=0.01, dw_min_std_slope=0.2), 1.0),
    (dict(dw_min_std=0.1), 0.0), (dict(dw_min_std=0.0, dw_min_std_add=0.01), 0.0), (dict(dw_min_std=0.0), 0.0),
])
def test_exp_step_state_dependent_noise_is_selected_only_when_configured(kwargs, complex_noise):
    # state-dependent noise needs a noise scale (dw_min_std > 0) and an additive or |w| part
    assert D.ExpStepDevice(**kwargs).scalars()["complex_noise"] == complex_noise


def test_exp_step_granularity_falls_back_to_dw_min_without_a_down_step():
    # granularity = the mean down step at w = 0, or dw_min when that step is 0 (A_down exp(-gamma_down b) >= 1)
    dev = D.ExpStepDevice(A_down=100.0, dw_min=0.002)  # 100 exp(-12.79 * 0.2425) = 4.5 > 1
    assert dev.granularity() == 0.002


def test_soft_bounds_symmetry_point_is_zero_where_undefined():
    import numpy as np
    from crossbar.devices.soft_bounds_reference import symmetry_point
    # den = dup / b+ - ddn / b- = 0.1 / 1 - 0.2 / 2 = 0 with num = -0.1: undefined, so 0 (and no warning)
    p = {k: np.array([v]) for k, v in dict(dwmin_up=0.1, dwmin_down=0.2, max_bound=1.0, min_bound=2.0).items()}
    assert symmetry_point(p).tolist() == [0.0]


def test_soft_bounds_reference_with_zero_bounds_or_stuck_devices_stays_finite():
    import numpy as np
    from crossbar import rng
    # a zero upper bound and stuck devices (zero steps) must give finite bounds without a division warning
    for dev in (D.SoftBoundsReferenceDevice(w_max=0.0, w_max_dtod=0.0),
                D.SoftBoundsReferenceDevice(corrupt_devices_prob=1.0)):
        p = dev.sample((3, 4), rng.seed_key(2, 1))
        assert all(np.isfinite(v).all() for v in p.values())


def test_pow_step_reference_estimation_steps():
    import numpy as np
    from crossbar import rng
    key = rng.seed_key(3, 1)
    base = dict(pow_gamma_dtod=0.0, subtract_symmetry_point=True, dw_min_dtod=0.0, up_down=0.2, w_max_dtod=0.0,
                w_min_dtod=0.0, up_down_dtod=0.0)
    # n_estimation_steps <= 0 means automatic: 0 and -1 agree
    auto = D.PowStepReferenceDevice(**base, n_estimation_steps=-1).sample((2, 3), key)["reference"]
    zero = D.PowStepReferenceDevice(**base, n_estimation_steps=0).sample((2, 3), key)["reference"]
    np.testing.assert_array_equal(zero, auto)
    # one up/down pair from 0: sp = -ddn ((0 - b-) / R)^g + dup ((b+ - 0) / R)^g, here with g = 1, R = 1.2
    one = D.PowStepReferenceDevice(**base, n_estimation_steps=1).sample((2, 3), key)["reference"]
    dup, ddn = 0.001, 0.001 * (1 - 0.2)  # up_down = 0.2 shrinks the down steps
    np.testing.assert_allclose(one, -ddn * 0.5 + dup * 0.5, rtol=1e-5)
    # stuck devices have an empty range: their symmetry point (and so their reference) stays 0
    stuck = D.PowStepReferenceDevice(**base, corrupt_devices_prob=1.0).sample((2, 3), key)["reference"]
    assert not stuck.any()


def test_linear_step_reversal_needs_multiplicative_noise():
    for kw in (dict(reverse_up=True), dict(reverse_down=True)):  # either reversal alone is refused
        with pytest.raises(ValueError, match="mult_noise"):
            D.LinearStepDevice(mult_noise=False, **kw)


def test_linear_step_zero_reference_gives_zero_slope():
    import numpy as np
    from crossbar import rng
    # a reference point at 0 (w_max = 0 or w_min = 0 with mean-bound references) has no slope: 0, finite,
    # without a division warning; the other side keeps -gamma dwmin / reference
    for kw, zero in ((dict(w_max=0.0), "slope_up"), (dict(w_min=0.0), "slope_down")):
        dev = D.LinearStepDevice(gamma_up=0.5, gamma_down=0.5, **kw)
        p = dev.sample((2, 3), rng.seed_key(4, 1))
        assert p[zero].dtype == np.float32 and not p[zero].any()
        other = "slope_down" if zero == "slope_up" else "slope_up"
        assert np.isfinite(p[other]).all() and p[other].any()


def test_pow_step_reference_zero_range_devices_keep_a_zero_symmetry_point():
    # pow_step._symmetry_point#95: crossed bounds (possible without enforce_consistency) collapse to their
    # midpoint; such a device has no range, so no symmetry point to estimate: its reference stays
    # reference_mean (+ 0), even with non-zero steps and a fixed number of estimation pairs
    dev = D.PowStepReferenceDevice(enforce_consistency=False, w_max_dtod=1.5, w_min_dtod=1.5, reference_mean=0.0,
                                   dw_min_dtod=0.0, up_down_dtod=0.0, pow_gamma_dtod=0.0,
                                   reference_std=0.0, subtract_symmetry_point=True, n_estimation_steps=50)
    p = dev.sample((20, 20), rng.seed_key(4, 1))
    flat = p["max_bound"] == p["min_bound"]
    assert flat.sum() >= 5 and ((p["dwmin_up"] != 0) | (p["dwmin_down"] != 0))[flat].all()
    assert (p["reference"][flat] == 0).all()
    assert (p["reference"][~flat] != 0).any()  # elsewhere the estimate moves it


@pytest.mark.parametrize("kw,zero", [(dict(w_max=0.0, gamma_up=0.0, gamma_up_dtod=0.0), "slope_up"),
                                     (dict(w_min=0.0, gamma_down=0.0, gamma_down_dtod=0.0), "slope_down")])
def test_linear_step_zero_gamma_at_a_zero_reference_is_a_quiet_zero_slope(kw, zero):
    # linear_step.sample_extra#55, #57: gamma 0 at a reference point 0 is 0/0; the slope is 0, with no
    # 'invalid value' warning (warnings are errors in this suite)
    p = D.LinearStepDevice(**kw).sample((2, 3), rng.seed_key(4, 1))
    assert not p[zero].any()


def test_register_step_files_the_function_under_its_name():
    # register_step#1 (the registry held None): registration runs at import, before mutmut switches a mutant
    # on, so it is exercised here directly
    def my_test_step(w, up, p, xi, c):
        return w

    try:
        assert base.register_step(my_test_step) is my_test_step
        assert base.STEPS["my_test_step"] is my_test_step
    finally:
        base.STEPS.pop("my_test_step", None)


def test_closed_form_runs_apply_far_from_the_bounds_call_after_call():
    # _sum_unclipped#26/#43/#54: a summing device applies the runs of weights far from their bounds in closed
    # form, w + sum of n dw (1 + dw_min_std xi / sqrt(n)) in sample order, and returns nothing for the exact path;
    # its float64 scratch stays zeroed, so the next call does the same (a NaN left there would send every later
    # event to the exact path: same weights, lost speed)
    dev = D.ConstantStepDevice(dw_min=0.01, dw_min_std=0.3, w_max=1.0, w_min=-1.0)
    size = 6
    params = {k: np.full(size, v, np.float32) for k, v in
              (("max_bound", 1.0), ("min_bound", -1.0), ("dwmin_up", 0.01), ("dwmin_down", 0.012))}
    events = Events(widx=np.array([0, 3, 0, 5], np.int64), sample=np.array([0, 0, 1, 1], np.int32),
                    n=np.array([3, 1, 2, 4], np.int32), up=np.array([True, False, False, True]))
    key = rng.seed_key(5)
    s = np.array([7, 7, 8, 8], np.uint32)
    z = base.sum_noise(key, events.widx.astype(np.uint32), s).astype(np.float64)
    steps = np.where(events.up, 0.01, -0.012) * (events.n + 0.3 * np.sqrt(events.n) * z)
    for call in range(2):
        target = np.linspace(-0.2, 0.2, size).astype(np.float32)
        expected = target.astype(np.float64)
        np.add.at(expected, events.widx, steps)
        todo = base._sum_unclipped(dev, target, params, events, key, s)
        assert todo.size == 0, call
        np.testing.assert_allclose(target, expected, rtol=0, atol=1e-6)
    near = np.full(size, 0.999, np.float32)  # an up run from 0.999 could cross max_bound: exact path
    assert 0 in base._sum_unclipped(dev, near, params, events, key, s)
