"""A minimal define-by-run reverse-mode autograd on NumPy or CuPy arrays.

A ``Tensor`` wraps an array ``data`` (``numpy.ndarray`` or ``cupy.ndarray``) and, after
``backward()``, its gradient ``grad`` (same shape, dtype and array module). Each differentiable
operation is a ``Function`` subclass whose ``forward``/``backward`` work on raw arrays, so the
backend flows through untouched: the array module is always read off the data (``xp_of``).

For a scalar loss L and an operation y = f(x_1, ..., x_n), ``backward`` visits the graph in
reverse topological order and applies the chain rule

    dL/dx_i += [f.backward(dL/dy)]_i

accumulating with ``+=`` so that a tensor used twice receives both contributions; the graph is
freed as it is consumed. Binary operations broadcast like NumPy, and their backward sums the
gradient back to each operand's shape. dtypes are kept (float32 in training, float64 in gradient
checks); plain numbers and arrays mixed with a Tensor take the Tensor's dtype.

Example:
    >>> import numpy as np
    >>> x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    >>> (x * x + x).sum().backward()
    >>> x.grad
    array([3., 5., 7.])
"""

from __future__ import annotations

import contextlib
import itertools
import types
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from crossbar.backend import array_module

Array = Any  # numpy.ndarray or cupy.ndarray

_grad_enabled = True


def xp_of(array: Array) -> types.ModuleType:
    """The array module (``numpy`` or ``cupy``) that holds ``array``."""
    return array_module(array)


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Context in which operations record no graph (evaluation, optimizer steps)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


