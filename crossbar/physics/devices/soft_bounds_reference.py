"""SoftBoundsReference device: soft bounds on a conductance ``g`` read differentially against a per-device
reference, ``w = g - reference`` (IBM's aihwkit 1.1 SoftBoundsReference). With ``subtract_symmetry_point`` the
reference sits at the soft-bounds symmetry point ``w* = (dup - ddn) / (dup / b+ - ddn / b-)``, so that ``w = 0``
is where up and down steps are equal (the zero-shifting of Kim et al. 2020, used by Tiki-Taka v2+).

Step law on ``g = w + reference`` (one pulse, ``xi`` a fresh standard normal; a ratio ``g / b`` counts as 0
when its bound has the wrong sign, i.e. ``b+ <= 0`` or ``b- >= 0``)::

    mult_noise:     up: g += dwmin_up (1 - g / b+)(1 + dw_min_std xi)   down: g -= dwmin_down (1 - g / b-)(1 + ...)
    additive (default): up: g += dwmin_up (1 - g / b+ + dw_min_std xi)   down: g -= dwmin_down (1 - g / b- + ...)
    g <- clip(g, b-, b+);  w = g - reference

Device-to-device: besides the shared fields (:mod:`crossbar.physics.devices.base`), where ``b+ > 0 > b-`` the slopes
``dwmin_up / b+`` and ``-dwmin_down / b-`` are multiplied by ``|1 + slope_up|down_dtod xi|`` and the bounds are
recomputed from them (``b+ = dwmin_up / slope_up``, ``b- = -dwmin_down / slope_down``); ``reference =
reference_mean + reference_std xi``; ``subtract_symmetry_point`` adds ``w*`` to the reference and to the reset
bias. Defaults: all these fields 0/False. Granularity ``dw_min``; supports write noise.
"""

from __future__ import annotations

import numpy as np

from .base import F32, PulsedDevice, clip_to_bounds, d2d_normal, register_step
from ...backend import array_module
from ...config import config, param


@register_step
def soft_bounds_reference_step(g, up, p, xi, c):
    """One pulse on the device conductance ``g = w + reference``; a ratio ``g / b`` counts as 0 when its
    bound has the wrong sign."""
    xp = array_module(g)
    b = xp.where(up, p["max_bound"], p["min_bound"])
    dlt = xp.where(up, p["dwmin_up"], p["dwmin_down"])
    ratio = xp.where(xp.where(up, b > 0, b < 0), g / b, F32(0))
    sxi = c["dw_min_std"] * xi
    dw = dlt * (F32(1) - ratio) * (F32(1) + sxi) if c["mult_noise"] else dlt * (F32(1) - ratio + sxi)
    return clip_to_bounds(xp.where(up, g + dw, g - dw), p)


def symmetry_point(p):
    """Soft-bounds symmetry point ``(dup - ddn) / (dup / b+ - ddn / b-)`` (0 where undefined)."""
    num = p["dwmin_up"] - p["dwmin_down"]
    den = p["dwmin_up"] / p["max_bound"] - p["dwmin_down"] / p["min_bound"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / den, 0.0)


@config
class SoftBoundsReferenceDevice(PulsedDevice):
    """Soft bounds with a per-device reference and slope spread (see the module docstring)."""

    cli_name = "soft-bounds-reference"

    mult_noise: bool = param(False, "noise multiplies the step (False: additive, relative to dwmin)")
    slope_up_dtod: float = param(0.0, "device-to-device spread of the up slope", lo=0)
    slope_down_dtod: float = param(0.0, "device-to-device spread of the down slope", lo=0)
    reference_mean: float = param(0.0, "mean reference conductance (weight units)")
    reference_std: float = param(0.0, "device-to-device spread of the reference", lo=0)
    subtract_symmetry_point: bool = param(False, "add the symmetry point to the reference and reset bias")

    step_name = "soft_bounds_reference_step"
    extra_names = ("reference",)
    supports_write_noise = True
    has_reference = True

    def scalars(self) -> dict:
        return dict(dw_min_std=F32(self.dw_min_std), mult_noise=F32(self.mult_noise))

    def sample_extra(self, p, shape, key):
        ok = (p["max_bound"] > 0) & (p["min_bound"] < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            s_up = p["dwmin_up"] / p["max_bound"] * np.abs(1 + self.slope_up_dtod * d2d_normal(key, "slope_up", shape))
            s_dn = -p["dwmin_down"] / p["min_bound"] * np.abs(
                1 + self.slope_down_dtod * d2d_normal(key, "slope_down", shape))
            p["max_bound"] = np.where(ok & (s_up > 0), p["dwmin_up"] / s_up, p["max_bound"])
            p["min_bound"] = np.where(ok & (s_dn > 0), -p["dwmin_down"] / s_dn, p["min_bound"])
        p["reference"] = self.reference_mean + self.reference_std * d2d_normal(key, "reference", shape)
        if self.subtract_symmetry_point:
            sp = symmetry_point(p)
            p["reference"] = p["reference"] + sp
            p["reset_bias"] = p["reset_bias"] + sp
