"""Layers on top of the autograd: digital ``Linear``, ``AnalogLinear`` (an AnalogTile), activations, losses.

A ``Module`` holds parameters (``Tensor`` attributes that require grad), child modules and, for analog
layers, an :class:`~crossbar.tiles.tile.AnalogTile`. Its ``state_dict()`` is a flat ``{name: numpy array}``
(plain arrays only, so checkpoints never need pickle).

The analog layer contract. ``AnalogLinear`` computes ``y = tile.forward(x)``; in
backward it returns ``tile.backward(d)`` as the input gradient (only when the input needs one: the first
layer of a network skips that MVM), forms no weight gradient, and records ``(x, d)`` in its ``pending``
list. The optimizer (:class:`models.optim.AnalogSGD`) later applies ``tile.update(x, d, lr)`` as pulses.
With an ideal device and perfect IO this is exactly ``Linear``: same forward, same input gradient, same
update ``W -= lr d^T x``.

Initialisation is that of ``torch.nn.Linear``: weight and bias ``~ U(-k, k)`` with ``k = 1/sqrt(in)``,
drawn with Philox (:func:`uniform_init`) from the layer's seed, so a digital and an analog layer of the
same seed start from the same weights.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np

from crossbar.physics import rng
from crossbar.backend import get_xp, to_backend, to_numpy
from crossbar.config import Config, TileConfig
from crossbar.tiles.tile import make_tile

from .autograd import Array, Function, Tensor, xp_of

F32 = np.float32
#: key path of the initialisation draws: seed_key(seed, INIT_PATH); the tile uses paths 0-3 of its seed
INIT_PATH = 0x494E4954  # "INIT"


def uniform_init(seed: int, shape: tuple[int, ...], bound: float, c2: int = 0) -> np.ndarray:
    """Float32 ``U(-bound, bound)`` of ``shape`` from Philox: key ``seed_key(seed, INIT_PATH)``, ``c2`` names
    the array (0 weight, 1 bias). Element ``e`` uses counter ``(e // 4, 0, c2, D2D)`` (a construction draw).

    Example:
        >>> uniform_init(0, (2, 3), 0.5).shape
        (2, 3)
    """
    u = rng.uniform_array(rng.seed_key(seed, INIT_PATH), rng.Stream.D2D, shape, c1=0, c2=c2)
    return (u * F32(2 * bound) - F32(bound)).astype(F32)  # u in [0, 1) -> [-bound, bound)


class Module:
    """Base of layers and containers.

    Parameters are the public ``Tensor`` attributes that require grad; children are the ``Module``
    attributes (and ``Sequential``'s items). Subclasses implement ``forward``.

    Attributes:
        training: True after ``train()`` (the default), False after ``eval()``.
    """

    training = True

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    # ---- traversal ----------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module) and not name.startswith("_"):
                yield name, value

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and all descendants, depth first, with dotted names ("" for self)."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}{name}." if prefix else f"{name}.")

    def named_parameters(self) -> Iterator[tuple[str, Tensor]]:
        """Digital parameters with dotted names ("0.weight", ...). Analog weights are not parameters."""
        for prefix, module in self.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, Tensor) and value.requires_grad and not name.startswith("_"):
                    yield prefix + name, value

    def parameters(self) -> list[Tensor]:
        return [p for _, p in self.named_parameters()]

    def analog_layers(self) -> list[AnalogLinear]:
        """Every layer backed by an analog tile, in forward order."""
        return [m for _, m in self.named_modules() if isinstance(m, AnalogLinear)]

    def train(self, mode: bool = True) -> Module:
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, backend: str) -> Module:
        """Move all parameters and tiles to ``backend`` ('numpy' or 'cupy'); returns self."""
        get_xp(backend)
        for _, p in self.named_parameters():
            p.data = to_backend(p.data, backend)
            p.grad = None
        for layer in self.analog_layers():
            layer.tile.to(backend)
            layer.tile.check_finite = backend == "numpy"  # the check is a host synchronisation on a GPU
            layer.pending.clear()
        return self

    # ---- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and every tile's state, as plain NumPy copies keyed by dotted names."""
        return self._state(encode=True)

    def _state(self, encode: bool) -> dict[str, np.ndarray]:
        state = {name: to_numpy(p.data).copy() for name, p in self.named_parameters()}
        for prefix, module in self.named_modules():
            if isinstance(module, AnalogLinear):
                state.update({f"{prefix}tile/{k}": _encode(k, v) if encode else v
                              for k, v in module.tile.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore ``state_dict()`` output; checks every name, shape, dtype and tile config first.

        Raises:
            ValueError: naming the first mismatch; the module is then left unchanged.
        """
        expected = self._state(encode=False)
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        # tile drift state is created on first use: it may legitimately be on one side only
        missing = [k for k in missing if "/drift/" not in k]
        unexpected = [k for k in unexpected if "/drift/" not in k]
        if missing or unexpected:
            raise ValueError(f"state dict does not fit {type(self).__name__}: missing {missing[:5]}"
                             f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                             f"{'...' if len(unexpected) > 5 else ''}")
        state = {k: _decode(v, expected.get(k)) for k, v in state.items()}
        for name, ref in expected.items():
            if name not in state:
                continue
            value = state[name]
            if ref.ndim == 0 and value.ndim == 0 and "O" in (ref.dtype.kind, value.dtype.kind):
                continue  # an optional scalar of the tile's IO state (None until first used)
            if name.endswith("tile/config"):
                if Config.from_dict(json.loads(str(value))) != Config.from_dict(json.loads(str(ref))):
                    raise ValueError(f"state dict entry {name!r}: the tile config differs from the layer's")
            elif value.shape != ref.shape or value.dtype.kind != ref.dtype.kind:
                raise ValueError(f"state dict entry {name!r}: {value.dtype}{list(value.shape)}, "
                                 f"expected {ref.dtype}{list(ref.shape)}")
        for name, p in self.named_parameters():
            p.data = to_backend(np.array(state[name], dtype=p.data.dtype), _backend_of(p.data))
            p.grad = None
        for prefix, module in self.named_modules():
            if isinstance(module, AnalogLinear):
                head = f"{prefix}tile/"
                module.tile.load_state_dict({k[len(head):]: v for k, v in state.items() if k.startswith(head)})
                module.pending.clear()


def _encode(name: str, v: np.ndarray) -> np.ndarray:
    """A tile state entry as a plain array: an unset optional scalar (None, e.g. the running noise-management
    alpha before the first MVM) becomes an empty float32 array, so checkpoints never need pickle."""
    if v.dtype.hasobject:
        if v.ndim == 0 and v.item() is None:
            return np.zeros(0, F32)
        raise TypeError(f"tile state {name!r} holds Python objects ({v!r}); cannot store it as a plain array")
    return v


def _decode(v, ref: np.ndarray | None) -> np.ndarray:
    """Inverse of :func:`_encode` (``ref``: the entry of the current state, to know a scalar is expected)."""
    v = np.asarray(v)
    if ref is not None and ref.ndim == 0 and v.shape == (0,):
        return np.array(None, dtype=object)
    return v


def _backend_of(a: Array) -> str:
    return "cupy" if xp_of(a) is not np else "numpy"


class Sequential(Module):
    """Modules applied in order; children are named "0", "1", ..."""

    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from ((str(i), m) for i, m in enumerate(self.layers))

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {m!r}" for i, m in enumerate(self.layers))
        return f"Sequential({inner}\n)"


# ---- digital and analog linear layers -------------------------------------------------------------


class _Linear(Function):
    """y = x @ w.T (+ b); the weight gradient is d.T @ x, exactly what ``AnalogTile.update`` applies."""

    def forward(ctx, x, w, b=None):
        ctx.x, ctx.w = x, w
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(ctx, d):
        need_x, need_w = ctx.needs_input_grad[:2]
        dx = d @ ctx.w if need_x else None
        # a batch of one is an outer product: broadcasting gives the bits of the k = 1 matmul, ~4x faster
        dw = (d.T * ctx.x if d.shape[0] == 1 else d.T @ ctx.x) if need_w else None
        if len(ctx.needs_input_grad) == 2:
            return dx, dw
        return dx, dw, (d.sum(axis=0) if ctx.needs_input_grad[2] else None)


class Linear(Module):
    """Digital fully connected layer ``y = x W^T + b``.

    Args:
        in_features, out_features: sizes; ``weight`` is ``[out, in]``, ``bias`` ``[out]``.
        bias: whether to add a bias.
        seed: seed of the initialisation (see :func:`uniform_init`).
        backend: 'numpy' or 'cupy'.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, seed: int = 0,
                 backend: str = "numpy"):
        _check_sizes(in_features, out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        w, b = _init(seed, self.in_features, self.out_features)
        xp = get_xp(backend)
        self.weight = Tensor(xp.asarray(w), requires_grad=True)
        self.bias = Tensor(xp.asarray(b), requires_grad=True) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if self.bias is None:
            return _Linear.apply(x, self.weight)
        return _Linear.apply(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"


class _AnalogMatmul(Function):
    """y = tile.forward(x) (``x`` augmented by a column of ones for an analog bias).

    ``token`` is a 0-size tensor that requires grad and stands for the tile's weights: it makes the graph be
    recorded even when ``x`` needs no gradient (the first layer), and never receives a gradient.
    """

    def forward(ctx, x, token, layer):
        if layer.analog_bias:
            xp = xp_of(x)
            xa = xp.empty((x.shape[0], x.shape[1] + 1), dtype=F32)
            xa[:, :-1] = x
            xa[:, -1] = 1
            x = xa
        ctx.x, ctx.layer = x, layer
        return layer.tile.forward(x)

    def backward(ctx, d):
        layer = ctx.layer
        layer.pending.append((ctx.x, d))
        if not ctx.needs_input_grad[0]:
            return None, None  # first layer: the backward MVM would be wasted work
        dx = layer.tile.backward(d)
        return (dx[:, :-1] if layer.analog_bias else dx), None


class AnalogLinear(Module):
    """Fully connected layer whose weights live on an analog crossbar tile.

    Args:
        in_features, out_features: sizes.
        bias: whether the layer has a bias.
        config: the tile's :class:`~crossbar.config.TileConfig` (default: ConstantStep device, default IO).
        seed: seed of the initialisation and of the tile's randomness (an int in ``[0, 2**64)``).
        digital_bias: keep the bias as a digital parameter (plain SGD) instead of an extra analog column.
        backend: 'numpy' or 'cupy'.

    Attributes:
        tile: the :class:`~crossbar.tiles.tile.AnalogTile`, shape ``(out, in + 1)`` with an analog bias (its last
            column is the bias), else ``(out, in)``.
        bias: the digital bias ``Tensor`` when ``digital_bias``, else None.
        pending: ``(x, d)`` pairs recorded by backward and not yet applied by the optimizer.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, config: TileConfig | None = None,
                 seed: int = 0, digital_bias: bool = False, backend: str = "numpy"):
        _check_sizes(in_features, out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.analog_bias = bool(bias) and not digital_bias
        config = TileConfig() if config is None else config
        w, b = _init(seed, self.in_features, self.out_features)
        self.tile = make_tile(self.out_features, self.in_features + self.analog_bias, config, seed=seed)
        self.tile.set_weights(np.concatenate([w, b[:, None]], axis=1) if self.analog_bias else w)
        xp = get_xp(backend)
        self.bias = Tensor(xp.asarray(b), requires_grad=True) if bias and digital_bias else None
        self._token = Tensor(xp.zeros(0, F32), requires_grad=True)
        self.pending: list[tuple[Array, Array]] = []
        if backend != "numpy":
            self.tile.to(backend)
            self.tile.check_finite = False  # a host synchronisation per call on the GPU

    def forward(self, x: Tensor) -> Tensor:
        y = _AnalogMatmul.apply(x, self._token, layer=self)
        return y if self.bias is None else y + self.bias

    def get_weights(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Exact ``(weight [out, in], bias [out] or None)`` as NumPy copies (analog bias: the last column)."""
        w = self.tile.get_weights()
        if self.analog_bias:
            return w[:, :-1].copy(), w[:, -1].copy()
        return w, (None if self.bias is None else to_numpy(self.bias.data).copy())

    def set_weights(self, weight, bias=None) -> None:
        """Set the weights (and bias) exactly (``tile.set_weights``: clipped to the device bounds)."""
        weight = np.asarray(to_numpy(weight), F32)
        if self.analog_bias:
            if bias is None:
                raise ValueError("AnalogLinear.set_weights: this layer has an analog bias; pass bias")
            weight = np.concatenate([weight, np.asarray(to_numpy(bias), F32).reshape(-1, 1)], axis=1)
        elif bias is not None:
            if self.bias is None:
                raise ValueError("AnalogLinear.set_weights: this layer has no bias")
            self.bias.data[...] = to_backend(np.asarray(to_numpy(bias), F32), self.tile.backend)
        self.tile.set_weights(weight)

    def __repr__(self) -> str:
        kind = "analog" if self.analog_bias else ("digital" if self.bias is not None else "none")
        return (f"AnalogLinear({self.in_features}, {self.out_features}, bias={kind}, "
                f"device={type(self.tile.device).__name__})")


def _check_sizes(in_features, out_features):
    for name, v in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _init(seed: int, in_features: int, out_features: int) -> tuple[np.ndarray, np.ndarray]:
    k = 1.0 / math.sqrt(in_features)
    return uniform_init(seed, (out_features, in_features), k, 0), uniform_init(seed, (out_features,), k, 1)


# ---- activations -----------------------------------------------------------------------------------


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()

    def __repr__(self) -> str:
        return "Sigmoid()"


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()

    def __repr__(self) -> str:
        return "Tanh()"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()

    def __repr__(self) -> str:
        return "ReLU()"


class LogSoftmax(Module):
    def __init__(self, axis: int = -1):
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return x.log_softmax(self.axis)

    def __repr__(self) -> str:
        return f"LogSoftmax(axis={self.axis})"


# ---- losses (mean over the batch) -----------------------------------------------------------------


class _NLL(Function):
    """-mean_b logp[b, target[b]]; a fused op (no scatter-add) because it runs every training step."""

    def forward(ctx, logp, target):
        xp = xp_of(logp)
        n = logp.shape[0]
        ctx.shape, ctx.target, ctx.rows = logp.shape, target, xp.arange(n)
        ctx.scale = logp.dtype.type(-1.0 / n)
        return logp[ctx.rows, target].sum() * ctx.scale

    def backward(ctx, grad):
        out = xp_of(grad).zeros(ctx.shape, dtype=grad.dtype)
        out[ctx.rows, ctx.target] = grad * ctx.scale
        return out


def _targets(target, like: Tensor) -> Array:
    t = target.data if isinstance(target, Tensor) else target
    xp = xp_of(like.data)
    t = xp.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"class targets must be integers, got dtype {t.dtype}")
    return t


def nll_loss(logp: Tensor, target) -> Tensor:
    """Negative log-likelihood of integer class ``target`` [batch] under log-probabilities ``logp``
    [batch, classes], averaged over the batch (``torch.nn.NLLLoss``)."""
    if logp.ndim != 2:
        raise ValueError(f"nll_loss: logp must be [batch, classes], got shape {logp.shape}")
    t = _targets(target, logp)
    if t.shape != (logp.shape[0],):
        raise ValueError(f"nll_loss: target must have shape ({logp.shape[0]},), got {t.shape}")
    return _NLL.apply(logp, target=t)


def cross_entropy(logits: Tensor, target) -> Tensor:
    """``nll_loss(log_softmax(logits), target)``, averaged over the batch."""
    return nll_loss(logits.log_softmax(axis=-1), target)


def mse_loss(pred: Tensor, target) -> Tensor:
    """Mean squared error over all elements (``torch.nn.MSELoss``; for [batch, 1] the mean over the batch)."""
    target = target if isinstance(target, Tensor) else pred._lift(target)
    if target.shape != pred.shape:
        raise ValueError(f"mse_loss: target shape {target.shape} differs from prediction shape {pred.shape}")
    diff = pred - target
    return (diff * diff).mean()
