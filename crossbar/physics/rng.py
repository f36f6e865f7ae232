"""Counter-based random numbers: Philox4x32-10 and its uniform and normal transforms.

Every random number in crossbar comes from here. A draw is named by a key (two uint32 words, one per
tile and purpose family) and a counter of four uint32 words that says what the number is *for*::

    c0 = element index          (weight, input line, output line, ...)
    c1 = sample index           (the tile's running count of vectors seen by that operation)
    c2 = sub-index              (pulse slot block, pulse block, bound-management round, parameter id)
    c3 = stream tag             (:class:`Stream`: pulse bits of x, of d, c2c noise, output noise, ...)

Because a number depends only on its name, a CUDA kernel that draws the same names in any order gets
the same numbers as this NumPy reference (raw_kernels/philox.cuh is the twin of this module).

Integer to float mappings, identical in both languages:

* uniform: ``u = float32(w >> 8) * 2**-24``, exactly representable, in ``[0, 1 - 2**-24]``.
* normal: Box-Muller on two words ``(a, b)``: ``u1 = float32((a >> 8) + 1) * 2**-24`` in ``(0, 1]``,
  ``u2`` as the uniform of ``b``, ``r = sqrt(-2 log u1)``, ``(z0, z1) = (r cos 2 pi u2, r sin 2 pi u2)``.
  ``log`` and ``sincos`` are fixed float32 polynomial evaluations written out operation by operation
  (:func:`_log_f32`, :func:`_sincos_2pi_f32`), not libm calls, so with floating-point contraction off
  the CUDA twin reproduces the normals bit for bit. Accuracy: about 2 float32 ulp for ``log`` and
  ``4e-8`` absolute for ``sin``/``cos``; tails are truncated at ``|z| <= sqrt(2*24*ln 2) = 5.77``.

Words of one counter are used as four numbers: uniforms ``u[0..3]``; normals ``z[0..3]`` from the
pairs (w0, w1) and (w2, w3).
"""

from __future__ import annotations

import enum
import functools

import numpy as np

from ..backend import implementation

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
_MASK32 = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)
_TWO_M24 = np.float32(2.0**-24)


class Stream(enum.IntEnum):
    """Stream tags (counter word c3): what a draw is for. Never reuse a tag for a new purpose."""

    KEY = 0  # key derivation
    D2D = 1  # device-to-device parameters at construction (c2 = parameter id)
    X_BITS = 2  # pulse-train bits of the x lines (c2 = slot // 4)
    D_BITS = 3  # pulse-train bits of the d lines (c2 = slot // 4)
    PULSE_NOISE = 4  # cycle-to-cycle noise per pulse (c0 = weight, c2 = pulse // 4)
    WRITE_NOISE = 5  # write noise of the persistent weight (c0 = weight)
    PROB_ROUND = 6  # stochastic rounding of update probabilities
    INP_ROUND = 7  # DAC stochastic rounding
    INP_NOISE = 8
    OUT_ROUND = 9  # ADC stochastic rounding
    OUT_NOISE = 10
    W_NOISE = 11  # weight (read) noise of the MVM
    DIFFUSION = 12
    RESET = 13  # reset: c2 = 0 selection uniforms, c2 = 1 reset noise
    DRIFT = 14
    PROGRAM = 15  # weight programming noise
    TRANSFER = 16  # compound tiles: column selection, chopper flips
    QUANT = 17  # mixed-precision quantisation rounding
    SUM_NOISE = 18  # closed-form pulse runs: c0 = weight, c1 = sample >> 2, word = sample & 3
    UNIT_CELL = 19  # unit cells: the device a random update policy picks (c0 = update cycle)


