"""ConstantStep device: every pulse moves the weight by a fixed, element-specific step, the device of
Gokmen & Vlasov 2016 ("Acceleration of deep neural network training with resistive cross-point devices").

Step law (one pulse, ``xi`` a fresh standard normal, weights in normalised units)::

    up:   w <- clip(w + dwmin_up   (1 + dw_min_std xi))
    down: w <- clip(w - dwmin_down (1 + dw_min_std xi))

where ``clip`` is to the element's hard bounds ``[min_bound, max_bound]``. Device-to-device variation is all
in the shared fields (:mod:`crossbar.physics.devices.base`): ``dwmin_up/down`` scatter around ``dw_min`` with
``dw_min_dtod`` and the asymmetry ``up_down``/``up_down_dtod``, the bounds around ``w_min``/``w_max`` with
``w_min_dtod``/``w_max_dtod``. Cycle-to-cycle noise is ``dw_min_std`` relative to the step. Defaults: those of
:class:`~crossbar.physics.devices.base.PulsedDevice` (``dw_min = 0.001``, ``dw_min_dtod = 0.3``, ``dw_min_std = 0.3``,
bounds ``+-0.6`` with 30% spread). Granularity: ``dw_min``. No write noise.

Summing: with ``dw_min_std <= 0.33`` the ``n`` same-sign pulses of one sample are applied in closed form,
``w <- clip(w +- dw (n + dw_min_std sqrt(n) xi))`` (one normal, one clip), as aihwkit 1.1's GPU engine does;
larger noise goes pulse by pulse. The Gokmen & Vlasov device itself is the preset ``gokmen-vlasov``.
"""

from __future__ import annotations

import numpy as np

from .base import F32, PulsedDevice, clip_to_bounds, register_step, signed_step
from ...config import config


@register_step
def constant_step(w, up, p, xi, c):
    """One pulse: ``w +- dw (1 + dw_min_std xi)``, clipped to the element's bounds."""
    return clip_to_bounds(w + signed_step(up, p) * (F32(1) + c["dw_min_std"] * xi), p)


def constant_step_n(w, n, up, p, xi, c):
    """``n`` same-sign pulses at once: ``w +- dw (n + dw_min_std sqrt(n) xi)``, then one clip.

    Exact in distribution (the sum of ``n`` independent step noises is ``sqrt(n)`` times one normal), and
    equal to ``n`` single pulses as long as no pulse reverses direction (``1 + dw_min_std xi < 0``), which
    the ``dw_min_std <= 0.33`` gate keeps below 1e-3 per pulse. For ``n = 1`` it is :func:`constant_step`
    bit for bit.
    """
    nf = n.astype(F32)
    return clip_to_bounds(w + signed_step(up, p) * (nf + c["dw_min_std"] * np.sqrt(nf) * xi), p)


@config
class ConstantStepDevice(PulsedDevice):
    """Constant step size with cycle-to-cycle noise, device-to-device spread and hard bounds."""

    cli_name = "constant-step"

    step_name = "constant_step"

    def summing(self) -> bool:
        # as the incumbent's GPU engine: closed-form runs for small noise, pulse by pulse otherwise
        return self.dw_min_std <= 0.33

    def step_n(self, w, n, up, p, xi):
        return constant_step_n(w, n, up, p, xi, self.scalars())
