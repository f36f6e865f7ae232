"""ExpStep device: step sizes that fall exponentially toward the bounds, a fit of measured ReRAM (the
ReRAM-ES preset, after Gong et al. 2018) and of PCM, as in IBM's aihwkit 1.1.

Step law (one pulse, ``xi`` a fresh standard normal, ``b+ - b- > 0``; else ``z = b``)::

    z     = 2 a w / (b+ - b-) + b
    up:   dw = +max(1 - A_up   exp( gamma_up   z), 0) dwmin_up
    down: dw = -max(1 - A_down exp(-gamma_down z), 0) dwmin_down
    w <- clip(w + dw (1 + dw_min_std xi))

With ``dw_min_std > 0`` and ``dw_min_std_add`` or ``dw_min_std_slope`` non-zero the noise is state dependent
instead: ``w <- clip(w + dw + dw_min_std (|dw| + dw_min_std_add + dw_min_std_slope |w|) xi)``.

``A_*``, ``gamma_*``, ``a``, ``b`` are tile-wide constants (no device-to-device spread); the per-element
``dwmin_up/down`` and bounds come from the shared fields (:mod:`crossbar.physics.devices.base`). Defaults:
``A_up = 0.00081``, ``A_down = 0.36833``, ``gamma_up = 12.44625``, ``gamma_down = 12.78785``, ``a = 0.244``,
``b = 0.2425``, ``dw_min_std_add = dw_min_std_slope = 0``. Granularity (aihwkit's estimate): the mean down step
at ``w = 0``, ``(1 - max(up_down, 0)) dw_min max(1 - A_down exp(-gamma_down b), 0)``, or ``dw_min`` if that is
not positive. Supports write noise.
"""

from __future__ import annotations

import numpy as np

from .base import F32, PulsedDevice, clip_to_bounds, register_step
from ...backend import array_module
from ...config import config, param


@register_step
def exp_step(w, up, p, xi, c):
    """One pulse of an ExpStep device (``c["complex_noise"]`` selects the state-dependent noise)."""
    xp = array_module(w)
    span = p["max_bound"] - p["min_bound"]
    z = xp.where(span > 0, c["two_a"] * w / xp.where(span > 0, span, F32(1)) + c["b"], c["b"])
    y = xp.where(up, F32(1) - c["A_up"] * xp.exp(c["gamma_up"] * z),
                 F32(1) - c["A_down"] * xp.exp(-c["gamma_down"] * z))
    dw = xp.maximum(y, F32(0)) * xp.where(up, p["dwmin_up"], -p["dwmin_down"])
    if c["complex_noise"]:
        sigma = c["dw_min_std"] * (xp.abs(dw) + c["dw_min_std_add"] + c["dw_min_std_slope"] * xp.abs(w))
        return clip_to_bounds(w + dw + sigma * xi, p)
    return clip_to_bounds(w + dw * (F32(1) + c["dw_min_std"] * xi), p)


@config
class ExpStepDevice(PulsedDevice):
    """Exponential step-size dependence on the weight (tile-wide shape constants)."""

    cli_name = "exp-step"

    A_up: float = param(0.00081, "up amplitude of the exponential")
    A_down: float = param(0.36833, "down amplitude of the exponential")
    gamma_up: float = param(12.44625, "up exponent")
    gamma_down: float = param(12.78785, "down exponent")
    a: float = param(0.244, "weight scale of z")
    b: float = param(0.2425, "offset of z")
    dw_min_std_add: float = param(0.0, "additive part of the state-dependent noise (weight units)", lo=0)
    dw_min_std_slope: float = param(0.0, "|w|-proportional part of the state-dependent noise", lo=0)

    step_name = "exp_step"
    supports_write_noise = True

    def scalars(self) -> dict:
        complex_noise = self.dw_min_std > 0 and (self.dw_min_std_add != 0 or self.dw_min_std_slope != 0)
        return {k: F32(v) for k, v in dict(
            dw_min_std=self.dw_min_std, A_up=self.A_up, A_down=self.A_down, gamma_up=self.gamma_up,
            gamma_down=self.gamma_down, two_a=2 * self.a, b=self.b, dw_min_std_add=self.dw_min_std_add,
            dw_min_std_slope=self.dw_min_std_slope, complex_noise=complex_noise).items()}

    def granularity(self) -> float:
        # the incumbent's estimate (aihwkit 1.1, reproduced): the mean down step at w = 0
        down_bias = -max(self.up_down, 0.0)
        dw_down = (1 + down_bias) * self.dw_min * max(1 - self.A_down * np.exp(-self.gamma_down * self.b), 0.0)
        return float(dw_down) if dw_down > 0 else self.dw_min
