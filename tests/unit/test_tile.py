"""AnalogTile: construction, seeds, input checks, pulse types, weights access, periodic operations, state."""

import json

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import AnalogTile, IOParameters, TileConfig, UpdateParameters
from crossbar.physics import rng
from crossbar.tiles.characterize import program_weights

F32 = np.float32
PERFECT = IOParameters(is_perfect=True)


def inputs(seed, batch, size, scale=1.0):
    return rng.normal_array(rng.seed_key(seed), 0, (batch, size)) * F32(scale)


def test_ideal_mac_forward_backward_update_exact():
    # aihwkit invariant 1: perfect IO and an ideal device are an exact multiply-accumulate
    cfg = TileConfig(device=D.IdealDevice(), forward=PERFECT, backward=PERFECT)
    tile = AnalogTile(5, 7, cfg, seed=1)
    w = inputs(1, 5, 7, 0.3)
    tile.set_weights(w)
    x, d = inputs(2, 4, 7), inputs(3, 4, 5)
    assert np.array_equal(tile.forward(x), x @ w.T)
    assert np.array_equal(tile.backward(d), d @ w)
    tile.update(x, d, 0.1)
    assert np.array_equal(tile.get_weights(), w - F32(0.1) * (d.T @ x))


def test_same_seed_same_result_other_seed_differs():
    def run(seed):
        tile = AnalogTile(8, 9, seed=seed)
        for t in range(3):
            tile.update(inputs(t, 4, 9), inputs(t + 10, 4, 8, 0.1), 0.1)
        return tile.get_weights(), tile.forward(inputs(7, 3, 9))
    (w1, y1), (w2, y2), (w3, y3) = run(5), run(5), run(6)
    assert np.array_equal(w1, w2) and np.array_equal(y1, y2)
    assert not np.array_equal(w1, w3) and not np.array_equal(y1, y3)


def test_device_parameters_depend_only_on_the_construction_seed():
    dev = D.SoftBoundsDevice(construction_seed=77)
    a = AnalogTile(6, 5, TileConfig(device=dev), seed=1).hidden_parameters()
    b = AnalogTile(6, 5, TileConfig(device=dev), seed=2).hidden_parameters()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = AnalogTile(6, 5, TileConfig(device=dev.replace(construction_seed=78)), seed=1).hidden_parameters()
    assert not np.array_equal(a["max_bound"], c["max_bound"])
    # without a construction seed the tile seed decides
    e = AnalogTile(6, 5, seed=3).hidden_parameters()
    f = AnalogTile(6, 5, seed=4).hidden_parameters()
    assert not np.array_equal(e["dwmin_up"], f["dwmin_up"])


