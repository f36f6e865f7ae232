"""models.layers: the analog layer contract, Linear == AnalogLinear (ideal, perfect IO), modules, losses."""

import numpy as np
import pytest

from crossbar import IOParameters, TileConfig
from crossbar.physics import rng
from crossbar.physics.devices import ConstantStepDevice, IdealDevice
from models.autograd import Tensor
from models.layers import (AnalogLinear, Linear, LogSoftmax, ReLU, Sequential, Sigmoid, Tanh, cross_entropy,
                           mse_loss, nll_loss, uniform_init)
from models.optim import SGD, AnalogSGD

F32 = np.float32
IDEAL = TileConfig(device=IdealDevice(), forward=IOParameters(is_perfect=True),
                   backward=IOParameters(is_perfect=True))


def normal(seed, shape, scale=1.0):
    return rng.normal_array(rng.seed_key(seed), 0, shape) * F32(scale)


def dyadic(seed, shape):
    """Small multiples of 1/64: every product and sum in these tests is exact in float32, in any order."""
    return (np.rint(normal(seed, shape, 8.0)) / F32(64)).astype(F32)


def linear_pair(bias, digital_bias=False, n_in=7, n_out=5, seed=3):
    return (Linear(n_in, n_out, bias=bias, seed=seed),
            AnalogLinear(n_in, n_out, bias=bias, config=IDEAL, seed=seed, digital_bias=digital_bias))


def weights(layer):
    if isinstance(layer, Linear):
        return layer.weight.data.copy(), None if layer.bias is None else layer.bias.data.copy()
    return layer.get_weights()


def step_both(digital, analog, x, lr, d_scale=1.0):
    """Forward, backward of sum(y * r) and one optimizer step on both layers; returns outputs and grads."""
    r = normal(11, (x.shape[0], digital.out_features), d_scale)
    results = []
    for layer, opt in ((digital, SGD(digital.parameters(), lr)), (analog, AnalogSGD(analog, lr))):
        opt.zero_grad()
        xt = Tensor(x.copy(), requires_grad=True)
        y = layer(xt)
        (y * r).sum().backward()
        opt.step()
        results.append((y.data, xt.grad))
    return results


@pytest.mark.parametrize("bias,digital_bias", [(False, False), (True, True)], ids=["no-bias", "digital-bias"])
def test_analog_linear_equals_linear_bit_for_bit(bias, digital_bias):
    # DESIGN decision 5 / style anchor 12: ideal device + perfect IO is exactly the digital layer
    digital, analog = linear_pair(bias, digital_bias)
    for a, b in zip(weights(digital), weights(analog)):
        assert (a is None and b is None) or np.array_equal(a, b)
    for t in range(4):  # four steps: forward, input gradient and update stay identical
        x = normal(t, (1 if t == 3 else 4, 7))  # batch 1 takes Linear's outer-product path
        (yd, gd), (ya, ga) = step_both(digital, analog, x, lr=0.1)
        assert ya.dtype == gd.dtype == np.float32
        assert np.array_equal(yd, ya) and np.array_equal(gd, ga)
        for a, b in zip(weights(digital), weights(analog)):
            assert (a is None and b is None) or np.array_equal(a, b)


