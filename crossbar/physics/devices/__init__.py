"""Device models: one module per family (config, device-to-device sampling, pure step function).

Adding a model takes one module here (a :class:`PulsedDevice` subclass with a ``cli_name``, naming a registered
step function) and one ``__device__`` function of the same name in raw_kernels/devices.cuh; the class registers
itself in ``crossbar.config.DEVICE_MODELS`` when it is defined.
"""

from ...config import DEVICE_MODELS
from .base import PulsedDevice, STEPS
# in the order the models are listed (--help, error messages): the registry keeps definition order
from .ideal import IdealDevice  # noqa: I001
from .constant_step import ConstantStepDevice
from .linear_step import LinearStepDevice, SoftBoundsDevice, SoftBoundsPmaxDevice
from .soft_bounds_reference import SoftBoundsReferenceDevice
from .exp_step import ExpStepDevice
from .pow_step import PowStepDevice, PowStepReferenceDevice
from .piecewise_step import PiecewiseStepDevice

#: the pulsed device models defined when this package was imported, in definition order
PULSED_DEVICES = tuple(c for c in DEVICE_MODELS.values() if issubclass(c, PulsedDevice))

__all__ = ["PulsedDevice", "STEPS", "IdealDevice", "PULSED_DEVICES"] + [c.__name__ for c in PULSED_DEVICES]
