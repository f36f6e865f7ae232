"""PowStep devices: the step follows a power of the distance to the bound (IBM's aihwkit 1.1 PowStep and
PowStepReference).

Step law (one pulse, ``xi`` a fresh standard normal, ``R = b+ - b-``; no change where ``R <= 0``)::

    up:   w <- clip(w + dwmin_up   ((b+ - w) / R)^gamma_up   (1 + dw_min_std xi))
    down: w <- clip(w - dwmin_down ((w - b-) / R)^gamma_down (1 + dw_min_std xi))

Exponents per element: ``g = 1 + pow_gamma_dtod xi``, ``r = pow_up_down_dtod xi``,
``gamma_up = (min(pow_up_down, 0) + g + r) pow_gamma``, ``gamma_down = (-max(pow_up_down, 0) + g - r) pow_gamma``
(``|.|`` with ``enforce_consistency``). Defaults ``pow_gamma = 1``, ``pow_gamma_dtod = 0.1``,
``pow_up_down = pow_up_down_dtod = 0``; steps and bounds from the shared fields (:mod:`crossbar.physics.devices.base`).
Granularity ``dw_min 0.5^pow_gamma`` (the step at mid-range). PowStep supports write noise.

PowStepReference applies the same rule to ``g = w + reference`` with ``reference = reference_mean +
reference_std xi`` (no write noise). With ``subtract_symmetry_point`` the symmetry point ``sp`` is found by
simulation, ``sp <- sp - dwmin_down ((sp - b-) / R)^gamma_down + dwmin_up ((b+ - sp) / R)^gamma_up`` from
``sp = 0``, ``n_estimation_steps`` times (``<= 0``: ``min(rint(10 R / min(dwmin_up, dwmin_down)), 10000)``),
and added to the reference and to the reset bias.
"""

from __future__ import annotations

import numpy as np

from .base import F32, PulsedDevice, clip_to_bounds, d2d_normal, register_step
from ...backend import array_module
from ...config import config, param


@register_step
def pow_step(w, up, p, xi, c):
    """One pulse of a PowStep device (no change where the range is empty)."""
    xp = array_module(w)
    span = p["max_bound"] - p["min_bound"]
    safe = xp.where(span > 0, span, F32(1))
    base = xp.where(up, p["max_bound"] - w, w - p["min_bound"]) / safe
    gamma = xp.where(up, p["gamma_up"], p["gamma_down"])
    mag = xp.where(up, p["dwmin_up"], p["dwmin_down"]) * xp.power(xp.maximum(base, F32(0)), gamma)
    dw = mag * (F32(1) + c["dw_min_std"] * xi)
    return clip_to_bounds(xp.where(span > 0, xp.where(up, w + dw, w - dw), w), p)


@config
class PowStepDevice(PulsedDevice):
    """Power-law step-size dependence on the distance to the bounds."""

    cli_name = "pow-step"

    pow_gamma: float = param(1.0, "mean exponent", lo=0)
    pow_gamma_dtod: float = param(0.1, "device-to-device spread of the exponent (relative)", lo=0)
    pow_up_down: float = param(0.0, "up/down asymmetry of the exponent", lo=-1, hi=1)
    pow_up_down_dtod: float = param(0.0, "device-to-device spread of that asymmetry", lo=0)

    step_name = "pow_step"
    extra_names = ("gamma_up", "gamma_down")
    supports_write_noise = True

    def granularity(self) -> float:
        return self.dw_min * 0.5 ** self.pow_gamma

    def sample_extra(self, p, shape, key):
        g = 1 + self.pow_gamma_dtod * d2d_normal(key, "pow_gamma", shape)
        r = self.pow_up_down_dtod * d2d_normal(key, "pow_up_down", shape)
        p["gamma_up"] = (min(self.pow_up_down, 0.0) + g + r) * self.pow_gamma
        p["gamma_down"] = (-max(self.pow_up_down, 0.0) + g - r) * self.pow_gamma
        if self.enforce_consistency:
            p["gamma_up"], p["gamma_down"] = np.abs(p["gamma_up"]), np.abs(p["gamma_down"])


@config
class PowStepReferenceDevice(PowStepDevice):
    """PowStep on ``g = w + reference`` with an optional simulated symmetry point (no write noise)."""

    cli_name = "pow-step-reference"

    reference_mean: float = param(0.0, "mean reference (weight units)")
    reference_std: float = param(0.0, "device-to-device spread of the reference", lo=0)
    subtract_symmetry_point: bool = param(False, "add the simulated symmetry point to reference and reset")
    n_estimation_steps: int = param(-1, "up/down pulse pairs simulated for the symmetry point (<= 0: auto)",
                                    integer=True)

    extra_names = ("gamma_up", "gamma_down", "reference")
    supports_write_noise = False
    has_reference = True

    def sample_extra(self, p, shape, key):
        super().sample_extra(p, shape, key)
        p["reference"] = self.reference_mean + self.reference_std * d2d_normal(key, "reference", shape)
        if self.subtract_symmetry_point:
            sp = self._symmetry_point(p)
            p["reference"] = p["reference"] + sp
            p["reset_bias"] = p["reset_bias"] + sp

    def _symmetry_point(self, p):
        span = p["max_bound"] - p["min_bound"]
        if self.n_estimation_steps > 0:
            n = np.full(span.shape, self.n_estimation_steps)
        else:
            small = np.maximum(np.minimum(p["dwmin_up"], p["dwmin_down"]), 1e-12)
            n = np.minimum(np.rint(10 * span / small), 10000)
        safe = np.where(span > 0, span, 1.0)
        sp = np.zeros(span.shape)
        for t in range(int(n.max(initial=0))):
            down = p["dwmin_down"] * np.maximum((sp - p["min_bound"]) / safe, 0) ** p["gamma_down"]
            up = p["dwmin_up"] * np.maximum((p["max_bound"] - sp) / safe, 0) ** p["gamma_up"]
            sp = np.where((t < n) & (span > 0), sp - down + up, sp)
        return sp