def philox4x32(key, c0, c1=0, c2=0, c3=0, xp=np):
    """Philox4x32-10 block function, vectorised over broadcastable counter words.

    Args:
        key: two uint32 words ``(k0, k1)``.
        c0, c1, c2, c3: counter words; ints or integer arrays in ``[0, 2**32)``, broadcast together.
        xp: array module (``numpy`` or ``cupy``).

    Returns:
        uint32 array of shape ``(4, *broadcast_shape)``: the four output words.
    """
    if xp is not np and np.ndim(c2) == 0 and np.ndim(c3) == 0:  # CuPy: one kernel, no host copies
        a, b = xp.broadcast_arrays(xp.asarray(c0, dtype=xp.uint32), xp.asarray(c1, dtype=xp.uint32))
        return implementation("philox_arrays", "cupy")(key, a, b, int(c2), int(c3)).reshape((4,) + a.shape)
    words = xp.broadcast_arrays(*(xp.asarray(c, dtype=xp.uint64) for c in (c0, c1, c2, c3)))
    shape, n = words[0].shape, words[0].size
    flat = [w.ravel() for w in words]
    out = xp.empty((4, n), xp.uint32)
    step = n if xp is not np else _CHUNK  # NumPy: stay in cache (2x faster for large n)
    for s in range(0, n, max(step, 1)):
        out[:, s:s + step] = _philox_block(key, *(w[s:s + step] for w in flat), xp)
    return out.reshape((4,) + shape)


_CHUNK = 8192


def _philox_block(key, c0, c1, c2, c3, xp):
    n = c0.size
    # uint64 buffers, updated in place: rows are (c0, c2) for the multiplied words, (c1, c3) for the rest
    even, odd = xp.empty((2, n), xp.uint64), xp.empty((2, n), xp.uint64)
    even[0], even[1], odd[0], odd[1] = c0, c2, c1, c3
    prod, hi = xp.empty_like(even), xp.empty_like(even)
    mult = xp.asarray([[M0], [M1]], dtype=xp.uint64)
    for k in _key_schedule(int(key[0]), int(key[1]), xp):
        xp.multiply(even, mult, out=prod)  # exact: both factors < 2**32
        xp.right_shift(prod, _32, out=hi)
        # (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        xp.bitwise_xor(hi[::-1], odd, out=even)
        xp.bitwise_xor(even, k, out=even)
        xp.bitwise_and(prod[::-1], _MASK32, out=odd)
    return xp.stack([even[0], odd[0], even[1], odd[1]])


@functools.lru_cache(maxsize=256)
def _key_schedule(k0: int, k1: int, xp):
    """The ten round keys ``(k0 + r W0, k1 + r W1) mod 2**32`` as ``(2, 1)`` uint64 columns."""
    return [xp.asarray([[(k0 + r * W0) & 0xFFFFFFFF], [(k1 + r * W1) & 0xFFFFFFFF]], dtype=xp.uint64)
            for r in range(10)]


def seed_key(seed: int, *path: int) -> np.ndarray:
    """Derive a Philox key from an integer seed and a path of integers (e.g. tile, purpose).

    ``seed_key(s)`` is ``(s mod 2**32, s >> 32)``; each path element ``p`` replaces the key by the first
    two words of ``philox4x32(key, p, 0, 0, Stream.KEY)``. Distinct paths give independent keys.
    """
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32)
    for p in path:
        key = philox4x32(key, int(p), 0, 0, int(Stream.KEY))[:2, ...].reshape(2)
    return key


def uniform_from_words(words, xp=np):
    """Map uint32 words to float32 uniforms on ``[0, 1)``: ``float32(w >> 8) * 2**-24``."""
    return (words >> 8).astype(xp.float32) * _TWO_M24


# float32 constants of the fixed log / sincos evaluations, written as the shortest decimals that round
# trip in float32; raw_kernels/philox.cuh uses the same literals (with an f suffix).
_SQRT2 = np.float32("1.4142135")
_LN2_HI = np.float32("0.6933594")  # = 0.693359375, 9 significant bits: e * _LN2_HI is exact
_LN2_LO = np.float32("-0.00021219444")
_LOG_C = [np.float32(c) for c in ("0.11111111", "0.14285715", "0.2", "0.33333334")]  # 1/9, 1/7, 1/5, 1/3
_HALF_PI = np.float32("1.5707964")
_SIN_C = [np.float32(c) for c in ("0.0000027557319", "-0.0001984127", "0.008333334", "-0.16666667")]
_COS_C = [np.float32(c) for c in ("0.000024801588", "-0.0013888889", "0.041666668", "-0.5")]
_ONE, _TWO, _HALF = np.float32(1), np.float32(2), np.float32(0.5)


