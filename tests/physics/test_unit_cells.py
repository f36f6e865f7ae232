"""Unit cells against independent expectations: the one-sided pair against a plain tile's pulses, the refresh against
the criterion computed here, the vector policies against hand-written device sequences."""

import numpy as np
import pytest

from crossbar import (AnalogTile, IOParameters, OneSidedUnitCell, ReferenceUnitCell, TileConfig, UpdateParameters,
                      VectorUnitCell, make_tile)
from crossbar.physics import rng
from crossbar.physics.devices import ConstantStepDevice, SoftBoundsDevice

F32 = np.float32
QUIET = dict(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0)


def inputs(seed, batch, size, scale=1.0):
    return rng.uniform_array(rng.seed_key(seed), 0, (batch, size)) * F32(2 * scale) - F32(scale)


def one_sided(**kw):
    dev = ConstantStepDevice(dw_min=0.01, w_min=0.0, w_max=1.0, count_pulses=True, **QUIET)
    return TileConfig(device=OneSidedUnitCell(unit_cell_devices=(dev,), **kw))


def test_a_one_sided_pair_splits_one_set_of_pulses_by_sign():
    # g+ receives, as up pulses, exactly the pulses a plain tile with the same trains applies up; g- its down pulses
    cell = make_tile(4, 6, one_sided(), seed=3)
    plain = AnalogTile(4, 6, TileConfig(device=cell.sub[1].config.device), seed=cell.sub[1].seed)
    x, d = inputs(1, 5, 6), inputs(2, 5, 4)
    cell.update(x, d, 0.3)
    plain.update(x, d, 0.3)
    g_minus, g_plus = cell.sub
    assert np.array_equal(g_plus.pulse_counts["up"], plain.pulse_counts["up"])
    assert np.array_equal(g_minus.pulse_counts["up"], plain.pulse_counts["down"])
    assert not g_plus.pulse_counts["down"].any() and not g_minus.pulse_counts["down"].any()
    assert plain.pulse_counts["up"].any() and plain.pulse_counts["down"].any()
    # noise-free constant steps from 0: each side is its pulse count times dw_min, W their difference
    np.testing.assert_allclose(g_plus.get_weights(), 0.01 * plain.pulse_counts["up"], atol=1e-6)
    np.testing.assert_array_equal(cell.get_weights(), g_plus.get_weights() - g_minus.get_weights())


def test_one_sided_set_weights_splits_the_sign():
    cell = make_tile(2, 3, one_sided(), seed=1)
    w = np.array([[0.5, -0.25, 0.0], [-0.75, 0.125, 0.25]], F32)
    cell.set_weights(w)
    np.testing.assert_array_equal(cell.sub[1].get_weights(), np.maximum(w, 0))
    np.testing.assert_array_equal(cell.sub[0].get_weights(), np.maximum(-w, 0))
    np.testing.assert_array_equal(cell.get_weights(), w)


def test_refresh_follows_the_criterion_and_keeps_the_weight():
    perfect = IOParameters(is_perfect=True)
    cell = make_tile(3, 4, one_sided(refresh_forward=perfect, refresh_update=UpdateParameters(desired_bl=100)),
                     seed=2)
    gp = np.array([[0.9, 0.9, 0.2, 0.5], [0.8, 0.1, 0.95, 0.3], [0.3, 0.6, 0.7, 0.0]], F32)
    gm = np.array([[0.5, 0.1, 0.9, 0.5], [0.85, 0.3, 0.26, 0.3], [0.9, 0.3, 0.1, 0.0]], F32)
    cell.sub[1].set_weights(gp)
    cell.sub[0].set_weights(gm)
    cell._refresh()
    # the criterion written out: the larger side above 0.75 of w_max = 1 and the other above 0.25
    expected = np.where(gp > gm, (gp > 0.75) & (gm > 0.25), (gp > 0.25) & (gm > 0.75))
    before = cell.get_weights()
    cell.refresh()
    assert cell.refresh_counts == int(expected.sum()) == 4
    after_p, after_m = cell.sub[1].get_weights(), cell.sub[0].get_weights()
    # refreshed: the smaller side reset (to 0 +- reset_std 0.01), the larger one holds the difference (steps 0.01)
    small = np.where(gp > gm, after_m, after_p)[expected]
    assert np.abs(small).max() <= 0.05
    np.testing.assert_allclose(cell.get_weights()[expected], before[expected], atol=0.05)
    # untouched elsewhere
    np.testing.assert_array_equal(after_p[~expected], gp[~expected])
    np.testing.assert_array_equal(after_m[~expected], gm[~expected])


def test_the_two_sides_read_with_independent_noise():
    cell = make_tile(3, 4, one_sided(refresh_forward=IOParameters(out_noise=0.1)), seed=2)
    cell.set_weights(np.zeros((3, 4), F32))
    eye = np.eye(4, dtype=F32)
    assert not np.array_equal(cell.sub[0].forward(eye), cell.sub[1].forward(eye))


def test_refresh_every_counts_mini_batches():
    cell = make_tile(3, 4, one_sided(refresh_every=2), seed=4)
    calls = []
    cell.refresh = lambda: calls.append(cell.vec)
    for _ in range(5):
        cell.update(inputs(5, 8, 4), inputs(6, 8, 3), 0.1)
    assert calls == [8, 24]  # after the 2nd and the 4th batch of 8


