"""models.autograd: a directional gradient check for every op, then the graph mechanics."""

import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from models.autograd import Function, Tensor, cat, no_grad, xp_of

# Fixed examples (CI must not flake); deadline off because the first example pays for imports.
CHECK = settings(derandomize=True, max_examples=40, deadline=None)
SEEDS = st.integers(0, 2**32 - 1)
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def check_op(fn, ref, *arrays, seed=0, eps=1e-6, rtol=1e-5, atol=1e-7):
    """Check ``fn`` (on Tensors) against ``ref`` (on arrays): forward value, dtype, gradient.

    The gradient check is Chainer's directional one, in float64: for L(x) = sum(fn(x) * w) with
    a fixed random w and one random unit direction v over all inputs, compare <dL/dx, v> with
    the central difference (L(x + eps v) - L(x - eps v)) / (2 eps).
    """
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    np.testing.assert_allclose(out.data, ref(*arrays), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()

    v = [rng.standard_normal(a.shape) for a in arrays]
    norm = np.sqrt(sum(np.sum(d * d) for d in v))
    v = [d / norm for d in v]

    def loss(delta):
        with no_grad():
            return np.sum(
                fn(*(Tensor(a + delta * d) for a, d in zip(arrays, v, strict=True))).data * w
            )

    numeric = (loss(eps) - loss(-eps)) / (2 * eps)
    analytic = sum(np.vdot(t.grad, d) for t, d in zip(inputs, v, strict=True))
    assert np.isclose(analytic, numeric, rtol=rtol, atol=atol), (
        f"<grad, v> = {analytic!r} but finite difference = {numeric!r}; "
        f"grads: {[t.grad for t in inputs]}"
    )

    # Same op in float32: output and gradients keep the dtype.
    inputs32 = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out32 = fn(*inputs32)
    out32.sum().backward()
    assert out32.dtype == np.float32
    assert all(t.grad.dtype == np.float32 for t in inputs32)


def _random(rng, shape, domain="real"):
    # Positive inputs keep log and division away from their poles.
    return rng.uniform(0.5, 2.0, shape) if domain == "positive" else rng.standard_normal(shape)


UNARY = {
    "neg": (operator.neg, operator.neg, "real"),
    "exp": (Tensor.exp, np.exp, "real"),
    "log": (Tensor.log, np.log, "positive"),
    "sigmoid": (Tensor.sigmoid, lambda a: 1 / (1 + np.exp(-a)), "real"),
    "tanh": (Tensor.tanh, np.tanh, "real"),
    "relu": (Tensor.relu, lambda a: np.maximum(a, 0), "real"),  # |a| > eps almost surely
    "log_softmax": (
        Tensor.log_softmax,
        lambda a: a - np.log(np.exp(a).sum(axis=-1, keepdims=True)),
        "real",
    ),
    "scalar_rsub": (lambda x: 2.0 - x, lambda a: 2.0 - a, "real"),
    "scalar_rdiv": (lambda x: 3.0 / x, lambda a: 3.0 / a, "positive"),
    "scalar_affine": (lambda x: 0.5 * x + 1, lambda a: 0.5 * a + 1, "real"),
    "scalar_div": (lambda x: x / 4 - 1, lambda a: a / 4 - 1, "real"),
}

BINARY = {
    "add": (operator.add, "real"),
    "sub": (operator.sub, "real"),
    "mul": (operator.mul, "real"),
    "div": (operator.truediv, "positive"),
}


@pytest.mark.parametrize("name", UNARY)
@CHECK
@given(shape=SHAPES, seed=SEEDS)
def test_unary(name, shape, seed):
    fn, ref, domain = UNARY[name]
    rng = np.random.default_rng(seed)
    check_op(fn, ref, _random(rng, shape, domain), seed=seed)


@pytest.mark.parametrize("name", BINARY)
@CHECK
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
    seed=SEEDS,
)
def test_binary_broadcasting(name, shapes, seed):
    op, domain = BINARY[name]
    rng = np.random.default_rng(seed)
    a, b = (_random(rng, s, domain) for s in shapes.input_shapes)
    check_op(op, op, a, b, seed=seed)


