"""PiecewiseStep device: the step is ``dwmin`` times a piecewise-linear function of the weight, given by
node values spread evenly over ``[min_bound, max_bound]`` (a measured response; IBM's aihwkit 1.1
PiecewiseStep).

Step law (one pulse, ``xi`` a fresh standard normal, ``N = len(piecewise_up) - 1`` sections)::

    q = max((w - b-) / (b+ - b-) N, 0),  k = min(floor(q), N - 1),  t = min(q - k, 1)
    v(w) = (1 - t) nodes[k] + t nodes[k + 1]          # nodes[0] if N == 0 or b+ <= b-
    up:   w <- clip(w + dwmin_up   v_up(w)   (1 + dw_min_std xi))
    down: w <- clip(w - dwmin_down v_down(w) (1 + dw_min_std xi))

The node values are tile-wide (1 to 64, as many down as up); ``dwmin_up/down`` and the bounds vary per
element through the shared fields (:mod:`crossbar.physics.devices.base`). Defaults ``piecewise_up = piecewise_down =
(1.0,)``, a constant step. Granularity ``dw_min piecewise_up[len // 2]``. Supports write noise.
"""

from __future__ import annotations

import numpy as np

from .base import F32, PulsedDevice, clip_to_bounds, register_step
from ...backend import array_module
from ...config import config, param


def _interpolate(nodes, q, k, t, xp):
    return (F32(1) - t) * nodes[k] + t * nodes[xp.minimum(k + 1, nodes.shape[0] - 1)]


@register_step
def piecewise_step(w, up, p, xi, c):
    """One pulse; ``c["nodes_up"]``/``c["nodes_down"]`` are the float32 node values."""
    xp = array_module(w)
    nup, ndn = xp.asarray(c["nodes_up"]), xp.asarray(c["nodes_down"])
    sections = nup.shape[0] - 1
    span = p["max_bound"] - p["min_bound"]
    if sections <= 0:
        v = xp.where(up, nup[0], ndn[0])
    else:
        safe = xp.where(span > 0, span, F32(1))
        q = xp.maximum((w - p["min_bound"]) / safe * F32(sections), F32(0))
        k = xp.minimum(xp.floor(q), F32(sections - 1)).astype(xp.int32)
        t = xp.minimum(q - k.astype(F32), F32(1))
        v = xp.where(up, _interpolate(nup, q, k, t, xp), _interpolate(ndn, q, k, t, xp))
        v = xp.where(span > 0, v, xp.where(up, nup[0], ndn[0]))
    dw = v * xp.where(up, p["dwmin_up"], -p["dwmin_down"]) * (F32(1) + c["dw_min_std"] * xi)
    return clip_to_bounds(w + dw, p)


@config
class PiecewiseStepDevice(PulsedDevice):
    """Piecewise-linear step-size response (up to 64 nodes, same count up and down)."""

    cli_name = "piecewise-step"

    piecewise_up: tuple = param((1.0,), "relative up-step size at evenly spaced weights", lo=0)
    piecewise_down: tuple = param((1.0,), "relative down-step size at evenly spaced weights", lo=0)

    step_name = "piecewise_step"
    supports_write_noise = True

    def validate(self):
        super().validate()
        if not 1 <= len(self.piecewise_up) <= 64:
            self._fail("piecewise_up", self.piecewise_up, "1 to 64 node values")
        if len(self.piecewise_down) != len(self.piecewise_up):
            self._fail("piecewise_down", self.piecewise_down,
                       f"as many node values as piecewise_up ({len(self.piecewise_up)})")

    def scalars(self) -> dict:
        return dict(dw_min_std=F32(self.dw_min_std), nodes_up=np.asarray(self.piecewise_up, F32),
                    nodes_down=np.asarray(self.piecewise_down, F32))

    def granularity(self) -> float:
        return self.dw_min * self.piecewise_up[len(self.piecewise_up) // 2]
