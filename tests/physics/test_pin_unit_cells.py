"""Pins of the unit-cell config fields (see test_pin_coverage.py): each check sets the field away from its default
and compares the code with an expectation written here, and checks that the expectation moves with the field."""

import numpy as np
import pytest

from crossbar import (IOParameters, OneSidedUnitCell, ReferenceUnitCell, TileConfig, UpdateParameters, VectorUnitCell,
                      make_tile)
from crossbar.physics import rng
from crossbar.physics.devices import ConstantStepDevice

F32 = np.float32
QUIET = dict(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, dw_min_std=0.0, count_pulses=True)


def dev(dw=0.01, **kw):
    return ConstantStepDevice(dw_min=dw, **{**QUIET, "w_max": 10.0, "w_min": -10.0, **kw})


def batch(seed, n=6, size=4, scale=1.0):
    return rng.uniform_array(rng.seed_key(seed), 0, (n, size)) * F32(2 * scale) - F32(scale)


def trained(cell, steps=3, lr=0.3, n=6):
    tile = make_tile(3, 4, TileConfig(device=cell), seed=5)
    for s in range(steps):
        tile.update(batch(s, n, 4), batch(s + 50, n, 3), lr)
    return tile


def net(t):
    return t.pulse_counts["up"] - t.pulse_counts["down"]


# ---- vector and reference cells -----------------------------------------------------------------------------
def check_vector_devices(cls=VectorUnitCell, **kw):
    tile = trained(cls(unit_cell_devices=(dev(0.01), dev(0.03)), **kw))
    for t, dw in zip(tile.sub, (0.01, 0.03)):
        np.testing.assert_allclose(t.get_weights(), dw * net(t), atol=1e-6)
    assert net(tile.sub[0]).any() or net(tile.sub[1]).any()


def check_gammas(cls=VectorUnitCell, gammas=(0.75, 0.25), policy="all"):
    tile = trained(cls(unit_cell_devices=(dev(), dev()), gamma_vec=gammas, update_policy=policy))
    w0, w1 = (t.get_weights() for t in tile.sub)
    np.testing.assert_allclose(tile.get_weights(), gammas[0] * w0 + gammas[1] * w1, atol=1e-6)
    assert not np.allclose(gammas[0] * w0 + gammas[1] * w1, 0.5 * (w0 + w1)) or policy != "all"


def moved(tile):
    return [k for k, t in enumerate(tile.sub) if t.counters["update"]]


def check_policy():
    assert moved(trained(VectorUnitCell(unit_cell_devices=(dev(),) * 3, update_policy="single_fixed"), steps=2)) == [0]
    assert moved(trained(VectorUnitCell(unit_cell_devices=(dev(),) * 3), steps=2)) == [0, 1, 2]


def check_first_index(cls=VectorUnitCell, n=3):
    policy = {"update_policy": "single_fixed"} if cls is VectorUnitCell else {}
    tile = trained(cls(unit_cell_devices=(dev(),) * n, first_update_idx=1, **policy), steps=2)
    assert moved(tile) == [1]


def check_reference_gammas():
    tile = trained(ReferenceUnitCell(unit_cell_devices=(dev(), dev()), gamma_vec=(1.0, -0.5)))
    tile.sub[1].set_weights(np.full((3, 4), 0.2, F32))
    tile._refresh()
    np.testing.assert_allclose(tile.get_weights(), tile.sub[0].get_weights() - 0.1, atol=1e-6)


# ---- one-sided cells -------------------------------------------------------------------------------------------
def one_sided(**kw):
    base = dict(unit_cell_devices=(dev(0.01, w_min=0.0, w_max=1.0),))
    return OneSidedUnitCell(**{**base, **kw})


def check_pair_devices():
    cell = one_sided(unit_cell_devices=(dev(0.01, w_min=0.0, w_max=5.0), dev(0.03, w_min=0.0, w_max=5.0)))
    tile = trained(cell)
    g_minus, g_plus = tile.sub
    np.testing.assert_allclose(g_plus.get_weights(), 0.03 * g_plus.pulse_counts["up"], atol=1e-6)
    np.testing.assert_allclose(g_minus.get_weights(), 0.01 * g_minus.pulse_counts["up"], atol=1e-6)
    assert g_plus.pulse_counts["up"].any() and g_minus.pulse_counts["up"].any()