def test_analog_bias_column_equals_linear():
    # The analog bias sums inside the tile's matmul, so with arbitrary floats only the rounding order
    # differs; on dyadic numbers (every operation exact) the two layers agree exactly.
    digital, analog = linear_pair(True)
    w, b = dyadic(1, (5, 7)), dyadic(2, (5,))
    digital.weight.data[...], digital.bias.data[...] = w, b
    analog.set_weights(w, b)
    assert analog.tile.shape == (5, 8)
    x, r = dyadic(3, (4, 7)), dyadic(4, (4, 5))
    lr = 0.25
    outs = []
    for layer, opt in ((digital, SGD(digital.parameters(), lr)), (analog, AnalogSGD(analog, lr))):
        opt.zero_grad()
        xt = Tensor(x, requires_grad=True)
        y = layer(xt)
        (y * r).sum().backward()
        opt.step()
        outs.append((y.data, xt.grad, *weights(layer)))
    for a, b in zip(*outs):
        assert np.array_equal(a, b)
    # and on random floats to float32 rounding
    (yd, gd), (ya, ga) = step_both(digital, analog, normal(5, (6, 7)), lr=0.1)
    np.testing.assert_allclose(ya, yd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ga, gd, rtol=1e-5, atol=1e-6)
    for a, b in zip(weights(digital), weights(analog)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_analog_backward_records_pending_and_skips_first_layer_mvm():
    layer = AnalogLinear(6, 3, config=IDEAL, seed=1)
    x = normal(0, (4, 6))
    y = layer(Tensor(x))  # a network input: needs no gradient
    assert y.requires_grad  # the graph is recorded anyway (the weight token)
    y.sum().backward()
    assert layer.tile.counters["backward"] == 0  # no wasted backward MVM
    assert len(layer.pending) == 1
    xa, d = layer.pending[0]
    assert xa.shape == (4, 7) and np.array_equal(xa[:, :6], x) and np.all(xa[:, 6] == 1)
    np.testing.assert_array_equal(d, np.ones((4, 3), F32))
    assert layer.parameters() == []  # analog weights are not digital parameters: no weight gradient
    before = layer.tile.get_weights()
    AnalogSGD(layer, 0.5).step()
    assert layer.pending == []
    np.testing.assert_array_equal(layer.tile.get_weights(), before - F32(0.5) * (d.T @ xa))

    # a hidden layer's input does get the backward MVM, bias line dropped
    h = Tensor(x, requires_grad=True)
    layer(h).sum().backward()
    assert layer.tile.counters["backward"] == 4
    np.testing.assert_allclose(h.grad, np.ones((4, 3), F32) @ layer.tile.get_weights()[:, :6], rtol=1e-6)


def test_pulsed_layer_trains_a_single_sample():
    # ConstantStep devices, default IO: the loss of a fixed sample must fall under repeated updates
    layer = AnalogLinear(20, 4, config=TileConfig(device=ConstantStepDevice()), seed=2)
    x, target = normal(1, (1, 20)), np.array([2])
    opt = AnalogSGD(layer, 0.1)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = cross_entropy(layer(Tensor(x)), target)
        loss.backward()
        opt.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0]


def test_initialisation_is_torch_like_and_seeded():
    lin = Linear(400, 300, seed=5)
    k = 1 / np.sqrt(400)
    w, b = lin.weight.data, lin.bias.data
    assert w.dtype == b.dtype == np.float32 and w.shape == (300, 400) and b.shape == (300,)
    assert np.abs(w).max() <= k and np.abs(b).max() <= k
    # U(-k, k): mean 0, variance k^2/3 (n = 120000: 6-sigma bounds)
    assert abs(w.mean()) < 6 * k / np.sqrt(3 * w.size)
    assert abs(w.var() / (k * k / 3) - 1) < 6 * np.sqrt(0.8 / w.size)
    assert np.array_equal(w, Linear(400, 300, seed=5).weight.data)
    assert not np.array_equal(w, Linear(400, 300, seed=6).weight.data)
    np.testing.assert_array_equal(uniform_init(5, (300, 400), k, 0), w)
    analog = AnalogLinear(400, 300, seed=5)  # the same values, clipped to each device's bounds
    hidden = analog.tile.hidden_parameters()
    expected = np.clip(np.concatenate([w, b[:, None]], axis=1), hidden["min_bound"], hidden["max_bound"])
    np.testing.assert_array_equal(analog.tile.get_weights(), expected)
    assert np.mean(expected == np.concatenate([w, b[:, None]], axis=1)) > 0.99


def test_module_traversal_and_state_dict_round_trip():
    net = Sequential(Linear(4, 3, seed=1), Sigmoid(), AnalogLinear(3, 2, seed=2, digital_bias=True), LogSoftmax())
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert net.analog_layers() == [net[2]]
    assert not net.eval()[2].training and net.train()[0].training
    state = net.state_dict()
    assert all(isinstance(v, np.ndarray) and not v.dtype.hasobject for v in state.values())
    assert "2.tile/weights" in state and "2.tile/counters" in state
    other = Sequential(Linear(4, 3, seed=9), Sigmoid(), AnalogLinear(3, 2, seed=8, digital_bias=True),
                       LogSoftmax())
    x = normal(0, (5, 4))
    net(Tensor(x))  # advance the tile's forward counter
    other.load_state_dict(net.state_dict())
    for k, v in net.state_dict().items():
        assert np.array_equal(v, other.state_dict()[k]), k
    assert np.array_equal(net(Tensor(x)).data, other(Tensor(x)).data)  # same noise: counters restored