def test_a_one_sided_cell_trains_signed_weights_and_resumes_from_a_checkpoint():
    cfg = one_sided(refresh_every=2)
    a, b = make_tile(3, 5, cfg, seed=7), make_tile(3, 5, cfg, seed=7)
    x, d = inputs(8, 4, 5), inputs(9, 4, 3)
    for _ in range(5):  # an odd number: the resumed tile must know where in the refresh period it is
        a.update(x, d, 0.5)
    b.load_state_dict(a.state_dict())
    for t in (a, b):
        t.update(x, d, 0.5)
    np.testing.assert_array_equal(a.get_weights(), b.get_weights())
    assert a.refresh_counts == b.refresh_counts > 0
    assert (a.get_weights() < 0).any() and (a.get_weights() > 0).any()


def vector(policy, n=3, first=0):
    dev = ConstantStepDevice(dw_min=0.01, **QUIET)
    return TileConfig(device=VectorUnitCell(unit_cell_devices=(dev,) * n, update_policy=policy,
                                            first_update_idx=first))


def updated_devices(tile, batches):
    """The device indices each update went to, read off the sub-tiles' update counters."""
    seen = []
    for _ in range(batches):
        before = [t.counters["update"] for t in tile.sub]
        tile.update(inputs(10, 2, 4), inputs(11, 2, 3), 0.1)
        seen.append([k for k, t in enumerate(tile.sub) if t.counters["update"] != before[k]])
    return seen


@pytest.mark.parametrize("policy, first, expected", [
    ("all", 0, [[0, 1, 2]] * 4),
    ("single_fixed", 2, [[2]] * 4),
    ("single_sequential", 1, [[1], [2], [0], [1]]),
])
def test_vector_update_policies(policy, first, expected):
    assert updated_devices(make_tile(3, 4, vector(policy, first=first), seed=1), 4) == expected


def test_single_random_picks_the_named_uniform_draw():
    tile = make_tile(3, 4, vector("single_random", n=4), seed=5)
    picks = [k for [k] in updated_devices(tile, 12)]
    expected = [min(int(float(rng.uniform(tile.key, rng.Stream.UNIT_CELL, c)[0]) * 4), 3) for c in range(12)]
    assert picks == expected and len(set(picks)) > 1


def test_vector_weight_is_the_gamma_sum_and_set_weights_sets_every_device():
    dev = ConstantStepDevice(dw_min=0.01, **QUIET)
    cell = VectorUnitCell(unit_cell_devices=(dev, dev), gamma_vec=(0.75, 0.25))
    tile = make_tile(2, 3, TileConfig(device=cell), seed=2)
    w = np.array([[0.5, -0.25, 0.0], [-0.5, 0.125, 0.25]], F32)
    tile.set_weights(w)
    for t in tile.sub:
        np.testing.assert_array_equal(t.get_weights(), w)
    tile.update(inputs(3, 2, 3), inputs(4, 2, 2), 0.5)
    w0, w1 = (t.get_weights() for t in tile.sub)
    assert not np.array_equal(w0, w1)  # each device its own trains
    np.testing.assert_allclose(tile.get_weights(), 0.75 * w0 + 0.25 * w1, atol=1e-7)


def test_single_fixed_set_weights_sets_the_selected_device_only():
    tile = make_tile(2, 3, vector("single_fixed", n=3, first=1), seed=2)
    tile.set_weights(np.full((2, 3), 0.3, F32))
    assert [float(np.abs(t.get_weights()).max()) for t in tile.sub] == pytest.approx([0.0, 0.3, 0.0])


def test_a_reference_cell_updates_device_0_only():
    dev = SoftBoundsDevice(dw_min=0.01)
    tile = make_tile(2, 3, TileConfig(device=ReferenceUnitCell(unit_cell_devices=(dev, dev))), seed=3)
    tile.sub[1].set_weights(np.full((2, 3), 0.1, F32))
    tile._refresh()
    tile.update(inputs(5, 4, 3), inputs(6, 4, 2), 0.5)
    np.testing.assert_array_equal(tile.sub[1].get_weights(), np.full((2, 3), 0.1, F32))
    np.testing.assert_allclose(tile.get_weights(), tile.sub[0].get_weights() - 0.1, atol=1e-7)


@pytest.mark.parametrize("make, match", [
    (lambda: VectorUnitCell(unit_cell_devices=()), "unit_cell_devices"),
    (lambda: VectorUnitCell(first_update_idx=2), "first_update_idx"),
    (lambda: VectorUnitCell(gamma_vec=(1.0,)), "gamma_vec"),
    (lambda: ReferenceUnitCell(unit_cell_devices=(ConstantStepDevice(),)), "unit_cell_devices"),
    (lambda: OneSidedUnitCell(copy_inverted=True), "copy_inverted"),
    (lambda: OneSidedUnitCell(unit_cell_devices=(1.0,)), "unit_cell_devices"),
])
def test_impossible_cells_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_floating_point_update_is_refused():
    with pytest.raises(ValueError, match="pulsed update"):
        make_tile(2, 2, TileConfig(device=OneSidedUnitCell(), update=UpdateParameters(pulse_type="none")))


def test_replayed_graph_steps_advance_the_host_side_progress():
    # a captured training step replayed `count` times advances what the cell keeps on the host as `count` steps would
    cell = make_tile(3, 4, one_sided(refresh_every=2), seed=1)
    cell.update(inputs(1, 8, 4), inputs(2, 8, 3), 0.1)
    cell.replayed(3)
    assert cell.vec == 32
    vec = make_tile(3, 4, vector("all"), seed=1)
    vec.update(inputs(1, 8, 4), inputs(2, 8, 3), 0.1)
    vec.replayed(3)
    assert vec.cycles == 4