@CHECK
@given(
    batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
    nkm=st.tuples(*[st.integers(1, 4)] * 3),
    seed=SEEDS,
)
def test_matmul(batch, nkm, seed):
    (n, k, m), (batch_a, batch_b) = nkm, batch.input_shapes
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((*batch_a, n, k)), rng.standard_normal((*batch_b, k, m))
    check_op(operator.matmul, operator.matmul, a, b, seed=seed)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@CHECK
@given(data=st.data(), shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), seed=SEEDS)
def test_reductions(reduction, data, shape, seed):
    ndim = len(shape)
    axis = data.draw(
        st.none()
        | hnp.valid_tuple_axes(ndim)
        | (st.integers(-ndim, ndim - 1) if ndim else st.none())
    )
    keepdims = data.draw(st.booleans())
    a = np.random.default_rng(seed).standard_normal(shape)
    check_op(
        lambda x: getattr(x, reduction)(axis=axis, keepdims=keepdims),
        lambda x: getattr(np, reduction)(x, axis=axis, keepdims=keepdims),
        a,
        seed=seed,
    )


@CHECK
@given(data=st.data(), shape=SHAPES, seed=SEEDS)
def test_reshape(data, shape, seed):
    target = data.draw(st.sampled_from([(-1,), shape[::-1], (1, *shape, 1)]))
    a = np.random.default_rng(seed).standard_normal(shape)
    check_op(lambda x: x.reshape(target), lambda x: x.reshape(target), a, seed=seed)
    check_op(lambda x: x.reshape(*target), lambda x: x.reshape(target), a, seed=seed)


@CHECK
@given(data=st.data(), shape=SHAPES, seed=SEEDS)
def test_transpose(data, shape, seed):
    drawn = data.draw(st.permutations(range(len(shape))))
    a = np.random.default_rng(seed).standard_normal(shape)
    # Also rotate the drawn permutation: hypothesis favours swaps, which are their own inverse.
    for axes in (drawn, drawn[1:] + drawn[:1]):
        check_op(lambda x, p=axes: x.transpose(p), lambda x, p=axes: x.transpose(p), a, seed=seed)
    check_op(lambda x: x.T, lambda x: x.T, a, seed=seed)


@pytest.mark.parametrize(
    "index",
    [
        2,
        -1,
        slice(1, None, 2),
        (slice(None), 1),
        (1, slice(None, 2), 0),
        np.array([3, 0, 3, 3]),  # repeated rows must each add their share
        (slice(None), [0, 0, 2]),
        (np.array([0, 2, 2]), np.array([1, 0, 1])),
        (Ellipsis, None, 1),
    ],
    ids=repr,
)
def test_getitem(index):
    a = np.random.default_rng(0).standard_normal((4, 3, 2))
    check_op(lambda x: x[index], lambda x: x[index], a)


@CHECK
@given(data=st.data(), shape=SHAPES, seed=SEEDS)
def test_getitem_integer_array(data, shape, seed):
    n = shape[0]
    index = data.draw(hnp.arrays(np.intp, st.integers(1, 6), elements=st.integers(-n, n - 1)))
    a = np.random.default_rng(seed).standard_normal(shape)
    check_op(lambda x: x[Tensor(index)], lambda x: x[index], a, seed=seed)


@CHECK
@given(data=st.data(), shape=SHAPES, seed=SEEDS)
def test_cat(data, shape, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    rng = np.random.default_rng(seed)
    before, after = shape[: axis % len(shape)], shape[axis % len(shape) + 1 :]
    arrays = [rng.standard_normal((*before, s, *after)) for s in sizes]
    check_op(
        lambda *xs: cat(xs, axis=axis),
        lambda *xs: np.concatenate(xs, axis=axis),
        *arrays,
        seed=seed,
    )


def test_composite_with_shared_intermediate():
    # y feeds three places, so its gradient accumulates before flowing on to x.
    a = np.random.default_rng(1).standard_normal((3, 4))
    check_op(
        lambda x: (lambda y: y * y + y @ y.T[:, :1])(x.tanh()),
        lambda x: (lambda y: y * y + y @ y.T[:, :1])(np.tanh(x)),
        a,
    )


def test_tensor_used_twice_accumulates():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x + x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * x.data + 3)

    z = Tensor(np.ones(3), requires_grad=True)
    (z + z).sum().backward()  # Add returns the same array for both inputs: no aliasing
    np.testing.assert_array_equal(z.grad, [2.0, 2.0, 2.0])
    (z * 1.0).sum().backward()  # a second backward adds to the existing grad
    np.testing.assert_array_equal(z.grad, [3.0, 3.0, 3.0])


