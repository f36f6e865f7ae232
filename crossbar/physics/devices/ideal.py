"""Ideal (floating-point) device: updates are exact ``W -= lr d x^T``, no bounds, no pulses, no
device-to-device variation. Optional decay, diffusion and reset make it the digital reference of the analog
studies; a tile whose update pulse type is ``NONE`` uses it in place of its pulsed device.

Operations (weights in normalised units, ``xi`` a standard normal):

* ``decay(alpha)``: if ``lifetime > 1``, ``W <- W (1 - alpha / lifetime)``;
* ``diffuse()``: ``W += diffusion xi``;
* ``reset_columns``: the chosen elements become ``reset_std xi``;
* ``clip_weights(c)``: ``clip(W, -c, c)`` for ``c >= 0`` (nothing for ``c < 0``: there are no bounds).

Defaults: ``diffusion = 0``, ``lifetime = 0`` (off), ``reset_std = 0.01``. Granularity 0 (no pulses).
"""

from __future__ import annotations

from ...config import DeviceConfig, config, param


@config
class IdealDevice(DeviceConfig):
    """Floating-point weights with optional decay, diffusion and reset."""

    cli_name = "ideal"

    construction_seed: int | None = param(None, "unused (no device-to-device variation); kept for symmetry",
                                          lo=0, integer=True, optional=True)
    diffusion: float = param(0.0, "diffusion std per mini-batch (weight units)", lo=0)
    lifetime: float = param(0.0, "decay lifetime in mini-batches (> 1 to act; 0 = off)", lo=0)
    reset_std: float = param(0.01, "std of a reset weight (weight units)", lo=0)

    hidden_names = ()

    def granularity(self) -> float:
        return 0.0
