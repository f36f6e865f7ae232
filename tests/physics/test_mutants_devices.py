"""Device-config behaviours that mutation testing (mutmut, ``crossbar/physics/devices``) found unpinned.

Expectations come from the documented parameter ranges and gates of ``crossbar/physics/devices``; each test names
the mutant(s) it kills. (The registered step functions themselves carry a decorator and are not mutated
by mutmut 3; tests/physics/test_pin_devices.py pins them.)
"""

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import AnalogTile, TileConfig, UpdateParameters
from crossbar.physics import rng
from crossbar.physics.devices import base
from crossbar.physics.pulses import Events


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
    from crossbar.physics.devices.soft_bounds_reference import symmetry_point
    # den = dup / b+ - ddn / b- = 0.1 / 1 - 0.2 / 2 = 0 with num = -0.1: undefined, so 0 (and no warning)
    p = {k: np.array([v]) for k, v in dict(dwmin_up=0.1, dwmin_down=0.2, max_bound=1.0, min_bound=2.0).items()}
    assert symmetry_point(p).tolist() == [0.0]


def test_soft_bounds_reference_with_zero_bounds_or_stuck_devices_stays_finite():
    import numpy as np
    from crossbar.physics import rng
    # a zero upper bound and stuck devices (zero steps) must give finite bounds without a division warning
    for dev in (D.SoftBoundsReferenceDevice(w_max=0.0, w_max_dtod=0.0),
                D.SoftBoundsReferenceDevice(corrupt_devices_prob=1.0)):
        p = dev.sample((3, 4), rng.seed_key(2, 1))
        assert all(np.isfinite(v).all() for v in p.values())


def test_pow_step_reference_estimation_steps():
    import numpy as np
    from crossbar.physics import rng
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
    from crossbar.physics import rng
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


def test_scratch_arrays_are_zeroed_and_reused_per_size_and_dtype(monkeypatch):
    # _scratch#2-#8: only reached on a cache miss, which mutmut's forked workers never see unless the cache is
    # emptied (the parent process filled it while collecting coverage)
    monkeypatch.setattr(base, "_SCRATCH", {})
    a = base._scratch(12_345, np.int16)
    assert a.shape == (12_345,) and a.dtype == np.int16 and not a.any()
    assert base._scratch(12_345, np.int16) is a
    b = base._scratch(12_345, np.float64)
    assert b is not a and b.dtype == np.float64 and not b.any()


@pytest.mark.parametrize("dev", [D.SoftBoundsDevice(dw_min=0.02, dw_min_std=0.3, w_max=0.3, w_min=-0.3),
                                 D.ConstantStepDevice(dw_min=0.02, dw_min_std=0.5, w_max=0.3, w_min=-0.3)],
                         ids=["soft bounds", "constant step, pulse by pulse"])
def test_a_batch_equals_its_samples_applied_one_at_a_time(dev):
    # _rank_within_weight#15/#16 (rounds split at the wrong samples): the samples of a batch that touch the same
    # weight apply in batch order, each with its own draws (keyed by the running sample number), so one update
    # of 6 samples equals 6 updates of one sample; the bounds are near, so the order matters
    config = TileConfig(device=dev, update=UpdateParameters(desired_bl=15))
    x = rng.normal_array(rng.seed_key(1), 0, (6, 4))
    d = rng.normal_array(rng.seed_key(2), 0, (6, 3))
    one = np.zeros((6, 4), np.float32)
    one[:, 1] = x[:, 1]  # every sample touches the one weight (0, 1): consecutive events share it
    for x, d in ((x, d), (one, np.abs(d) * np.eye(3, dtype=np.float32)[[0]])):
        whole, single = AnalogTile(3, 4, config, seed=3), AnalogTile(3, 4, config, seed=3)
        whole.update(x, d, 0.2)
        for b in range(6):
            single.update(x[b:b + 1], d[b:b + 1], 0.2)
        assert np.abs(whole.get_weights()).max() > 0.04
        np.testing.assert_array_equal(whole.get_weights(), single.get_weights())


def test_write_noise_is_refused_by_devices_without_a_model_for_it():
    # validate#3 (only values above 1 were refused)
    with pytest.raises(ValueError, match="write_noise_std"):
        D.ConstantStepDevice(write_noise_std=0.5)


