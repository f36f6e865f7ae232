"""LinearStep family: the step shrinks linearly with the weight (IBM's aihwkit 1.1 LinearStep, SoftBounds
and SoftBoundsPmax devices).

Step law (one pulse, ``xi`` a fresh standard normal, clip to the element bounds after each pulse)::

    up:   w += (slope_up   w + dwmin_up)   (1 + dw_min_std xi)     # mult_noise (default)
    down: w -= (slope_down w + dwmin_down) (1 + dw_min_std xi)
    additive noise (mult_noise=False): w +-= slope w + dwmin (1 + dw_min_std xi)

Slopes, drawn per element: ``gamma_+- = gamma_up|down + gamma_up|down_dtod xi`` (``|.|`` unless
``allow_increasing``); reference points ``r+ = w_max`` and ``r- = w_min`` (the element bounds instead when
``mean_bound_reference`` is False; ``reverse_up`` moves ``r+`` to the lower reference minus ``reverse_offset``,
``reverse_down`` moves ``r-`` to the upper one plus it); ``slope_up = -gamma_+ dwmin_up / r+``,
``slope_down = -gamma_- dwmin_down / r-`` (0 where ``r = 0``). So the step is ``dwmin`` at ``w = 0`` and
``dwmin (1 - gamma)`` at the reference.
Defaults: ``gamma_up = gamma_down = 0``, ``gamma_*_dtod = 0.05``, ``mean_bound_reference``, ``mult_noise``,
``reverse_offset = 0.01``; the shared fields (:mod:`crossbar.physics.devices.base`) give ``dwmin_up/down`` and bounds.
Granularity ``dw_min``; supports write noise.

SoftBounds (Fusi & Abbott 2007, the "soft bounds" of the Tiki-Taka papers) is ``gamma = 1`` without spread on
the element bounds, where the step vanishes at the bound: ``up: dwmin_up (1 - w / max_bound)``, ``down:
dwmin_down (1 - w / min_bound)``. SoftBoundsPmax sets it from ``p_max`` pulses and relative step ``alpha``:
``B = (range_max - range_min) / (1 - exp(-p_max alpha))``, ``w_min = range_min``, ``w_max = range_min + B``,
``dw_min = B alpha``, ``up_down = 1 + 2 range_min / B``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .base import F32, PulsedDevice, clip_to_bounds, d2d_normal, register_step
from ...backend import array_module
from ...config import config, param


@register_step
def linear_step(w, up, p, xi, c):
    """One pulse of a LinearStep device; ``c["mult_noise"]`` (0 or 1) selects the noise model."""
    xp = array_module(w)
    a = xp.where(up, p["slope_up"], p["slope_down"])
    dlt = xp.where(up, p["dwmin_up"], p["dwmin_down"])
    noise = F32(1) + c["dw_min_std"] * xi
    dw = (a * w + dlt) * noise if c["mult_noise"] else a * w + dlt * noise
    return clip_to_bounds(xp.where(up, w + dw, w - dw), p)


@config
class LinearStepDevice(PulsedDevice):
    """Step size linear in the weight, with per-device slopes (see the module docstring)."""

    cli_name = "linear-step"

    gamma_up: float = param(0.0, "relative step decrease toward the upper reference (1 = soft bound)")
    gamma_down: float = param(0.0, "relative step decrease toward the lower reference")
    gamma_up_dtod: float = param(0.05, "device-to-device spread of gamma_up", lo=0)
    gamma_down_dtod: float = param(0.05, "device-to-device spread of gamma_down", lo=0)
    allow_increasing: bool = param(False, "allow negative gammas (steps that grow toward the bound)")
    mean_bound_reference: bool = param(True, "slopes refer to the mean bounds, not the element bounds")
    mult_noise: bool = param(True, "noise multiplies the whole step (False: only the constant part)")
    reverse_up: bool = param(False, "up steps shrink toward the lower bound instead")
    reverse_down: bool = param(False, "down steps shrink toward the upper bound instead")
    reverse_offset: float = param(0.01, "offset of the reversed reference point (weight units)")

    step_name = "linear_step"
    extra_names = ("slope_up", "slope_down")
    supports_write_noise = True

    def validate(self):
        super().validate()
        if (self.reverse_up or self.reverse_down) and not self.mult_noise:
            self._fail("mult_noise", self.mult_noise, "True when reverse_up or reverse_down is set")

    def scalars(self) -> dict:
        return dict(dw_min_std=F32(self.dw_min_std), mult_noise=F32(self.mult_noise))

    def sample_extra(self, p, shape, key):
        g_up = self.gamma_up + self.gamma_up_dtod * d2d_normal(key, "gamma_up", shape)
        g_dn = self.gamma_down + self.gamma_down_dtod * d2d_normal(key, "gamma_down", shape)
        if not self.allow_increasing:
            g_up, g_dn = np.abs(g_up), np.abs(g_dn)
        ref_up = self.w_max if self.mean_bound_reference else p["max_bound"]
        ref_dn = self.w_min if self.mean_bound_reference else p["min_bound"]
        r_up = ref_dn - self.reverse_offset if self.reverse_up else ref_up
        r_dn = ref_up + self.reverse_offset if self.reverse_down else ref_dn
        r_up, r_dn = np.broadcast_to(r_up, shape), np.broadcast_to(r_dn, shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            p["slope_up"] = np.where(r_up != 0, -g_up * p["dwmin_up"] / r_up, 0.0)
            p["slope_down"] = np.where(r_dn != 0, -g_dn * p["dwmin_down"] / r_dn, 0.0)


@config
class SoftBoundsDevice(LinearStepDevice):
    """Soft bounds: the step vanishes linearly at the element's bounds (``gamma = 1``, element bounds)."""

    cli_name = "soft-bounds"

    gamma_up: float = param(1.0, "fixed at 1 for soft bounds", lo=1, hi=1)
    gamma_down: float = param(1.0, "fixed at 1 for soft bounds", lo=1, hi=1)
    gamma_up_dtod: float = param(0.0, "fixed at 0 for soft bounds", lo=0, hi=0)
    gamma_down_dtod: float = param(0.0, "fixed at 0 for soft bounds", lo=0, hi=0)
    mean_bound_reference: bool = param(False, "fixed False: slopes refer to the element bounds",
                                       choices=(False,))


