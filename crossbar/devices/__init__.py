"""Device models: one module per family (config, device-to-device sampling, pure step function).

Adding a model takes one module here (a :class:`PulsedDevice` subclass naming a registered step function)
and one ``__device__`` function of the same name in raw_kernels/devices.cuh.
"""

from .base import PulsedDevice, STEPS
from .constant_step import ConstantStepDevice
from .exp_step import ExpStepDevice
from .ideal import IdealDevice
from .linear_step import LinearStepDevice, SoftBoundsDevice, SoftBoundsPmaxDevice
from .piecewise_step import PiecewiseStepDevice
from .pow_step import PowStepDevice, PowStepReferenceDevice
from .soft_bounds_reference import SoftBoundsReferenceDevice

PULSED_DEVICES = (ConstantStepDevice, LinearStepDevice, SoftBoundsDevice, SoftBoundsPmaxDevice,
                  SoftBoundsReferenceDevice, ExpStepDevice, PowStepDevice, PowStepReferenceDevice,
                  PiecewiseStepDevice)

__all__ = ["PulsedDevice", "STEPS", "IdealDevice", "PULSED_DEVICES"] + [c.__name__ for c in PULSED_DEVICES]