def test_no_grad_records_nothing():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        y = (x * 2).exp().sum()
        with no_grad():
            pass
        z = x + 1  # still off after the nested context exits
    assert y._ctx is None and not y.requires_grad
    assert z._ctx is None and not z.requires_grad
    assert (x * 2)._ctx is not None  # back on afterwards

    with pytest.raises(KeyError), no_grad():
        raise KeyError
    assert (x * 2)._ctx is not None  # restored after an exception too

    constant = Tensor(np.ones(3))
    assert (constant * 2)._ctx is None  # no input requires grad


def test_backward_frees_graph():
    x = Tensor(np.arange(3.0), requires_grad=True)
    intermediates = [x.exp()]
    intermediates.append(intermediates[-1] * x)
    intermediates.append(intermediates[-1].sum())
    intermediates[-1].backward()
    assert all(t._ctx is None for t in intermediates)
    np.testing.assert_allclose(x.grad, np.exp(x.data) * (1 + x.data))


def test_backward_checks_gradient_shape():
    class Broken(Function):
        def forward(ctx, a):
            return a * 2

        def backward(ctx, grad):
            return grad.sum(axis=0)  # wrong shape on purpose

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"Broken\.backward.*shape \(3,\).*shape \(2, 3\)"):
        Broken.apply(x).sum().backward()


def test_backward_seed_rules():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(3))
    (x * 2).backward(np.ones((2, 3)))
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(())).backward()


def test_deep_chain_has_no_recursion_limit():
    x = Tensor(np.zeros(3), requires_grad=True)
    y = x
    for _ in range(5000):  # far beyond sys.getrecursionlimit() of 1000
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_array_equal(y.data, 5000.0)
    np.testing.assert_array_equal(x.grad, 1.0)


def test_operands_take_the_tensor_dtype():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    mixed = (x * 2.0, 2.0 - x, 1.0 / x, x + np.float64(1), np.ones(3) * x)
    for y in (*mixed, np.ones((2, 3)) @ x.reshape(3, 1)):
        assert isinstance(y, Tensor) and y.dtype == np.float32


def test_matmul_rejects_vectors():
    with pytest.raises(ValueError, match="ndim >= 2"):
        Tensor(np.ones(3)) @ Tensor(np.ones((3, 2)))


def test_saturating_inputs_stay_finite():
    x = np.array([[-1000.0, 0.0, 1000.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        np.testing.assert_allclose(Tensor(x).sigmoid().data, [[0.0, 0.5, 1.0]])
        np.testing.assert_allclose(Tensor(x).log_softmax().data, [[-2000.0, -1000.0, 0.0]])


def test_xp_of_numpy():
    assert xp_of(np.ones(2)) is np and xp_of(1.0) is np


def test_input_gradient_only_function():
    """The extension point documented on Function: weights outside the graph (analog tile)."""

    class FakeTile:
        def __init__(self, w):
            self.w, self.pending_updates = w, []

        def forward(self, x):
            return x @ self.w.T

        def backward(self, d):
            return d @ self.w

    class AnalogMatmul(Function):
        def forward(ctx, x, w, tile):
            ctx.x, ctx.tile = x, tile
            return tile.forward(x)

        def backward(ctx, d):
            ctx.tile.pending_updates.append((ctx.x, d))
            dx = ctx.tile.backward(d) if ctx.needs_input_grad[0] else None
            return dx, None

    rng = np.random.default_rng(2)
    tile = FakeTile(rng.standard_normal((2, 3)))
    w = Tensor(np.zeros(0), requires_grad=True)  # stands for the tile's weights
    x = Tensor(rng.standard_normal((4, 3)))  # a first layer's input needs no gradient
    hidden = Tensor(rng.standard_normal((4, 3)), requires_grad=True)

    AnalogMatmul.apply(x, w, tile=tile).sum().backward()
    (AnalogMatmul.apply(hidden, w, tile=tile) * 2).sum().backward()
    assert w.grad is None and x.grad is None
    np.testing.assert_allclose(hidden.grad, np.full((4, 2), 2.0) @ tile.w)
    assert [d.shape for _, d in tile.pending_updates] == [(4, 2), (4, 2)]
    np.testing.assert_array_equal(tile.pending_updates[0][1], 1.0)
