"""A training step replayed from a CUDA graph equals the same steps run eagerly, bit for bit."""

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import TileConfig
from crossbar.physics import rng
from crossbar.config import DriftParameter

pytestmark = pytest.mark.gpu
F32 = np.float32


def model_and_optimizer(device, seed=3):
    from models.layers import AnalogLinear, LogSoftmax, Sequential, Sigmoid
    from models.optim import AnalogSGD
    cfg = TileConfig(device=device)
    model = Sequential(AnalogLinear(20, 16, config=cfg, seed=seed), Sigmoid(),
                       AnalogLinear(16, 4, config=cfg, seed=seed + 1), LogSoftmax())
    model.to("cupy")
    return model, AnalogSGD(model, 0.1)


@pytest.mark.parametrize("device", [D.ConstantStepDevice(), D.SoftBoundsDevice(diffusion=0.001, lifetime=100.0)],
                         ids=["constant", "soft_bounds_diffusing"])
def test_graph_replay_equals_eager_steps(device):
    import cupy
    from crossbar.cuda.graph import GraphStep
    from models.trainer import train_step
    xs = cupy.asarray(rng.uniform_array(rng.seed_key(1), 0, (6, 8, 20)))
    ys = cupy.asarray((rng.uniform_array(rng.seed_key(2), 0, (6, 8)) * 4).astype(np.int64))
    eager_model, eager_opt = model_and_optimizer(device)
    losses = [train_step(eager_model, eager_opt, xs[k], ys[k]) for k in range(6)]
    graph_model, graph_opt = model_and_optimizer(device)
    step = GraphStep(train_step, graph_model, graph_opt, cupy)
    for k in range(6):
        step(xs[k], ys[k])
    assert step.failed is None and step.replays == 5  # the first batch trains eagerly, then capture
    assert step.take_loss_sum() == pytest.approx(float(sum(losses)), rel=1e-6)
    for a, b in zip(eager_model.analog_layers(), graph_model.analog_layers()):
        assert np.array_equal(a.tile.get_weights(), b.tile.get_weights())
        assert a.tile.counters == b.tile.counters
    assert graph_opt.steps == eager_opt.steps == 6


def test_new_lr_recaptures():
    import cupy
    from crossbar.cuda.graph import GraphStep
    from models.trainer import train_step
    model, opt = model_and_optimizer(D.ConstantStepDevice())
    step = GraphStep(train_step, model, opt, cupy)
    x = cupy.asarray(rng.uniform_array(rng.seed_key(1), 0, (8, 20)))
    y = cupy.zeros(8, dtype=np.int64)
    step(x, y)
    step(x, y)
    opt.lr = 0.05
    step(x, y)  # eager at the new lr, then a new capture
    step(x, y)
    assert step.key[1] == 0.05 and step.replays == 2


def test_gpu_periodic_operations_match_numpy():
    from crossbar import AnalogTile
    dev = D.SoftBoundsDevice(diffusion=0.01, lifetime=50.0, write_noise_std=0.5, reset=0.1,
                             drift=DriftParameter(nu=0.05, nu_std=0.1, w_noise_std=0.001))
    cpu = AnalogTile(9, 13, TileConfig(device=dev), seed=4)
    cpu.set_weights(rng.uniform_array(rng.seed_key(4), 0, (9, 13)) * F32(0.4) - F32(0.2))
    gpu = AnalogTile(9, 13, TileConfig(device=dev), seed=4)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cupy")
    for tile in (cpu, gpu):
        tile.post_update_step()
        tile.reset_columns(1, 2, prob=0.5)
        tile.drift(10.0)
        tile.drift(10.0)
        tile.clip_weights(0.3)
    assert np.abs(cpu.get_weights() - gpu.get_weights()).max() <= 1e-6  # power() may differ by an ulp
    assert cpu.counters == gpu.counters


def test_graph_epoch_equals_eager_steps():
    import cupy
    from crossbar.cuda.graph import GraphEpoch
    from models.trainer import train_step
    x_all = cupy.asarray(rng.uniform_array(rng.seed_key(1), 0, (40, 20)))
    y_all = cupy.asarray((rng.uniform_array(rng.seed_key(2), 0, (40,)) * 4).astype(np.int64))
    order = np.arange(40)[::-1].copy()
    eager_model, eager_opt = model_and_optimizer(D.ConstantStepDevice())
    for k in range(5):
        idx = cupy.asarray(order[8 * k:8 * (k + 1)])
        train_step(eager_model, eager_opt, x_all[idx], y_all[idx])
    model, opt = model_and_optimizer(D.ConstantStepDevice())
    epoch = GraphEpoch(train_step, model, opt, cupy, x_all, y_all, batch=8)
    epoch.start(order)
    epoch.run(2)
    epoch.run(3)
    assert epoch.failed is None and epoch.inner.replays == 4
    for a, b in zip(eager_model.analog_layers(), model.analog_layers()):
        assert np.array_equal(a.tile.get_weights(), b.tile.get_weights())
