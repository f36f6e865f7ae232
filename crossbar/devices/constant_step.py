"""ConstantStep device (physics.md 2.3.1; Gokmen & Vlasov 2016): every pulse moves the weight by the
element's step ``dwmin_up`` (up) or ``dwmin_down`` (down), times ``1 + dw_min_std * xi``.
"""

from __future__ import annotations

import numpy as np

from .base import F32, PulsedDevice, clip_to_bounds, register_step, signed_step
from ..config import config


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

    step_name = "constant_step"

    def summing(self) -> bool:
        # as the incumbent's GPU engine: closed-form runs for small noise, pulse by pulse otherwise
        return self.dw_min_std <= 0.33

    def step_n(self, w, n, up, p, xi):
        return constant_step_n(w, n, up, p, xi, self.scalars())
