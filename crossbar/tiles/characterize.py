"""Device characterisation: the pulse response of a device model and its step statistics.

A pulse response applies ``N`` up pulses then ``N`` down pulses, repeated, to a few devices and records the
weight after every pulse (:func:`pulse_response`); :func:`step_statistics` turns such a trace into the mean and
spread of the up and down steps as functions of the weight, which is what a device model is fitted to.

Each pulse is a real tile update: a ``(n_devices, 1)`` tile with ``BL = 1`` and no update management gets
``update(x=-1, d=direction, lr=1)``, for which the pulse probabilities exceed 1, so exactly one pulse fires per
device, up for ``direction = +1``. :func:`program_weights` writes a target through pulses by program and verify.
The command-line job that writes traces and plots is
``python -m crossbar.pulse_response``.
"""

from __future__ import annotations

import numpy as np

from ..config import IOParameters, TileConfig, UpdateParameters
from ..physics.devices import PulsedDevice
from .tile import AnalogTile, matrix

F32 = np.float32


def pulse_directions(n_steps: int, n_loops: int) -> np.ndarray:
    """``+1`` for ``n_steps`` pulses, then ``-1`` for ``n_steps``, repeated ``n_loops`` times (int8)."""
    one = np.r_[np.ones(n_steps, np.int8), -np.ones(n_steps, np.int8)]
    return np.tile(one, n_loops)


def pulse_response(dev: PulsedDevice, directions, n_devices: int = 5, seed: int = 0, w_init: float | None = None):
    """Weights of ``n_devices`` devices after each pulse of ``directions``.

    Args:
        dev: a pulsed device config.
        directions: int sequence of +1 (up) / -1 (down), one pulse each.
        n_devices: number of independent devices traced (device-to-device variation applies).
        seed: tile seed (device draws and pulse noise).
        w_init: starting weight (default: the device's ``w_min``).

    Returns:
        float32 ``(len(directions) + 1, n_devices)``: the initial weights, then the weights after each pulse.
    """
    if not isinstance(dev, PulsedDevice):
        raise ValueError(f"pulse_response needs a pulsed device, got {type(dev).__name__}")
    cfg = TileConfig(device=dev, forward=IOParameters(is_perfect=True),
                     update=UpdateParameters(desired_bl=1, update_management=False, update_bl_management=False))
    tile = AnalogTile(n_devices, 1, cfg, seed=seed)
    tile.set_weights(np.full((n_devices, 1), dev.w_min if w_init is None else w_init, np.float32))
    x = np.full((1, 1), -1.0, np.float32)
    ones = np.ones((1, n_devices), np.float32)
    trace = np.empty((len(directions) + 1, n_devices), np.float32)
    trace[0] = tile.get_weights()[:, 0]
    for k, direction in enumerate(directions):
        tile.update(x, float(direction) * ones, 1.0)
        trace[k + 1] = tile.get_weights()[:, 0]
    return trace


def step_statistics(trace, directions, n_nodes: int = 50, smoothness: float = 0.5):
    """Mean and std of the up and down steps as functions of the weight (Gaussian-kernel smoothing).

    Returns:
        dict with ``nodes`` (``(n_nodes,)``) and ``up_mean``, ``up_std``, ``down_mean``, ``down_std``
        (NaN where no step was observed near a node).
    """
    w, steps = trace[:-1].astype(np.float64), np.diff(trace.astype(np.float64), axis=0)
    nodes = np.linspace(w.min(), w.max(), n_nodes)
    width = max((nodes[1] - nodes[0]) * smoothness, 1e-12) if n_nodes > 1 else 1.0
    out = {"nodes": nodes}
    for name, sel in (("up", np.asarray(directions) > 0), ("down", np.asarray(directions) < 0)):
        ww, ss = w[sel].ravel(), steps[sel].ravel()
        k = np.exp(-((nodes[:, None] - ww[None, :]) ** 2) / (2 * width**2))
        total = k.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (k * ss).sum(1) / total
            std = np.sqrt(np.maximum((k * ss**2).sum(1) / total - mean**2, 0))
        out[f"{name}_mean"] = np.where(total > 0.1, mean, np.nan)
        out[f"{name}_std"] = np.where(total > 0.1, std, np.nan)
    return out


def program_weights(tile: AnalogTile, target, *, n_iterations: int = 50, n_reads: int = 1, tolerance: float = 0.0):
    """Write ``target`` (``(out, in)``) into ``tile`` through pulses: iterate noisy read, error, pulsed column
    updates (program and verify).

    Each iteration reads the weights (:meth:`AnalogTile.read_weights`) and applies ``update(x=e_j,
    d=-(target - read)[:, j], lr=1)`` for all columns ``j``; it stops early once the read error's max is below
    ``tolerance``.

    Returns:
        the max absolute error of the last read, float.
    """
    target = matrix(tile, "target", target, finite=False)
    eye = np.eye(tile.in_size, dtype=F32)
    err = np.inf
    for _ in range(n_iterations):
        diff = target - tile.read_weights(n_reads)
        err = float(np.abs(diff).max())
        if err <= tolerance:
            break
        tile.update(eye, -diff.T, 1.0)
    return err