def _log_f32(u, xp=np):
    """Natural log of positive normal float32 ``u`` by a fixed sequence of float32 operations."""
    bits = u.view(xp.uint32)
    e = ((bits >> 23).astype(xp.int32) - 127).astype(xp.float32)
    m = ((bits & 0x7FFFFF) | 0x3F800000).view(xp.float32)  # mantissa in [1, 2)
    big = m > _SQRT2
    m = xp.where(big, m * _HALF, m)  # now in [sqrt(1/2), sqrt(2)]
    e = xp.where(big, e + _ONE, e)
    s = (m - _ONE) / (m + _ONE)
    z = s * s
    t = _LOG_C[0]
    for c in _LOG_C[1:]:
        t = t * z + c
    t = t * z
    s2 = s * _TWO
    return e * _LN2_HI + (e * _LN2_LO + (s2 + s2 * t))


def _sincos_2pi_f32(u, xp=np):
    """``(cos 2 pi u, sin 2 pi u)`` for float32 ``u`` in ``[0, 1)``, exact range reduction."""
    v = u * np.float32(4)  # exact
    q = xp.floor(v)
    f = v - q  # exact, in [0, 1)
    up = f > _HALF
    f = xp.where(up, f - _ONE, f)
    q = (q + up.astype(xp.float32)).astype(xp.int32) & 3
    th = f * _HALF_PI  # |th| <= pi/4
    z = th * th
    ps = _SIN_C[0]
    for c in _SIN_C[1:]:
        ps = ps * z + c
    sin = th + th * z * ps
    pc = _COS_C[0]
    for c in _COS_C[1:]:
        pc = pc * z + c
    cos = _ONE + z * pc
    # rotate by q quarter turns: odd q swaps the pair; q in {1, 2} negates cos, q in {2, 3} negates sin
    odd = (q & 1) == 1
    c_out = xp.where(odd, sin, cos)
    s_out = xp.where(odd, cos, sin)
    c_out = xp.where((q == 1) | (q == 2), -c_out, c_out)
    s_out = xp.where(q >= 2, -s_out, s_out)
    return c_out, s_out


def normal_from_words(words, xp=np):
    """Four uint32 words per counter (shape ``(4, ...)``) to four float32 standard normals."""
    u1 = ((words[0::2] >> 8) + 1).astype(xp.float32) * _TWO_M24  # (0, 1]
    u2 = uniform_from_words(words[1::2], xp)
    r = xp.sqrt(np.float32(-2) * _log_f32(u1, xp))
    c, s = _sincos_2pi_f32(u2, xp)
    out = xp.empty(words.shape, dtype=xp.float32)
    out[0::2] = r * c
    out[1::2] = r * s
    return out


def normal1(key, stream, c0, c1=0, c2=0, xp=np):
    """Only the first normal ``z[0]`` of each counter (half the work), shape ``broadcast(c0, c1, c2)``."""
    w = philox4x32(key, c0, c1, c2, int(stream), xp)
    u1 = ((w[0] >> 8) + 1).astype(xp.float32) * _TWO_M24
    return xp.sqrt(np.float32(-2) * _log_f32(u1, xp)) * _sincos_2pi_f32(uniform_from_words(w[1], xp), xp)[0]


def normal_word(key, stream, c0, c1, c2, word, xp=np):
    """Only normal number ``word`` (0..3) of each counter, shape ``broadcast(c0, c1, c2, word)``."""
    w = philox4x32(key, c0, c1, c2, int(stream), xp)
    second = (xp.asarray(word) & 2) == 2  # which Box-Muller pair: words (0, 1) or (2, 3)
    u1 = ((xp.where(second, w[2], w[0]) >> 8) + 1).astype(xp.float32) * _TWO_M24
    c, s = _sincos_2pi_f32(uniform_from_words(xp.where(second, w[3], w[1]), xp), xp)
    return xp.sqrt(np.float32(-2) * _log_f32(u1, xp)) * xp.where((xp.asarray(word) & 1) == 1, s, c)


