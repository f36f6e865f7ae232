"""Compound tiles on the GPU (fused transfers) equal the independent sequential reference, bit for bit.

The reference (``tests/physics/test_transfer_reference.py``) is a per-sample NumPy loop written from the
formulas; it shares no code with ``crossbar/tiles/transfer.py`` and draws the same named random numbers.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import OneSidedUnitCell, TileConfig, VectorUnitCell, make_tile
from crossbar.physics import rng
from crossbar.presets import build_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "physics"))
from test_transfer_reference import inputs, mismatches, reference  # noqa: E402

pytestmark = pytest.mark.gpu
F32 = np.float32
OUT, IN = 9, 260
#: batch -> transfer_every: batch / transfer_every transfers per batch, at most one sweep of the 260 columns,
#: so every batch takes the fused path
TRANSFER_EVERY = {64: 1, 100: 1, 257: 1, 1024: 4}


def equal_maxima(seed, batch):
    """Inputs whose per-sample maxima are all equal (max|x| = 1, max|d| = 0.5): the auto-scale batch means of
    those maxima are then exact on both backends, whatever the summation order of the reductions."""
    x, d = inputs(seed, batch, IN, OUT)
    x, d = np.clip(x, -1, 1), np.clip(d, -0.5, 0.5)
    b = np.arange(batch)
    x[b, b % IN] = np.where(b % 2 == 0, F32(1), F32(-1))
    d[b, b % OUT] = np.where(b % 3 == 0, F32(-0.5), F32(0.5))
    return x, d


@pytest.mark.parametrize("batch", sorted(TRANSFER_EVERY))
@pytest.mark.parametrize("algorithm", ["ttv2", "c-ttv2", "agad"])
def test_fused_gpu_transfers_equal_the_reference(algorithm, batch):
    cfg = build_config(algorithm, "soft-bounds-reference")
    dev = cfg.device.replace(transfer_every=TRANSFER_EVERY[batch])
    if algorithm != "ttv2":
        dev = dev.replace(in_chop_prob=0.5)  # chopper flips inside every batch; AGAD: warm-up of 2 sweeps
    cfg = cfg.replace(device=dev)
    gpu = make_tile(OUT, IN, cfg, seed=5, backend="cupy")
    ref = reference(OUT, IN, cfg, seed=5)
    n_batches = -(-1000 * TRANSFER_EVERY[batch] // batch)  # about 1000 transfers: 3.8 sweeps
    for step in range(n_batches):
        x, d = equal_maxima(step, batch)
        assert gpu._fused_ok(batch, gpu._period(0, batch)), "the fused path must be taken"
        gpu.update(x, d, 0.1)
        ref.update(x, d, 0.1)
    bad = mismatches(gpu, ref)
    assert not bad, f"GPU and reference differ in {bad}"
    assert np.count_nonzero(ref.tiles[1].get_weights()) > 0  # C was written (after AGAD's warm-up)


@pytest.mark.parametrize("algorithm", ["tiki-taka", "mp"])
@pytest.mark.parametrize("device", ["soft-bounds-reference", "constant-step"])
def test_gpu_compound_equals_the_reference(algorithm, device):
    # TTv1 (sequential transfers on the GPU) and mixed precision; dyadic inputs keep chi exact in any order
    cfg = build_config(algorithm, device)
    gpu = make_tile(9, 21, cfg, seed=4, backend="cupy")
    ref = reference(9, 21, cfg, seed=4)
    for step in range(6):
        x, d = inputs(step, 8, 21, 9, dyadic=True)
        gpu.update(x, d, 0.125)
        ref.update(x, d, 0.125)
    bad = mismatches(gpu, ref)
    assert not bad, f"GPU and reference differ in {bad}"


def test_fused_path_is_taken_for_the_chopped_family():
    cfg = build_config("c-ttv2", "soft-bounds-reference")
    tile = make_tile(9, 21, cfg, seed=1, backend="cupy")
    assert tile._fused_ok(8, tile._period(0, 8))
    ttv1 = make_tile(9, 21, build_config("tiki-taka", "soft-bounds-reference"), seed=1, backend="cupy")
    assert not ttv1._fused_ok(8, ttv1._period(0, 8))


def mp_every(n):
    cfg = build_config("mp", D.SoftBoundsReferenceDevice())
    return cfg.replace(device=cfg.device.replace(transfer_every=n))


@pytest.mark.parametrize("name, config, captured", [
    ("c-ttv2", lambda: build_config("c-ttv2", D.SoftBoundsReferenceDevice()), True),
    # mixed precision accumulates chi with a cuBLAS GEMM, which CuPy refuses to capture: it runs eagerly
    ("mp", lambda: mp_every(1), False),
    ("mp every 2 batches", lambda: mp_every(2), False),
    ("one-sided, refresh every batch", lambda: TileConfig(device=OneSidedUnitCell(
        unit_cell_devices=(D.ConstantStepDevice(w_min=0.0, w_max=1.0),), refresh_every=1)), True),
    ("vector, all", lambda: TileConfig(device=VectorUnitCell(unit_cell_devices=(D.SoftBoundsDevice(),) * 2)), True),
    # the device a sequential policy picks is decided on the host: refused, runs eagerly
    ("vector, sequential", lambda: TileConfig(device=VectorUnitCell(
        unit_cell_devices=(D.SoftBoundsDevice(),) * 2, update_policy="single_sequential")), False),
], ids=lambda v: v if isinstance(v, str) else "")
def test_graph_replay_of_a_compound_model_equals_eager(name, config, captured):
    import cupy
    from crossbar.cuda.graph import GraphStep
    from models.layers import AnalogLinear, LogSoftmax, Sequential, Sigmoid
    from models.trainer import train_step
    from models.optim import AnalogSGD

    def build():
        cfg = config()
        model = Sequential(AnalogLinear(20, 16, config=cfg, seed=3), Sigmoid(), AnalogLinear(16, 4, config=cfg, seed=4),
                           LogSoftmax())
        model.to("cupy")
        return model, AnalogSGD(model, 0.1)
    xs = cupy.asarray(rng.uniform_array(rng.seed_key(1), 0, (5, 8, 20)))
    ys = cupy.asarray((rng.uniform_array(rng.seed_key(2), 0, (5, 8)) * 4).astype(np.int64))
    eager, eager_opt = build()
    for k in range(5):
        train_step(eager, eager_opt, xs[k], ys[k])
    model, opt = build()
    step = GraphStep(train_step, model, opt, cupy)
    for k in range(5):
        step(xs[k], ys[k])
    assert (step.failed is None and step.replays == 4) if captured else (step.failed and step.replays == 0)
    for a, b in zip(eager.analog_layers(), model.analog_layers()):
        assert np.array_equal(a.tile.get_weights(), b.tile.get_weights())
        assert np.array_equal(a.tile._host_state(), b.tile._host_state())
        assert a.tile.counters == b.tile.counters