def refresh_batches(**kw):
    tile = make_tile(3, 4, TileConfig(device=one_sided(**kw)), seed=5)
    calls = []
    tile.refresh = lambda: calls.append(tile.vec)
    for s in range(6):
        tile.update(batch(s, 8, 4), batch(s + 50, 8, 3), 0.1)
    return calls


def check_refresh_every():
    assert refresh_batches(refresh_every=3) == [16, 40]
    assert refresh_batches(refresh_every=2) == [8, 24, 40]


def check_units_in_mbatch():
    assert refresh_batches(refresh_every=16, units_in_mbatch=False) == [8, 24, 40]  # 16 vectors: every 2 batches
    assert refresh_batches(refresh_every=16) == []


GP = np.array([[0.9, 0.6, 0.2, 0.5], [0.8, 0.1, 0.95, 0.4], [0.3, 0.6, 0.7, 0.0]], F32)
GM = np.array([[0.5, 0.1, 0.9, 0.5], [0.85, 0.3, 0.26, 0.35], [0.9, 0.3, 0.1, 0.0]], F32)


def refreshed(**kw):
    cell = one_sided(refresh_forward=IOParameters(is_perfect=True), **kw)
    tile = make_tile(3, 4, TileConfig(device=cell), seed=2)
    tile.sub[1].set_weights(GP)
    tile.sub[0].set_weights(GM)
    tile._refresh()
    tile.refresh()
    return tile


def criterion(upper, lower):
    return np.where(GP > GM, (GP > upper) & (GM > lower), (GP > lower) & (GM > upper))


def check_thresholds(**kw):
    upper, lower = kw.get("refresh_upper_thres", 0.75), kw.get("refresh_lower_thres", 0.25)
    assert refreshed(**kw).refresh_counts == int(criterion(upper, lower).sum())
    assert criterion(upper, lower).sum() != criterion(0.75, 0.25).sum()


def refresh_error(**kw):
    tile = refreshed(**kw)
    sel = criterion(0.75, 0.25)
    return float(np.abs(tile.get_weights() - (GP - GM))[sel].max())


def check_refresh_forward():
    # reads through a noisy ADC write the differences with its noise
    assert refresh_error(refresh_update=UpdateParameters(desired_bl=100)) <= 0.02
    cell = one_sided(refresh_forward=IOParameters(out_noise=0.3), refresh_update=UpdateParameters(desired_bl=100))
    tile = make_tile(3, 4, TileConfig(device=cell), seed=2)
    tile.sub[1].set_weights(GP)
    tile.sub[0].set_weights(GM)
    tile.refresh()
    assert float(np.abs(tile.get_weights() - (GP - GM)).max()) > 0.05


def check_refresh_update():
    # one pulse per write: the refreshed cross-points get at most one step of 0.01 back
    assert refresh_error(refresh_update=UpdateParameters(desired_bl=1, update_management=False,
                                                         update_bl_management=False)) > 0.2
    assert refresh_error(refresh_update=UpdateParameters(desired_bl=100)) <= 0.02


PINS = {
    "VectorUnitCell.unit_cell_devices": check_vector_devices,
    "VectorUnitCell.gamma_vec": check_gammas,
    "VectorUnitCell.update_policy": check_policy,
    "VectorUnitCell.first_update_idx": check_first_index,
    "ReferenceUnitCell.unit_cell_devices": lambda: check_vector_devices(ReferenceUnitCell, first_update_idx=1),
    "ReferenceUnitCell.gamma_vec": check_reference_gammas,
    "ReferenceUnitCell.first_update_idx": lambda: check_first_index(ReferenceUnitCell, n=2),
    "OneSidedUnitCell.unit_cell_devices": check_pair_devices,
    "OneSidedUnitCell.refresh_every": check_refresh_every,
    "OneSidedUnitCell.units_in_mbatch": check_units_in_mbatch,
    "OneSidedUnitCell.refresh_upper_thres": lambda: check_thresholds(refresh_upper_thres=0.55),
    "OneSidedUnitCell.refresh_lower_thres": lambda: check_thresholds(refresh_lower_thres=0.05),
    "OneSidedUnitCell.refresh_forward": check_refresh_forward,
    "OneSidedUnitCell.refresh_update": check_refresh_update,
}

EXEMPT = {
    "ReferenceUnitCell.update_policy": "fixed to single_fixed by validation (its only allowed value)",
    "OneSidedUnitCell.copy_inverted": "must be False: True (a mirrored device 1) is refused by validation",
}


@pytest.mark.parametrize("field", sorted(PINS))
def test_pin(field):
    PINS[field]()
