"""The periodic device operations as pure functions of device-space weights ``g`` and the per-device parameters
``p`` (float32 ``(out, in)`` arrays, :mod:`crossbar.physics.devices.base`), each ending with the clip to the
bounds; ``xi`` are standard normals of the tile's shape drawn by the caller. The formulas are those of the
pulsed devices of IBM's aihwkit 1.1 (decay and diffusion once per mini-batch, reset of whole columns, power-law
drift with a restart when a weight moves); the module docstring of :mod:`crossbar.physics.devices.base` states
them with their parameters.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module
from ..config import DriftParameter
from .devices.base import clip_to_bounds

F32 = np.float32


def decay(g, p, alpha: float):
    """``g <- (g - reset_bias)(1 + alpha (decay_scales - 1)) + reset_bias``, clipped."""
    b = p["reset_bias"]
    return clip_to_bounds((g - b) * (F32(1) + F32(alpha) * (p["decay_scales"] - F32(1))) + b, p)


def diffuse(g, p, xi):
    """``g + diffusion_rates xi``, clipped."""
    return clip_to_bounds(g + p["diffusion_rates"] * xi, p)


def reset(g, p, mask, xi, std: float):
    """``reset_bias + std xi`` where ``mask`` (bool, the tile's shape), else ``g``; clipped."""
    return clip_to_bounds(array_module(g).where(mask, p["reset_bias"] + F32(std) * xi, g), p)


def clip(g, p, bound: float):
    """Clip to the device bounds, then (``bound >= 0``) to ``[-bound, bound]``."""
    g = clip_to_bounds(g, p)
    return array_module(g).clip(g, F32(-bound), F32(bound)) if bound >= 0 else g


def new_drift_state(g, xp) -> dict:
    """The drift state of weights ``g`` at time 0: start weights ``w0``, restart times ``t``, the weights after the
    last drift ``prev``, and the clock ``T`` (a host float64 ``(1,)`` array, units of ``t_0``)."""
    return {"w0": g.copy(), "t": xp.zeros(g.shape, F32), "prev": g.copy(), "T": np.zeros(1, np.float64)}


def drift(g, p, state: dict, cfg: DriftParameter, dt: float, xi_nu=None, xi_w=None):
    """Advance the power-law drift of ``g`` by ``dt`` (units of ``cfg.t_0``); updates ``state`` in place and returns
    the new clipped weights. ``xi_nu`` is needed when ``nu_std > 0``, ``xi_w`` when ``w_noise_std > 0``."""
    xp = array_module(g)
    state["T"][0] += dt / cfg.t_0
    T = F32(state["T"][0])
    moved = xp.abs(state["prev"] - g) > F32(cfg.reset_tol)
    state["t"][...] = xp.where(moved, T, state["t"])
    state["w0"][...] = xp.where(moved, g, state["w0"])
    nu = p["drift_nu"]
    if cfg.nu_std > 0:
        nu = nu + F32(cfg.nu_std) * nu * xi_nu
    if cfg.nu_k != 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            nu = nu - F32(cfg.nu_k) * xp.log((g - F32(cfg.w_offset)) / F32(cfg.wg_ratio) + F32(cfg.g_offset)) \
                + F32(cfg.nu_k * cfg.log_g0)
    f = xp.power(xp.maximum(T - state["t"], F32(1)), -nu)
    a = cfg.g_offset * cfg.wg_ratio + cfg.w_offset
    a = F32(0 if abs(a) < cfg.reset_tol else a)
    g = xp.where(moved, g, state["w0"] * f + a * (f - F32(1)))
    if cfg.w_noise_std > 0:
        g = g + F32(cfg.w_noise_std) * xi_w
    g = clip_to_bounds(g, p)
    state["prev"][...] = g
    return g