def uniform(key, stream, c0, c1=0, c2=0, xp=np):
    """Float32 uniforms, shape ``(4, *broadcast(c0, c1, c2))``; see :func:`philox4x32`."""
    return uniform_from_words(philox4x32(key, c0, c1, c2, int(stream), xp), xp)


def normal(key, stream, c0, c1=0, c2=0, xp=np):
    """Float32 standard normals, shape ``(4, *broadcast(c0, c1, c2))``."""
    return normal_from_words(philox4x32(key, c0, c1, c2, int(stream), xp), xp)


def _packed(fn, key, stream, shape, c1, c2, xp):
    """Dense draws: flat element ``e`` of ``shape`` uses counter ``c0 = e // 4`` and word ``e % 4``."""
    shape = tuple(int(s) for s in np.atleast_1d(shape)) if not isinstance(shape, tuple) else shape
    n = int(np.prod(shape, dtype=np.int64))
    if xp is not np:  # one fused kernel instead of ~100 elementwise launches
        return implementation("random_rows", "cupy")(key, int(stream), 1, n, int(c1), int(c2),
                                                     fn is normal).reshape(shape)
    vals = fn(key, stream, xp.arange((n + 3) // 4, dtype=xp.uint32), c1, c2, xp)
    return vals.T.reshape(-1)[:n].reshape(shape)


def uniform_array(key, stream, shape, c1=0, c2=0, xp=np):
    """Float32 uniforms of ``shape`` with element ``e`` named ``(e // 4, c1, c2, stream)``, word ``e % 4``."""
    return _packed(uniform, key, stream, shape, c1, c2, xp)


def normal_array(key, stream, shape, c1=0, c2=0, xp=np):
    """Float32 standard normals of ``shape``, named like :func:`uniform_array`."""
    return _packed(normal, key, stream, shape, c1, c2, xp)


def _rows(fn, key, stream, batch: int, size: int, sample0: int, c2, xp, ctr=None):
    """Per-sample draws: row ``b`` is named ``c1 = (sample0 + b) mod 2**32``, element ``e`` of the row
    ``c0 = e // 4`` with word ``e % 4``. A ``(1,)`` counter array ``ctr`` adds ``ctr[0]`` to ``sample0`` (on the
    GPU it is read in device memory, so the draws stay correct when a captured CUDA graph is replayed)."""
    if xp is not np:
        return implementation("random_rows", "cupy")(key, int(stream), batch, size, int(sample0), int(c2),
                                                     fn is normal, ctr=ctr)
    sample0 = int(sample0) + (0 if ctr is None else int(ctr[0]))
    c0 = xp.arange((size + 3) // 4, dtype=xp.uint32)[None, :]
    c1 = ((int(sample0) + xp.arange(batch, dtype=xp.uint64)) & 0xFFFFFFFF)[:, None]
    vals = fn(key, stream, c0, c1, c2, xp)  # (4, batch, ceil(size / 4))
    return xp.moveaxis(vals, 0, -1).reshape(batch, -1)[:, :size]


def uniform_rows(key, stream, batch: int, size: int, sample0: int = 0, c2=0, xp=np, ctr=None):
    """Float32 uniforms of shape ``(batch, size)``, one row per sample (see :func:`_rows`)."""
    return _rows(uniform, key, stream, batch, size, sample0, c2, xp, ctr)


def normal_rows(key, stream, batch: int, size: int, sample0: int = 0, c2=0, xp=np, ctr=None):
    """Float32 standard normals of shape ``(batch, size)``, one row per sample (see :func:`_rows`)."""
    return _rows(normal, key, stream, batch, size, sample0, c2, xp, ctr)
