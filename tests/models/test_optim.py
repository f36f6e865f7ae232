"""models.optim: SGD, AnalogSGD (pulsed updates, digital parameters, per-step device hooks), schedules."""

import numpy as np
import pytest

from crossbar import TileConfig
from crossbar.physics import rng
from crossbar.physics.devices import ConstantStepDevice, IdealDevice
from models.autograd import Tensor
from models.layers import AnalogLinear, Linear, Sequential, Sigmoid, cross_entropy
from models.optim import SGD, AnalogSGD, ConstantLR, MultiStepLR, StepLR

F32 = np.float32


def normal(seed, shape, scale=1.0):
    return rng.normal_array(rng.seed_key(seed), 0, shape) * F32(scale)


def test_sgd_is_plain_float32_sgd():
    lin = Linear(3, 2, seed=0)
    w0, b0 = lin.weight.data.copy(), lin.bias.data.copy()
    opt = SGD(lin.parameters(), 0.3)
    x = normal(1, (4, 3))
    (lin(Tensor(x)) * 2).sum().backward()
    gw, gb = lin.weight.grad.copy(), lin.bias.grad.copy()
    opt.step()
    np.testing.assert_array_equal(lin.weight.data, w0 - F32(0.3) * gw)
    np.testing.assert_array_equal(lin.bias.data, b0 - F32(0.3) * gb)
    np.testing.assert_array_equal(lin.weight.grad, gw)  # the step leaves the gradient alone
    assert lin.weight.data.dtype == np.float32
    opt.zero_grad()
    assert lin.weight.grad is None and opt.steps == 1
    opt.step()  # no gradients: nothing changes
    assert opt.steps == 2


def test_analog_sgd_pulses_analog_layers_and_sgds_digital_parameters():
    net = Sequential(AnalogLinear(5, 4, seed=1, digital_bias=True), Sigmoid(), Linear(4, 3, seed=2))
    opt = AnalogSGD(net, 0.1)
    assert opt.analog == [net[0]] and len(opt.params) == 3  # analog digital bias, Linear weight and bias
    x, y = normal(0, (8, 5)), np.arange(8) % 3
    before_tile, before_bias = net[0].tile.get_weights(), net[0].bias.data.copy()
    before_lin = net[2].weight.data.copy()
    cross_entropy(net(Tensor(x)), y).backward()
    assert len(net[0].pending) == 1
    _, d_rec = net[0].pending[0]
    grad_bias = net[0].bias.grad.copy()
    np.testing.assert_allclose(grad_bias, d_rec.sum(axis=0), rtol=1e-6)
    updates = net[0].tile.counters["update"]
    opt.step()
    assert net[0].pending == [] and net[0].tile.counters["update"] == updates + 8
    assert not np.array_equal(net[0].tile.get_weights(), before_tile)  # pulses were applied
    np.testing.assert_array_equal(net[0].bias.data, before_bias - F32(0.1) * grad_bias)
    assert not np.array_equal(net[2].weight.data, before_lin)
    # zero_grad drops unapplied pending updates (a backward without a step)
    cross_entropy(net(Tensor(x)), y).backward()
    opt.zero_grad()
    assert net[0].pending == [] and net[0].bias.grad is None


def test_analog_sgd_calls_post_update_step_once_per_step():
    # decay with lifetime L: w <- w (1 - 1/L) once per step (ideal device: exact)
    layer = AnalogLinear(3, 2, bias=False, config=TileConfig(device=IdealDevice(lifetime=10.0)), seed=0)
    w0 = layer.tile.get_weights()
    opt = AnalogSGD(layer, 0.0)
    for _ in range(3):
        opt.step()
    np.testing.assert_allclose(layer.tile.get_weights(), w0 * F32(0.9) ** 3, rtol=1e-6)


def test_analog_sgd_applies_every_pending_pair_in_order():
    layer = AnalogLinear(4, 3, bias=False, config=TileConfig(device=IdealDevice()), seed=0)
    opt = AnalogSGD(layer, 0.5)
    xs = [normal(k, (2, 4)) for k in range(2)]
    for x in xs:  # two backward passes before one step (e.g. gradient accumulation)
        layer(Tensor(x)).sum().backward()
    expected = layer.tile.get_weights()
    for x, d in layer.pending:
        expected = expected - F32(0.5) * (d.T @ x)
    opt.step()
    np.testing.assert_allclose(layer.tile.get_weights(), expected, rtol=1e-6)


def test_pulsed_training_lowers_the_loss():
    cfg = TileConfig(device=ConstantStepDevice())
    net = Sequential(AnalogLinear(6, 8, config=cfg, seed=1), Sigmoid(), AnalogLinear(8, 3, config=cfg, seed=2))
    opt = AnalogSGD(net, 0.5)
    x, y = normal(3, (30, 6)), np.arange(30) % 3
    x[np.arange(30), y] += 2  # separable
    losses = []
    for _ in range(80):
        opt.zero_grad()
        loss = cross_entropy(net(Tensor(x)), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0]


def test_schedules():
    opt = SGD([], 0.05)
    sched = StepLR(opt, 10, 0.5)
    lrs = []
    for _ in range(31):
        lrs.append(opt.lr)
        sched.step()
    assert lrs[:10] == [0.05] * 10 and lrs[10:20] == [0.025] * 10 and lrs[20:30] == [0.0125] * 10
    assert lrs[30] == 0.00625

    opt = SGD([], 0.01)
    paper = MultiStepLR(opt, [10, 20], 0.5)  # Gokmen & Vlasov 2016: 0.01 / 0.005 / 0.0025
    assert [paper.lr_at(e) for e in (0, 9, 10, 19, 20, 29, 40)] == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025,
                                                                    0.0025]
    assert ConstantLR(SGD([], 0.2)).lr_at(99) == 0.2

    # state round trip: a fresh scheduler continues where the saved one stopped
    for _ in range(12):
        paper.step()
    fresh_opt = SGD([], 0.01)
    fresh = MultiStepLR(fresh_opt, [10, 20], 0.5)
    fresh.load_state_dict(paper.state_dict())
    assert fresh.epoch == 12 and fresh_opt.lr == opt.lr == 0.005
    with pytest.raises(ValueError, match="StepLR"):
        fresh.load_state_dict(sched.state_dict())


def test_optimizer_state_and_bad_arguments():
    opt = SGD([], 0.1)
    opt.step()
    other = SGD([], 0.5)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.1 and other.steps == 1
    with pytest.raises(ValueError, match="lr"):
        SGD([], float("nan"))
    with pytest.raises(ValueError, match="lr"):
        SGD([], -1)
    with pytest.raises(TypeError, match="Tensors"):
        SGD([np.zeros(3)], 0.1)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, 0)
    with pytest.raises(ValueError, match="milestones"):
        MultiStepLR(opt, [20, 10])
    with pytest.raises(ValueError, match="AnalogSGD"):
        other.load_state_dict(AnalogSGD(Sequential(), 0.1).state_dict())
