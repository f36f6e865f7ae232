"""crossbar.tiles.characterize against independent references: the pulse-response trace of a known device and the
Gaussian-kernel step statistics, computed here by a plain loop over the nodes."""

import math

import numpy as np
import pytest

from crossbar.tiles.characterize import pulse_directions, pulse_response, step_statistics
from crossbar.physics.devices import ConstantStepDevice, SoftBoundsDevice

QUIET = dict(dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)


def test_directions_are_int8_blocks():
    d = pulse_directions(2, 3)
    assert d.dtype == np.int8 and d.tolist() == [1, 1, -1, -1] * 3


def test_trace_starts_at_w_init_and_moves_one_step_per_pulse():
    # ConstantStep without noise: every pulse moves each device by exactly dw_min (up) or dw_min (down)
    dev = ConstantStepDevice(dw_min=0.01, w_max=1.0, w_min=-1.0, **QUIET)
    dirs = np.array([1, 1, 1, -1, 1, -1, -1], np.int8)
    trace = pulse_response(dev, dirs, n_devices=3, seed=4, w_init=0.125).astype(np.float64)
    assert trace.shape == (8, 3)
    assert (trace[0] == np.float32(0.125)).all()
    np.testing.assert_allclose(np.diff(trace, axis=0), 0.01 * dirs[:, None].repeat(3, 1), atol=1e-6)
    default_start = pulse_response(dev, dirs[:1], n_devices=2, seed=4)
    assert (default_start[0] == np.float32(-1.0)).all()  # w_init defaults to w_min


