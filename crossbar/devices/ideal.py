"""Ideal (floating-point) device (physics.md 2.2): updates are exact ``W -= lr d x^T``, no bounds, no
pulses. Optional decay, diffusion and reset make it the digital reference of the analog studies.
"""

from __future__ import annotations

from ..config import Config, config, param


@config
class IdealDevice(Config):
    """Floating-point weights with optional decay, diffusion and reset."""

    construction_seed: int | None = param(None, "unused (no device-to-device variation); kept for symmetry",
                                          lo=0, integer=True, optional=True)
    diffusion: float = param(0.0, "diffusion std per mini-batch (weight units)", lo=0)
    lifetime: float = param(0.0, "decay lifetime in mini-batches (> 1 to act; 0 = off)", lo=0)
    reset_std: float = param(0.01, "std of a reset weight (weight units)", lo=0)

    hidden_names = ()

    def granularity(self) -> float:
        return 0.0
