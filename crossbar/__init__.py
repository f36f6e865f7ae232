"""crossbar: a simulator of analog resistive crossbar arrays for in-memory training.

NumPy reference physics (this package) with CuPy RawKernels for the GPU (raw_kernels/). Start with
:class:`AnalogTile` and :class:`TileConfig`; device models live in :mod:`crossbar.physics.devices`.
"""

from .config import (BoundManagement, DriftParameter, IOParameters, NoiseManagement, PulseType, TileConfig,
                     UpdateParameters, WeightNoiseType)
from .physics.devices import *  # noqa: F401,F403
from .physics.devices import __all__ as _devices
from .tiles.tile import AnalogTile, make_tile
from .tiles.transfer import (BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound,
                             MixedPrecisionCompound, TransferCompound)
from .tiles.unit_cell import OneSidedUnitCell, ReferenceUnitCell, VectorUnitCell

from . import cuda  # noqa: F401,E402  (the GPU leaf registers its implementations; CuPy loads on first use)

__version__ = "0.1.0"

__all__ = ["AnalogTile", "make_tile", "TransferCompound", "BufferedTransferCompound", "ChoppedTransferCompound",
           "DynamicTransferCompound", "MixedPrecisionCompound", "VectorUnitCell", "ReferenceUnitCell",
           "OneSidedUnitCell", "TileConfig", "IOParameters", "UpdateParameters",
           "DriftParameter", "PulseType",
           "NoiseManagement", "BoundManagement", "WeightNoiseType"] + list(_devices)
