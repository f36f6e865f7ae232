"""Compound tiles on the GPU (the fused transfer path) equal the NumPy reference (sequential transfers)."""

import numpy as np
import pytest

import crossbar.devices as D
from crossbar import make_tile, rng
from crossbar.presets import build_config

pytestmark = pytest.mark.gpu
F32 = np.float32


def pair(cfg, out_size=9, in_size=21, seed=4):
    cpu = make_tile(out_size, in_size, cfg, seed=seed)
    gpu = make_tile(out_size, in_size, cfg, seed=seed, backend="cupy")
    return cpu, gpu


@pytest.mark.parametrize("algorithm", ["tiki-taka", "ttv2", "c-ttv2", "agad", "mp"])
@pytest.mark.parametrize("device", ["soft-bounds-reference", "constant-step", "reram-sb"])
def test_gpu_compound_matches_numpy(algorithm, device):
    cfg = build_config(algorithm, device)
    if algorithm in ("c-ttv2", "agad"):  # chop often, so the in-batch chopper flips are exercised
        cfg = cfg.replace(device=cfg.device.replace(in_chop_prob=0.5))
    cpu, gpu = pair(cfg)
    for step in range(6):  # 6 x 8 samples: over two sweeps of the 21 columns
        x = rng.normal_array(rng.seed_key(step), 0, (8, 21))
        d = rng.normal_array(rng.seed_key(step), 1, (8, 9)) * F32(0.3)
        cpu.update(x, d, 0.1)
        gpu.update(x, d, 0.1)
    tol = 0 if device != "reram-sb" else 1e-6
    np.testing.assert_allclose(gpu.get_weights(), cpu.get_weights(), rtol=0, atol=tol)
    for k, v in cpu.hidden_parameters().items():
        np.testing.assert_allclose(gpu.hidden_parameters()[k], v, rtol=0, atol=tol, err_msg=k)
    assert [t.counters for t in cpu._progress_tiles()] == [t.counters for t in gpu._progress_tiles()]
    assert np.array_equal(cpu._host_state(), gpu._host_state())


def test_fused_path_is_taken_for_the_chopped_family():
    cfg = build_config("c-ttv2", "soft-bounds-reference")
    tile = make_tile(9, 21, cfg, seed=1, backend="cupy")
    assert tile._fused_ok(8, tile._period(0, 8))
    ttv1 = make_tile(9, 21, build_config("tiki-taka", "soft-bounds-reference"), seed=1, backend="cupy")
    assert not ttv1._fused_ok(8, ttv1._period(0, 8))


def test_graph_replay_of_a_c_ttv2_model_equals_eager():
    import cupy
    from models.graph import GraphStep
    from models.layers import AnalogLinear, LogSoftmax, Sequential, Sigmoid
    from models.mnist import train_step
    from models.optim import AnalogSGD

    def build():
        cfg = build_config("c-ttv2", D.SoftBoundsReferenceDevice())
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
    assert step.failed is None and step.replays == 4
    for a, b in zip(eager.analog_layers(), model.analog_layers()):
        assert np.array_equal(a.tile.get_weights(), b.tile.get_weights())
        assert np.array_equal(a.tile._host_state(), b.tile._host_state())