class Tensor:
    """An array, its gradient, and the Function application that produced it.

    Args:
        data: NumPy or CuPy array (kept as is, not copied), or anything ``numpy.asarray`` takes.
        requires_grad: Whether ``backward`` computes ``grad`` for this tensor.

    Attributes:
        data: The value, shape [*shape].
        grad: dL/d(data) after ``backward``, shape [*shape], same dtype; None before.
        requires_grad: True for parameters and for every tensor computed from one.
        _ctx: The ``Function`` instance that produced this tensor; None for leaves, in
            ``no_grad``, and once ``backward`` has consumed the graph.
    """

    # Makes ``ndarray <op> Tensor`` defer to Tensor's reflected operators instead of NumPy
    # building an object array of Tensors.
    __array_ufunc__ = None

    def __init__(self, data: Array, requires_grad: bool = False):
        self.data = xp_of(data).asarray(data)  # also turns NumPy scalars into 0-d arrays
        self.grad: Array | None = None
        self.requires_grad = requires_grad
        self._ctx: Function | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def T(self) -> Tensor:
        """All axes reversed (a matrix transpose for 2-d)."""
        return self.transpose()

    def __repr__(self) -> str:
        return f"Tensor({self.data!r}, requires_grad={self.requires_grad})"

    def item(self) -> float:
        """The value of a one-element tensor as a Python number (synchronises a GPU)."""
        return self.data.item()

    def detach(self) -> Tensor:
        """A leaf sharing this tensor's data, outside the graph."""
        return Tensor(self.data)

    def backward(self, grad: Array | Tensor | None = None) -> None:
        """Accumulate d(self)/dt into ``t.grad`` for every tensor t in the graph, then free it.

        Args:
            grad: dL/d(self), shape [*self.shape]. May be omitted when self is a scalar
                (one element), which is then the loss L itself.

        Raises:
            RuntimeError: If self does not require grad.
            ValueError: If ``grad`` is omitted for a non-scalar, or if ``grad`` or a gradient
                returned by a ``Function.backward`` differs in shape from its tensor.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad")
        xp = xp_of(self.data)
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward() without a grad needs a scalar, got shape {self.shape}"
                )
            grad = xp.ones_like(self.data)
        _accumulate(self, xp.asarray(_data(grad), dtype=self.data.dtype), "backward(grad)")
        for node in reversed(self._toposort()):
            ctx, node._ctx = node._ctx, None  # free the graph as it is consumed
            if ctx is None or node.grad is None:
                continue
            grads = ctx.backward(node.grad)
            grads = grads if isinstance(grads, tuple) else (grads,)
            name = f"{type(ctx).__name__}.backward"
            if len(grads) != len(ctx.parents):
                raise ValueError(
                    f"{name} returned {len(grads)} gradients for {len(ctx.parents)} inputs"
                )
            for parent, g in zip(ctx.parents, grads, strict=True):
                if g is not None and parent.requires_grad:
                    _accumulate(parent, g, name)

    def _toposort(self) -> list[Tensor]:
        """The tensors of the graph ending at self, each after all of its inputs."""
        # Iterative post-order DFS: a recursive walk would overflow the stack on deep graphs.
        order: list[Tensor] = []
        visited: set[Tensor] = set()  # Tensor hashes by identity (no __eq__ override)
        stack = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                if node._ctx is not None:
                    stack.extend((p, False) for p in node._ctx.parents if p not in visited)
        return order

    def _lift(self, other: Any) -> Tensor:
        """``other`` as a Tensor; numbers and arrays take self's array module and dtype."""
        if isinstance(other, Tensor):
            return other
        return Tensor(xp_of(self.data).asarray(other, dtype=self.data.dtype))

    # Operators. Reflected forms put the lifted operand first: ``2 - x`` is Sub(2, x).
    def add(self, other: Any) -> Tensor:
        return Add.apply(self, self._lift(other))

    def sub(self, other: Any) -> Tensor:
        return Sub.apply(self, self._lift(other))

    def mul(self, other: Any) -> Tensor:
        return Mul.apply(self, self._lift(other))

    def div(self, other: Any) -> Tensor:
        return Div.apply(self, self._lift(other))

    def matmul(self, other: Any) -> Tensor:
        return MatMul.apply(self, self._lift(other))

    def neg(self) -> Tensor:
        return Neg.apply(self)

    __add__, __sub__, __mul__, __truediv__, __matmul__, __neg__ = add, sub, mul, div, matmul, neg

    def __radd__(self, other: Any) -> Tensor:
        return Add.apply(self._lift(other), self)

    def __rsub__(self, other: Any) -> Tensor:
        return Sub.apply(self._lift(other), self)

    def __rmul__(self, other: Any) -> Tensor:
        return Mul.apply(self._lift(other), self)

    def __rtruediv__(self, other: Any) -> Tensor:
        return Div.apply(self._lift(other), self)

    def __rmatmul__(self, other: Any) -> Tensor:
        return MatMul.apply(self._lift(other), self)

    def __getitem__(self, index: Any) -> Tensor:
        """Basic and integer-array indexing, as NumPy; Tensors in ``index`` are unwrapped."""
        index = tuple(map(_data, index)) if isinstance(index, tuple) else _data(index)
        return GetItem.apply(self, index=index)

    # Reductions, movement and elementwise functions, with NumPy's semantics and shapes.
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        total = self.sum(axis, keepdims)
        return total * (total.data.size / self.data.size)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return Reshape.apply(self, shape=_varargs(shape))

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes as ``ndarray.transpose``; no axes reverses them."""
        axes = _varargs(axes) or tuple(reversed(range(self.ndim)))
        return Transpose.apply(self, axes=normalize_axis_tuple(axes, self.ndim))

    def exp(self) -> Tensor:
        return Exp.apply(self)

    def log(self) -> Tensor:
        return Log.apply(self)

    def sigmoid(self) -> Tensor:
        return Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return Tanh.apply(self)

    def relu(self) -> Tensor:
        return ReLU.apply(self)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return LogSoftmax.apply(self, axis=axis)


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Concatenate tensors along an existing ``axis`` (as ``numpy.concatenate``)."""
    return Cat.apply(*tensors, axis=axis)


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _varargs(args: tuple) -> tuple:
    """Accept both ``f(2, 3)`` and ``f((2, 3))``."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def _accumulate(tensor: Tensor, grad: Array, source: str) -> None:
    if grad.shape != tensor.data.shape:
        raise ValueError(
            f"{source} gave a gradient of shape {grad.shape} for a tensor of shape {tensor.shape}"
        )
    if tensor.grad is None:
        # A fresh, writable copy: backward results may alias each other (Add hands the same
        # array to both inputs) or be read-only broadcast views.
        tensor.grad = xp_of(grad).array(grad, dtype=tensor.data.dtype)
    else:
        tensor.grad += grad


def _unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` over the axes that broadcasting prepended or stretched, giving ``shape``."""
    lead = grad.ndim - len(shape)
    stretched = (lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    axes = (*range(lead), *stretched)
    return grad.sum(axis=axes).reshape(shape) if axes else grad


class Function:
    """One differentiable operation; each application's instance is its context ``ctx``.

    Subclasses define two plain methods on raw arrays (``ctx`` is the instance):

    - ``forward(ctx, *arrays, **params) -> array``: the output. ``params`` are
      non-differentiable arguments (axes, shapes, a tile, ...). Store on ``ctx`` what backward
      needs; ``ctx.needs_input_grad[i]`` says whether input i will get a gradient.
    - ``backward(ctx, grad) -> array | tuple``: given dL/d(output), dL/d(input) for each array
      input, in order and of the input's shape; ``None`` for an input that needs none. A single
      input may get a bare array.

    ``apply(*tensors, **params)`` runs ``forward`` on the tensors' data and records ``ctx`` in
    the output only when grad mode is on and some input requires grad.

    Extension point: a layer whose weights live outside the graph computes only the input
    gradient. For the analog layer contract (:mod:`models.layers`) the weights enter as a tensor
    that requires grad but never receives one; it makes the graph be recorded (and backward
    reach the tile) even when ``x`` needs no gradient, as in the first layer::

        class AnalogMatmul(Function):
            def forward(ctx, x, w, tile):          # x: [batch, in_size]; w stands for the tile
                ctx.x, ctx.tile = x, tile
                return tile.forward(x)             # [batch, out_size]

            def backward(ctx, d):                  # d: [batch, out_size]
                ctx.tile.pending_updates.append((ctx.x, d))
                dx = ctx.tile.backward(d) if ctx.needs_input_grad[0] else None
                return dx, None                    # no weight gradient: the optimizer pulses

        y = AnalogMatmul.apply(x, w, tile=tile)
    """

    parents: tuple[Tensor, ...] = ()
    needs_input_grad: tuple[bool, ...] = ()

    @classmethod
    def apply(cls, *tensors: Tensor, **params: Any) -> Tensor:
        ctx = cls()
        ctx.needs_input_grad = tuple(_grad_enabled and t.requires_grad for t in tensors)
        out = Tensor(ctx.forward(*(t.data for t in tensors), **params))
        if any(ctx.needs_input_grad):
            ctx.parents = tensors
            out.requires_grad, out._ctx = True, ctx
        return out

    def forward(ctx, *arrays: Any, **params: Any) -> Array:
        raise NotImplementedError

    def backward(ctx, grad: Array) -> Any:
        raise NotImplementedError


# The operations, each next to its gradient.


class Add(Function):
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a + b

    def backward(ctx, grad):
        return _unbroadcast(grad, ctx.shapes[0]), _unbroadcast(grad, ctx.shapes[1])


class Sub(Function):
    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        return a - b

    def backward(ctx, grad):
        return _unbroadcast(grad, ctx.shapes[0]), _unbroadcast(-grad, ctx.shapes[1])


class Mul(Function):
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return a * b

    def backward(ctx, grad):
        return _unbroadcast(grad * ctx.b, ctx.a.shape), _unbroadcast(grad * ctx.a, ctx.b.shape)


class Div(Function):
    def forward(ctx, a, b):
        ctx.a, ctx.b = a, b
        return a / b

    def backward(ctx, grad):
        grad_a = grad / ctx.b
        return _unbroadcast(grad_a, ctx.a.shape), _unbroadcast(-grad_a * ctx.a / ctx.b, ctx.b.shape)


class Neg(Function):
    def forward(ctx, a):
        return -a

    def backward(ctx, grad):
        return -grad


class MatMul(Function):
    """a [..., n, k] @ b [..., k, m] -> [..., n, m]; leading (batch) axes broadcast."""

    def forward(ctx, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul needs ndim >= 2 operands, got shapes {a.shape} and {b.shape}")
        ctx.a, ctx.b = a, b
        return a @ b

    def backward(ctx, grad):
        a, b = ctx.a, ctx.b
        need_a, need_b = ctx.needs_input_grad  # skip the unneeded product: it is the costly one
        grad_a = _unbroadcast(grad @ b.swapaxes(-1, -2), a.shape) if need_a else None
        grad_b = _unbroadcast(a.swapaxes(-1, -2) @ grad, b.shape) if need_b else None
        return grad_a, grad_b


class Sum(Function):
    def forward(ctx, a, axis=None, keepdims=False):
        axes = range(a.ndim) if axis is None else normalize_axis_tuple(axis, a.ndim)
        ctx.shape = a.shape
        ctx.kept_shape = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
        return a.sum(axis=axis, keepdims=keepdims)

    def backward(ctx, grad):
        return xp_of(grad).broadcast_to(grad.reshape(ctx.kept_shape), ctx.shape)


class Reshape(Function):
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        return a.reshape(shape)

    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Transpose(Function):
    def forward(ctx, a, axes):
        ctx.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return a.transpose(axes)

    def backward(ctx, grad):
        return grad.transpose(ctx.inverse)


class Exp(Function):
    def forward(ctx, a):
        ctx.out = xp_of(a).exp(a)
        return ctx.out

    def backward(ctx, grad):
        return grad * ctx.out


class Log(Function):
    def forward(ctx, a):
        ctx.a = a
        return xp_of(a).log(a)

    def backward(ctx, grad):
        return grad / ctx.a


class Sigmoid(Function):
    def forward(ctx, a):
        # 1 / (1 + exp(-a)) = (1 + tanh(a / 2)) / 2: no overflow for any |a|, exact 0 and 1 in the limits,
        # absolute error within an ulp of 1, and ~20x faster than an exp/logaddexp form (XLA's choice too).
        half = a.dtype.type(0.5) if hasattr(a, "dtype") else 0.5
        out = xp_of(a).tanh(a * half)
        out *= half
        out += half
        ctx.out = out
        return out

    def backward(ctx, grad):
        return grad * ctx.out * (1 - ctx.out)


class Tanh(Function):
    def forward(ctx, a):
        ctx.out = xp_of(a).tanh(a)
        return ctx.out

    def backward(ctx, grad):
        return grad * (1 - ctx.out * ctx.out)


class ReLU(Function):
    def forward(ctx, a):
        ctx.positive = a > 0
        return xp_of(a).maximum(a, 0)

    def backward(ctx, grad):
        return grad * ctx.positive  # the subgradient at 0 is taken as 0


class LogSoftmax(Function):
    """log(softmax(a)) along ``axis``: a - max - log(sum(exp(a - max)))."""

    def forward(ctx, a, axis=-1):
        xp = xp_of(a)
        shifted = a - a.max(axis=axis, keepdims=True)  # exp(shifted) <= 1 cannot overflow
        ctx.out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.axis = axis
        return ctx.out

    def backward(ctx, grad):
        return grad - xp_of(grad).exp(ctx.out) * grad.sum(axis=ctx.axis, keepdims=True)


class GetItem(Function):
    def forward(ctx, a, index):
        ctx.shape, ctx.index = a.shape, index
        return a[index]

    def backward(ctx, grad):
        xp = xp_of(grad)
        out = xp.zeros(ctx.shape, dtype=grad.dtype)
        xp.add.at(out, ctx.index, grad)  # scatter-add: a repeated index receives every share
        return out


class Cat(Function):
    def forward(ctx, *arrays, axis=0):
        ctx.axis = axis
        ctx.splits = list(itertools.accumulate(a.shape[axis] for a in arrays[:-1]))
        return xp_of(arrays[0]).concatenate(arrays, axis=axis)

    def backward(ctx, grad):
        return tuple(xp_of(grad).split(grad, ctx.splits, axis=ctx.axis))