@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 6), F32), r"shape \(batch, 5\)"),
    (np.zeros((2, 5, 1), F32), "shape"),
    (np.array([[np.nan] * 5]), "NaN or Inf"),
    (np.array([[np.inf] * 5]), "NaN or Inf"),
    (np.array([["a"] * 5]), "real numbers"),
])
def test_bad_inputs_raise_and_change_nothing(bad, match):
    tile = AnalogTile(3, 5, seed=1)
    tile.set_weights(inputs(0, 3, 5, 0.1))
    before = tile.get_weights()
    counters = dict(tile.counters)
    with pytest.raises((ValueError, TypeError), match=match):
        tile.forward(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        tile.update(bad, np.zeros((bad.shape[0], 3), F32), 0.1)
    assert np.array_equal(tile.get_weights(), before) and tile.counters == counters


def test_other_bad_arguments():
    tile = AnalogTile(3, 5, seed=1)
    with pytest.raises(ValueError, match="same batch size"):
        tile.update(np.zeros((2, 5)), np.zeros((3, 3)), 0.1)
    with pytest.raises(ValueError, match="lr must be finite"):
        tile.update(np.zeros((2, 5)), np.zeros((2, 3)), float("nan"))
    with pytest.raises(ValueError, match="weights must have shape"):
        tile.set_weights(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="out_size"):
        AnalogTile(0, 3)
    with pytest.raises(TypeError, match="TileConfig"):
        AnalogTile(2, 3, D.ConstantStepDevice())
    with pytest.raises(ValueError, match="backend"):
        AnalogTile(2, 3, backend="torch")
    with pytest.raises(ValueError, match="unknown hidden parameter"):
        tile.set_hidden_parameters({"nope": np.zeros((3, 5))})


def test_set_weights_clips_to_bounds_and_hidden_parameters_round_trip():
    dev = D.ConstantStepDevice(w_max_dtod=0.0, w_min_dtod=0.0)
    tile = AnalogTile(4, 4, TileConfig(device=dev), seed=2)
    tile.set_weights(np.full((4, 4), 5.0))
    assert np.all(tile.get_weights() == F32(0.6))  # aihwkit invariant 6: max_bound == 0.6 everywhere
    hp = tile.hidden_parameters()
    assert set(hp) == set(dev.hidden_names) and hp["max_bound"].shape == (4, 4)
    hp["max_bound"][:] = 0.3
    tile.set_hidden_parameters({"max_bound": hp["max_bound"]})
    assert np.array_equal(tile.hidden_parameters()["max_bound"], hp["max_bound"])


def test_pulse_type_none_is_floating_point_and_none_with_device_clips():
    x, d = inputs(1, 3, 4), inputs(2, 3, 2)
    fp = AnalogTile(2, 4, TileConfig(update=UpdateParameters(pulse_type="none")), seed=1)
    assert isinstance(fp.device, D.IdealDevice)  # the pulsed device is replaced (pulse type NONE)
    fp.update(x, d, 0.5)
    assert np.array_equal(fp.get_weights(), -F32(0.5) * (d.T @ x))
    clipped = AnalogTile(2, 4, TileConfig(update=UpdateParameters(pulse_type="none_with_device")), seed=1)
    clipped.update(x, d, 50.0)
    w, hp = clipped.get_weights(), clipped.hidden_parameters()
    assert (w <= hp["max_bound"]).all() and (w >= hp["min_bound"]).all()
    assert np.array_equal(w, np.clip(-F32(50) * (d.T @ x), hp["min_bound"], hp["max_bound"]))


def test_pulse_counters_count_every_pulse():
    dev = D.ConstantStepDevice(count_pulses=True, dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0,
                               w_max=10, w_min=-10, w_max_dtod=0, w_min_dtod=0)
    tile = AnalogTile(3, 4, TileConfig(device=dev), seed=3)
    tile.update(inputs(1, 5, 4), inputs(2, 5, 3, 0.1), 0.2)
    up, down = tile.pulse_counts["up"], tile.pulse_counts["down"]
    assert up.sum() + down.sum() > 0
    # noise and bounds off: the weight is exactly dw_min * (ups - downs)
    assert np.allclose(tile.get_weights(), 0.001 * (up - down), atol=1e-6)


def test_write_noise_keeps_a_persistent_weight():
    dev = D.SoftBoundsDevice(write_noise_std=2.0, dw_min_std=0.0)
    tile = AnalogTile(50, 60, TileConfig(device=dev), seed=4)
    tile.set_weights(np.full((50, 60), 0.1))
    hp = tile.hidden_parameters()
    noise = tile.get_weights() - hp["persistent_weights"]
    assert np.allclose(hp["persistent_weights"], np.clip(0.1, hp["min_bound"], hp["max_bound"]))
    assert abs(noise.std() - 2.0 * 0.001) < 0.1 * 0.002  # 3000 draws: relative std error 1.3%
    quiet = AnalogTile(5, 6, TileConfig(device=dev.replace(apply_write_noise_on_set=False)), seed=4)
    quiet.set_weights(np.full((5, 6), 0.1))
    assert np.array_equal(quiet.get_weights(), quiet.hidden_parameters()["persistent_weights"])


def test_decay_and_diffusion_follow_the_spec():
    # aihwkit invariant 2: with reset bias b and decay scale s, w = (w0 - b) s^k + b after k decays
    dev = D.ConstantStepDevice(lifetime=10.0, reset=0.05, w_max=2, w_min=-2)
    tile = AnalogTile(3, 3, TileConfig(device=dev), seed=5)
    w0 = inputs(1, 3, 3, 0.3)
    tile.set_weights(w0)
    for _ in range(4):
        tile.decay()
    s = 1 - 1 / 10
    assert np.allclose(tile.get_weights(), (w0 - 0.05) * s**4 + 0.05, atol=1e-6)
    # aihwkit invariant 3: diffusion std within [0.9, 1.1] of the rate on a 100 x 122 tile
    diff = AnalogTile(100, 122, TileConfig(device=D.ConstantStepDevice(diffusion=0.01)), seed=6)
    diff.diffuse()
    assert 0.009 <= diff.get_weights().std() <= 0.011


def test_post_update_step_changes_weights_only_when_configured():
    still = AnalogTile(4, 4, seed=1)
    still.set_weights(inputs(1, 4, 4, 0.1))
    before = still.get_weights()
    still.post_update_step()
    assert np.array_equal(still.get_weights(), before)
    moving = AnalogTile(4, 4, TileConfig(device=D.ConstantStepDevice(diffusion=0.01)), seed=1)
    moving.set_weights(before)
    moving.post_update_step()
    assert not np.array_equal(moving.get_weights(), before)


def test_drift_power_law_and_restart_after_update():
    # aihwkit invariant 4: nu fixed, t_0 = 1: after drift(dt) on fresh weights, w * dt^-nu
    drift = dict(nu=0.1)
    dev = D.ConstantStepDevice(drift=D.base.DriftParameter(**drift), w_max=2, w_min=-2, w_max_dtod=0,
                               w_min_dtod=0)
    tile = AnalogTile(4, 5, TileConfig(device=dev), seed=7)
    w0 = inputs(2, 4, 5, 0.3)
    tile.set_weights(w0)
    tile.drift(100.0)
    assert np.allclose(tile.get_weights(), w0 * 100.0**-0.1, rtol=1e-5)
    tile.drift(100.0)  # continues on the same clock: T = 200
    assert np.allclose(tile.get_weights(), w0 * 200.0**-0.1, rtol=1e-5)
    w_new = tile.get_weights() + F32(0.01)
    tile.set_weights(w_new)  # an updated device restarts its clock from its new weight
    tile.drift(50.0)
    assert np.allclose(tile.get_weights(), w_new, rtol=1e-6)
    tile.drift(50.0)
    assert np.allclose(tile.get_weights(), w_new * 50.0**-0.1, rtol=1e-5)


def test_reset_and_clip():
    dev = D.ConstantStepDevice(reset=0.2, reset_std=0.0, w_max=1, w_min=-1)
    tile = AnalogTile(3, 6, TileConfig(device=dev), seed=8)
    w = inputs(1, 3, 6, 0.1)
    tile.set_weights(w)
    tile.reset_columns(start=4, n=3)  # columns 4, 5 and (wrapping) 0
    got = tile.get_weights()
    assert np.allclose(got[:, [4, 5, 0]], 0.2) and np.array_equal(got[:, 1:4], w[:, 1:4])
    tile.clip_weights(0.05)
    assert np.abs(tile.get_weights()).max() <= 0.05 + 1e-7


def test_read_weights_estimates_and_program_weights_writes_through_pulses():
    cfg = TileConfig(device=D.ConstantStepDevice(dw_min=0.002, dw_min_dtod=0.0), forward=IOParameters(out_noise=0.01))
    tile = AnalogTile(6, 8, cfg, seed=9)
    target = inputs(3, 6, 8, 0.1).clip(-0.25, 0.25)  # inside every device's bounds
    tile.set_weights(target)
    est = tile.read_weights(n_reads=4)
    assert np.abs(est - target).max() < 0.05 and not np.array_equal(est, target)
    fresh = AnalogTile(6, 8, cfg, seed=9)
    err = program_weights(fresh, target, n_iterations=40, n_reads=2)
    assert err < 0.05 and np.abs(fresh.get_weights() - target).max() < 0.05


def test_state_dict_round_trip_resumes_identically():
    cfg = TileConfig(device=D.LinearStepDevice(write_noise_std=1.0, count_pulses=True))
    a = AnalogTile(5, 6, cfg, seed=11)
    a.update(inputs(1, 3, 6), inputs(2, 3, 5, 0.3), 0.1)
    state = {k: v.copy() for k, v in a.state_dict().items()}
    b = AnalogTile(5, 6, cfg, seed=999)  # a different seed: the state brings the key back
    b.load_state_dict(state)
    for t in (a, b):
        t.update(inputs(3, 2, 6), inputs(4, 2, 5, 0.3), 0.1)
    assert np.array_equal(a.get_weights(), b.get_weights())
    assert np.array_equal(a.forward(inputs(5, 2, 6)), b.forward(inputs(5, 2, 6)))
    assert json.loads(str(state["config"]))["device"]["type"] == "LinearStepDevice"
    other = AnalogTile(5, 6, TileConfig(), seed=1)
    with pytest.raises(ValueError, match="config differs"):
        other.load_state_dict(state)
    broken = dict(state)
    broken["weights"] = np.zeros((6, 5), F32)
    with pytest.raises(ValueError, match="shape"):
        b.load_state_dict(broken)