def test_trace_depends_on_the_seed_through_device_variation():
    dev = SoftBoundsDevice(dw_min_dtod=0.3, w_max_dtod=0.2, w_min_dtod=0.2, dw_min_std=0.0)
    dirs = pulse_directions(20, 1)
    a, b, c = (pulse_response(dev, dirs, n_devices=4, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len({tuple(col) for col in a.T}) == 4  # the devices differ from each other


def kernel_statistics(w, steps, up, nodes, width):
    """The documented statistic, one node at a time: Gaussian weights exp(-(node - w)^2 / (2 width^2)) over the
    steps of one direction; mean and std are the weighted moments; NaN where the weights sum to <= 0.1."""
    mean, std = [], []
    for node in nodes:
        num = den = sq = 0.0
        for wi, si, ui in zip(w, steps, up):
            if not ui:
                continue
            k = math.exp(-((node - wi) ** 2) / (2 * width ** 2))
            den, num, sq = den + k, num + k * si, sq + k * si * si
        if den <= 0.1:
            mean.append(math.nan), std.append(math.nan)
        else:
            m = num / den
            mean.append(m), std.append(math.sqrt(max(sq / den - m * m, 0.0)))
    return np.array(mean), np.array(std)


def test_step_statistics_equal_the_kernel_moments():
    rs = np.random.default_rng(7)
    dirs = pulse_directions(15, 3)
    # a synthetic trace: up steps 0.02 - 0.01 w, down steps -0.015 - 0.005 w, with noise, on two devices
    w = np.zeros((len(dirs) + 1, 2))
    w[0] = (-0.3, -0.1)
    for t, d in enumerate(dirs):
        base = 0.02 - 0.01 * w[t] if d > 0 else -0.015 - 0.005 * w[t]
        w[t + 1] = w[t] + base * (1 + 0.3 * rs.standard_normal(2))
    n_nodes, smoothness = 9, 0.7
    stats = step_statistics(w, dirs, n_nodes=n_nodes, smoothness=smoothness)
    nodes = np.linspace(w[:-1].min(), w[:-1].max(), n_nodes)
    np.testing.assert_allclose(stats["nodes"], nodes, rtol=1e-12)
    width = (nodes[1] - nodes[0]) * smoothness
    flat_w, flat_s = w[:-1].ravel(), np.diff(w, axis=0).ravel()
    rows = np.repeat(dirs, 2)
    for name, sel in (("up", rows > 0), ("down", rows < 0)):
        mean, std = kernel_statistics(flat_w, flat_s, sel, nodes, width)
        np.testing.assert_allclose(stats[f"{name}_mean"], mean, rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(stats[f"{name}_std"], std, rtol=1e-6, atol=1e-12)
    assert np.isfinite(stats["up_mean"]).all() and (stats["up_std"] > 0).all()
    assert (stats["up_mean"] > 0).all() and (stats["down_mean"] < 0).all()


def test_step_statistics_leave_nodes_without_nearby_steps_empty():
    # two devices, one stepping near w = 0, one near w = 1; with a narrow kernel the middle nodes see no data:
    # NaN, not 0
    trace = np.array([[0.0, 1.0], [0.1, 1.1], [0.0, 1.0]])
    dirs = np.array([1, -1])
    stats = step_statistics(trace, dirs, n_nodes=11, smoothness=0.5)
    assert np.isnan(stats["up_mean"][5]) and np.isnan(stats["down_std"][5])
    assert stats["up_mean"][0] == pytest.approx(0.1) and stats["down_mean"][0] == pytest.approx(-0.1)


def test_one_node_uses_unit_width():
    trace = np.array([[0.0], [0.5], [0.2]])
    stats = step_statistics(trace, np.array([1, -1]), n_nodes=1)
    # one node, at w.min() = 0, with width 1: the only up step (+0.5) is the mean; its spread is 0
    assert stats["nodes"].tolist() == [0.0]
    assert stats["up_mean"][0] == pytest.approx(0.5) and stats["up_std"][0] == 0


def test_trace_is_float32():
    dev = ConstantStepDevice(**QUIET)
    assert pulse_response(dev, pulse_directions(2, 1), n_devices=2).dtype == np.float32


@pytest.mark.parametrize("n_nodes", [1, 2])
def test_kernel_width_with_one_or_two_nodes(n_nodes):
    # width = node spacing x smoothness from two nodes on, 1 (weight units) for a single node
    trace = np.array([[0.0, 0.3], [0.1, 0.6], [0.0, 0.3]])  # up steps +0.1 at w = 0 and +0.3 at w = 0.3
    stats = step_statistics(trace, np.array([1, -1]), n_nodes=n_nodes, smoothness=0.5)
    nodes = np.linspace(0.0, 0.6, n_nodes)
    width = 1.0 if n_nodes == 1 else (nodes[1] - nodes[0]) * 0.5
    mean, _ = kernel_statistics([0.0, 0.3], [0.1, 0.3], [True, True], nodes, width)
    np.testing.assert_allclose(stats["up_mean"], mean, rtol=1e-12)


def test_nodes_whose_kernel_underflows_are_nan_without_warnings():
    # steps at w = 0 and w = 100: with 50 nodes the kernels of the middle nodes underflow to exactly 0 (0/0)
    trace = np.array([[0.0, 100.0], [0.5, 100.5], [0.0, 100.0]])
    stats = step_statistics(trace, np.array([1, -1]), n_nodes=50)  # RuntimeWarnings are errors in the tests
    assert np.isnan(stats["up_mean"][25]) and np.isnan(stats["up_std"][25])
    assert stats["up_mean"][0] == pytest.approx(0.5)


def test_documented_defaults():
    # five devices, seed 0; 50 nodes with smoothness 0.5
    dev = SoftBoundsDevice(dw_min_dtod=0.3)
    dirs = pulse_directions(5, 1)
    trace = pulse_response(dev, dirs)
    assert trace.shape == (11, 5) and np.array_equal(trace, pulse_response(dev, dirs, n_devices=5, seed=0))
    stats = step_statistics(trace, dirs)
    explicit = step_statistics(trace, dirs, n_nodes=50, smoothness=0.5)
    assert stats["nodes"].shape == (50,)
    for key in ("up_mean", "up_std", "down_mean", "down_std"):
        np.testing.assert_array_equal(stats[key], explicit[key])