@config
class SoftBoundsPmaxDevice(SoftBoundsDevice):
    """SoftBounds parametrised by the number of pulses ``p_max`` that saturates it and the relative
    step ``alpha``. ``w_min, w_max, dw_min, up_down`` are derived and overwritten (module docstring)."""

    cli_name = "soft-bounds-pmax"

    p_max: int = param(1000, "pulses from the lower to near the upper bound", lo=1, integer=True)
    alpha: float = param(0.0005, "step size relative to the range", lo=0, lo_open=True)
    range_min: float = param(-1.0, "lower end of the weight range")
    range_max: float = param(1.0, "upper end of the weight range")

    def __post_init__(self):
        for f in dataclasses.fields(self):  # validate the inputs of the mapping before using them
            if f.name in ("p_max", "alpha", "range_min", "range_max"):
                self._check_field(f, getattr(self, f.name))
        if self.range_max <= self.range_min:
            raise ValueError(f"SoftBoundsPmaxDevice.range_max = {self.range_max!r}: must be > range_min "
                             f"= {self.range_min!r}")
        span = (self.range_max - self.range_min) / (1 - math.exp(-self.p_max * self.alpha))
        for name, value in dict(w_min=self.range_min, w_max=self.range_min + span, dw_min=span * self.alpha,
                                up_down=1 + 2 * self.range_min / span).items():
            object.__setattr__(self, name, value)
        super().__post_init__()