@pytest.mark.parametrize("enforce", [True, False])
def test_crossed_device_bounds_are_ordered_or_collapsed(enforce):
    # sample#66/#69/#75: with a large bound spread some devices draw min_bound > max_bound; enforce_consistency
    # swaps them (then max >= 0 >= min), else both become their midpoint
    dev = D.ConstantStepDevice(w_max=0.5, w_min=-0.5, w_max_dtod=1.5, w_min_dtod=1.5, enforce_consistency=enforce)
    key = rng.seed_key(9)
    b_up = 0.5 * (1 + 1.5 * base.d2d_normal(key, "max_bound", (8, 8)))
    b_dn = -0.5 * (1 + 1.5 * base.d2d_normal(key, "min_bound", (8, 8)))
    crossed = b_dn > b_up
    assert 0 < crossed.sum() < 64
    p = dev.sample((8, 8), key)
    if enforce:
        hi, lo = np.where(crossed, b_dn, b_up), np.where(crossed, b_up, b_dn)
        want_up, want_dn = np.abs(hi), -np.abs(lo)
    else:
        mid = (b_up + b_dn) / 2
        want_up, want_dn = np.where(crossed, mid, b_up), np.where(crossed, mid, b_dn)
    np.testing.assert_allclose(p["max_bound"], want_up, rtol=1e-6)
    np.testing.assert_allclose(p["min_bound"], want_dn, rtol=1e-6)


def test_decay_scale_is_one_minus_one_over_the_lifetime():
    # sample#222-#256: lifetime L > 1 gives the per-step scale 1 - 1/L; L <= 1 decays to the bias in one step
    # (scale 0); lifetime 0 is no decay (scale 1)
    for life, scale in ((3.0, 2 / 3), (1.5, 1 / 3), (0.5, 0.0), (0.0, 1.0)):
        p = D.ConstantStepDevice(lifetime=life).sample((2, 3), rng.seed_key(1))
        np.testing.assert_allclose(p["decay_scales"], scale, rtol=1e-6, err_msg=f"lifetime {life}")


def test_summing_devices_take_the_closed_form_far_from_the_bounds(monkeypatch):
    # apply_events#34-#36 (the gate of the closed form): a constant-step device with small noise never needs the
    # pulse-by-pulse path when no bound is near
    def fail(*args):
        raise AssertionError("pulse-by-pulse path taken")

    monkeypatch.setattr(base, "_pulse_run", fail)
    tile = AnalogTile(3, 4, TileConfig(device=D.ConstantStepDevice(dw_min=0.001, w_max=1.0, w_min=-1.0)), seed=1)
    tile.update(rng.normal_array(rng.seed_key(1), 0, (5, 4)), rng.normal_array(rng.seed_key(2), 0, (5, 3)), 0.01)
    assert np.abs(tile.get_weights()).max() > 0


def test_pulse_counts_of_an_update_that_misses_the_last_weight():
    # apply_events#144 (the bincount lost its length): counts are kept per weight whichever weights a batch hits
    tile = AnalogTile(2, 3, TileConfig(device=D.ConstantStepDevice(count_pulses=True)), seed=1)
    x = np.array([[1.0, 0.0, 0.0]], np.float32)
    tile.update(x, np.array([[0.5, 0.0]], np.float32), 0.01)
    up, down = tile.pulse_counts["up"], tile.pulse_counts["down"]
    assert down[0, 0] > 0 and up.sum() == 0 and down.sum() == down[0, 0]


@pytest.mark.parametrize("up", [True, False])
def test_closed_form_never_ends_beyond_a_bound(up):
    # _sum_unclipped#77/#80 (the margin applied on the wrong side): a run that ends 1e-5 beyond a bound is
    # applied pulse by pulse and clipped, not summed
    dev = D.ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, w_max=1.0, w_min=-1.0)
    params = {k: np.full(1, v, np.float32) for k, v in
              (("max_bound", 1.0), ("min_bound", -1.0), ("dwmin_up", 0.01), ("dwmin_down", 0.01))}
    events = Events(widx=np.zeros(1, np.int64), sample=np.zeros(1, np.int32), n=np.array([2], np.int32),
                    up=np.array([up]))
    target = np.array([0.98001 if up else -0.98001], np.float32)  # two steps overshoot by 1e-5
    base.apply_events(dev, target, params, events, rng.seed_key(1), 0)
    assert target[0] == (1.0 if up else -1.0)


def test_a_weight_touched_by_300_samples_of_one_batch_keeps_their_order():
    # the rank sort keys (apply_events): ranks above 255 need more than 8 bits; a key type too narrow for them
    # wraps, and the samples of a weight are no longer applied in batch order
    config = TileConfig(device=D.SoftBoundsDevice(dw_min=0.01, dw_min_std=0.3, w_max=0.3, w_min=-0.3),
                        update=UpdateParameters(desired_bl=3))
    x = np.ones((300, 1), np.float32)
    d = np.where(np.arange(300) % 7 < 4, 1.0, -1.0).astype(np.float32)[:, None]  # mostly down, some up
    whole, single = AnalogTile(1, 1, config, seed=5), AnalogTile(1, 1, config, seed=5)
    whole.update(x, d, 0.01)
    for b in range(300):
        single.update(x[b:b + 1], d[b:b + 1], 0.01)
    assert whole.get_weights()[0, 0] != 0
    np.testing.assert_array_equal(whole.get_weights(), single.get_weights())
