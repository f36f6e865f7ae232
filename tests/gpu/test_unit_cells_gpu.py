"""Unit cells on the GPU equal the NumPy reference: the same pulses, the same weights, the same refreshes."""

import numpy as np
import pytest

from crossbar import OneSidedUnitCell, ReferenceUnitCell, TileConfig, VectorUnitCell, make_tile
from crossbar.physics import rng
from crossbar.physics.devices import ConstantStepDevice, SoftBoundsDevice

pytestmark = pytest.mark.gpu
F32 = np.float32

CELLS = {
    "one-sided": OneSidedUnitCell(unit_cell_devices=(ConstantStepDevice(w_min=0.0, w_max=1.0, dw_min=0.02,
                                                                        count_pulses=True),), refresh_every=1),
    "one-sided pair": OneSidedUnitCell(unit_cell_devices=(SoftBoundsDevice(w_min=0.0, count_pulses=True),
                                                          SoftBoundsDevice(w_min=0.0, dw_min=0.02)), refresh_every=2),
    "vector all": VectorUnitCell(unit_cell_devices=(ConstantStepDevice(count_pulses=True),) * 3),
    "vector random": VectorUnitCell(unit_cell_devices=(SoftBoundsDevice(),) * 2, update_policy="single_random"),
    "reference": ReferenceUnitCell(unit_cell_devices=(SoftBoundsDevice(),) * 2),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_gpu_unit_cell_equals_numpy(name):
    import cupy
    cfg = TileConfig(device=CELLS[name])
    cpu, gpu = make_tile(5, 7, cfg, seed=4), make_tile(5, 7, cfg, seed=4, backend="cupy")
    for b in range(4):
        x = rng.uniform_array(rng.seed_key(b, 1), 0, (6, 7)) * F32(2) - F32(1)
        d = rng.uniform_array(rng.seed_key(b, 2), 0, (6, 5)) * F32(2) - F32(1)
        cpu.update(x, d, 0.5)
        gpu.update(cupy.asarray(x), cupy.asarray(d), 0.5)
    assert np.array_equal(cpu.get_weights(), gpu.get_weights())
    for a, b in zip(cpu.sub, gpu.sub):
        assert a.counters == b.counters
        for k in ("up", "down") if a.pulse_counts is not None else ():
            assert np.array_equal(a.pulse_counts[k], cupy.asnumpy(b.pulse_counts[k]))
    assert getattr(cpu, "refresh_counts", 0) == getattr(gpu, "refresh_counts", 0)