def test_load_state_dict_checks_everything_first():
    net = Sequential(Linear(4, 3, seed=1), AnalogLinear(3, 2, seed=2))
    before = net.state_dict()
    bad = dict(before)
    bad["1.tile/weights"] = np.zeros((2, 5), F32)
    bad["0.weight"] = np.full((3, 4), 7, F32)  # would be assigned first if checks were lazy
    with pytest.raises(ValueError, match=r"1\.tile/weights"):
        net.load_state_dict(bad)
    missing = {k: v for k, v in before.items() if k != "0.bias"}
    with pytest.raises(ValueError, match="missing.*0.bias"):
        net.load_state_dict(missing)
    other_cfg = AnalogLinear(3, 2, seed=2, config=TileConfig(device=ConstantStepDevice(dw_min=0.01)))
    with pytest.raises(ValueError, match="config differs"):
        Sequential(Linear(4, 3, seed=1), other_cfg).load_state_dict(before)
    for k, v in net.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_activations_and_sequential():
    x = normal(0, (3, 4))
    np.testing.assert_allclose(Sigmoid()(Tensor(x)).data, 1 / (1 + np.exp(-x)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(Tanh()(Tensor(x)).data, np.tanh(x), rtol=1e-6)
    np.testing.assert_array_equal(ReLU()(Tensor(x)).data, np.maximum(x, 0))
    lp = LogSoftmax()(Tensor(x)).data
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1, rtol=1e-6)
    net = Sequential(Linear(4, 2, seed=0), Tanh())
    assert len(net) == 2 and isinstance(net[0], Linear)
    np.testing.assert_allclose(net(Tensor(x)).data, np.tanh(x @ net[0].weight.data.T + net[0].bias.data),
                               rtol=1e-6)
    assert "Linear(4, 2" in repr(net)


def test_losses_values_gradients_and_errors():
    logits = normal(1, (4, 5)).astype(np.float64)
    target = np.array([0, 4, 2, 2])
    t = Tensor(logits, requires_grad=True)
    loss = cross_entropy(t, target)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(loss.data, -logp[np.arange(4), target].mean(), rtol=1e-12)
    loss.backward()
    p = np.exp(logp)
    np.testing.assert_allclose(t.grad, (p - np.eye(5)[target]) / 4, rtol=1e-10, atol=1e-12)

    lp = Tensor(logp, requires_grad=True)
    nll_loss(lp, Tensor(target)).backward()
    np.testing.assert_allclose(lp.grad, -np.eye(5)[target] / 4)

    pred = Tensor(logits, requires_grad=True)
    y = normal(2, (4, 5)).astype(np.float64)
    mse = mse_loss(pred, y)
    np.testing.assert_allclose(mse.data, np.mean((logits - y) ** 2), rtol=1e-12)
    mse.backward()
    np.testing.assert_allclose(pred.grad, 2 * (logits - y) / logits.size, rtol=1e-12)

    with pytest.raises(ValueError, match="target must have shape"):
        nll_loss(lp, target[:3])
    with pytest.raises(TypeError, match="integers"):
        nll_loss(lp, target.astype(np.float32))
    with pytest.raises(ValueError, match=r"\[batch, classes\]"):
        nll_loss(Tensor(np.zeros(3)), target)
    with pytest.raises(ValueError, match="shape"):
        mse_loss(pred, y[:2])
    f32 = cross_entropy(Tensor(logits.astype(F32), requires_grad=True), target)
    assert f32.dtype == np.float32


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 3)
    with pytest.raises(ValueError, match="out_features"):
        AnalogLinear(3, -1)
    layer = AnalogLinear(3, 2, seed=0)
    with pytest.raises(ValueError, match="pass bias"):
        layer.set_weights(np.zeros((2, 3)))
