"""The analog matrix-vector product with its IO non-idealities, as IBM's aihwkit 1.1 models one pass
(its ``ONE_PASS`` type) of a forward ``y = W x`` or backward ``z = W^T d`` on a tile.

Model. A tile multiplies in normalised units: inputs are scaled into the DAC range ``[-inp_bound, inp_bound]``
by a per-sample factor ``alpha`` (noise management), the crossbar sums currents, and the ADC reads the result
in ``[-out_bound, out_bound]``; the digital periphery undoes the scaling. One call, per sample ``b``::

    alpha = NM(x_b)                                     # noise management, on the raw input
    for round r = 0, 1, ...                             # bound management (forward only)
        div = (alpha if NM and alpha > 0 else 1) * 2**r # IterativeWorstCase: see below
        x'  = q_in(x_b / div)                           # DAC (stochastic rounding: INP_ROUND)
        x'  = clip(x', +-inp_bound) + inp_noise xi      # INP_NOISE
        x'[x' < 0] *= 1 - inp_asymmetry
        y   = W x'                                      # ideal GEMM on the given weights
        y  -= ir_drop c(a) W x''                        # IR drop
        y   = Voffset(y, x')                            # v_offset / r_series
        y  += weight noise                              # ADDITIVE_CONSTANT / PCM_READ (W_NOISE)
        y   = f y / (1 + |n_i y|)                       # out nonlinearity, slope calibration f
        y[y < 0] *= 1 - out_asymmetry
        y  += sigma_i xi                                # OUT_NOISE
        y   = q_out(y)                                  # ADC (stochastic rounding: OUT_ROUND)
        exceeded = any(y > out_bound) or (bm_test_negative_bound and any(y < -out_bound))
        y   = clip(y, +-out_bound)
        stop unless BM and exceeded and the factor 2**r is still <= max_bm_factor and <= max_bm_res/step_in
    y *= out_scale * div                                # undo the scaling

A quantiser with step ``D`` is ``q(v) = D rint(v / D)`` (round half to even), stochastically
``D rint(v / D + U - 0.5)``; a user resolution ``r`` gives ``D = r' 2 bound`` with ``r' = 1/r`` if ``r > 1``,
``r' = r`` if ``0 < r <= 1``, and no quantisation if ``r <= 0`` (``out_bound <= 0``: no ADC range, so no ADC
quantisation). If NM is on, ``alpha <= 0`` and ``inp_noise == 0``, the output row is exactly 0.
``is_perfect`` short-cuts to ``out_scale * (x @ W^T)``. Defaults: 7-bit DAC (``inp_res = 1/126``, step
``2/126``), 9-bit ADC (``out_res = 1/510`` of ``[-12, 12]``), ``out_noise = 0.06``, NM ABS_MAX, BM ITERATIVE.

Noise management ``alpha`` per sample: ABS_MAX ``max|x|``, MAX ``max x`` (both capped at ``nm_thres`` if it is
> 0), CONSTANT ``nm_thres`` (1 if 0), ABS_MAX_NP_SUM ``max(a, s)`` with ``a`` the capped ``max|x|`` and ``s =
max(sum x+, -sum x-) nm_assumed_wmax / out_bound``, limited to ``a max_bm_res / step_in``; NONE: no scaling.
Non-idealities (``x'`` the DAC output, ``n`` inputs): IR drop ``a_i = n / ir_drop_g_ratio sum_j |w_ij||x'_j|``,
``c_i = a_i (a_i (0.05 a_i - 0.2) + 0.5)``, ``x''_j = x'_j (1 - (1 - j/n)^2)`` (line 0 farthest from the output);
voltage offsets ``v_i = max(v_offset_std xi, 0)`` per output line: ``y_i (1 - v_i) / (1 + r_series |y_i|)``
when ``v_offset_w_min == 0``, else referenced to an implicit column of weight ``v_offset_w_min``; weight noise
ADDITIVE_CONSTANT ``w_noise ||x'||_2 xi_i``, PCM_READ ``w_noise sqrt(sum_j |w_ij| x'_j^2) xi_i``; output
nonlinearity ``n_i = |out_nonlinearity / out_bound (1 + out_nonlinearity_std xi)|`` and slope calibration
``f = (1 + (mean n_i + r_series) slope_calibration out_bound)^2`` (else 1); ``sigma_i = |out_noise (1 +
out_noise_std xi)|`` per output line if ``out_noise_std > 0``. The per-line values are drawn once per tile.

Bound management is per sample: a sample's result is that of the first round in which it did not exceed
the output bound (or of the last allowed round); only the samples that exceeded are recomputed, with the
factor doubled, so a sample's output never depends on the rest of the batch. IterativeWorstCase (unless NM
is already ABS_MAX_NP_SUM) makes round 1 use the ABS_MAX_NP_SUM alpha with the factor reset to 1, then
doubles again (aihwkit; as there, with NM NONE that alpha is not applied). Rounds stop after the factor
``2**k`` used exceeded ``max_bm_factor`` or ``max_bm_res / step_in`` (default: factors 1, 2, 4, 8, 16). The
transposed (backward) direction has no bound management.

AVERAGE_ABS_MAX keeps a running ``alpha <- alpha (1 - nm_decay) + nm_decay m`` in ``state``, initialised to
the first ``m``, where ``m`` is the batch mean of the per-sample ``max|x|`` (one EMA step per call, as the
aihwkit GPU does, rather than one per sample); all samples of the call use the updated alpha. It is the one
NM type that couples the samples of a batch.

Randomness (the contract a CUDA kernel must reproduce). Every draw is ``rng.normal_rows`` /
``rng.uniform_rows`` naming: key = the tile's IO key, c0 = element (input or output line) // 4 with word
``% 4``, c1 = the sample number ``sample0 + b`` (mod 2**32), c2 = ``2 * round + (1 if transposed else 0)``,
c3 = stream: INP_ROUND (uniform, per input line), INP_NOISE (normal, per input line), W_NOISE (normal, per
output line), OUT_NOISE (normal, per output line), OUT_ROUND (uniform, per output line). A sample recomputed
in a later round draws the numbers named by (sample, round), whatever else is in the batch. Nothing is
drawn for a disabled effect.

Arithmetic is float32 throughout; scalar parameters are computed in float64 on the host and cast once. The
per-line parameters (``sample_io_state``) come from the device-to-device key via
:func:`crossbar.physics.devices.base.d2d_normal`. On CuPy the only host synchronisation is the check, between
bound-management rounds, for samples left to recompute (the reference's choice; a kernel keeps it on the
device).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from . import rng
from ..backend import register
from ..config import BoundManagement, IOParameters, NoiseManagement, WeightNoiseType, resolution
from .devices.base import d2d_normal

F32 = np.float32
_ZERO, _ONE, _HALF = F32(0), F32(1), F32(0.5)


def quant_step(res: float, bound: float) -> float:
    """Quantisation step ``D = r' * 2 * bound`` of a user resolution (0.0: no quantisation).

    Args:
        res: user resolution: ``<= 0`` none, ``> 1`` a number of steps, else a fraction of the range.
        bound: the converter's clip level (``<= 0``: no range, so no quantisation).
    """
    return resolution(res) * 2.0 * float(bound) if bound > 0 else 0.0


def bm_active(cfg: IOParameters, transposed: bool) -> bool:
    """Whether bound management can act on this pass: forward only, configured, and with an output bound
    to exceed (without one nothing saturates)."""
    return not transposed and cfg.bound_management != BoundManagement.NONE and cfg.out_bound > 0


class IOPlan(NamedTuple):
    """The numbers an MVM implementation needs from an IO config besides its fields, computed once per config and
    direction (:func:`io_plan`) for the NumPy reference and the GPU kernels alike."""
    inp_step: float  #: DAC quantisation step (0: none)
    out_step: float  #: ADC quantisation step (0: none)
    bm_on: bool  #: whether bound management can act (:func:`bm_active`)
    schedule: tuple  #: the bound-management rounds (:func:`bm_schedule`); one round without BM


@functools.lru_cache(maxsize=512)
def io_plan(cfg: IOParameters, transposed: bool) -> IOPlan:
    """The :class:`IOPlan` of ``cfg`` in one direction (``transposed``: backward)."""
    return IOPlan(quant_step(cfg.inp_res, cfg.inp_bound), quant_step(cfg.out_res, cfg.out_bound),
                  bm_active(cfg, transposed), tuple(bm_schedule(cfg, transposed)))


def bm_schedule(cfg: IOParameters, transposed: bool) -> list[tuple[float, bool]]:
    """The bound-management rounds ``(input down-scaling factor, use the np-sum noise-management alpha)``:
    factors 1, 2, 4, ... (the worst-case mode redoes factor 1 with the np-sum alpha first) until the factor
    exceeds ``max_bm_factor`` or ``max_bm_res / (DAC step)``; a single round ``(1, False)`` without BM."""
    if not bm_active(cfg, transposed):
        return [(1.0, False)]
    step = quant_step(cfg.inp_res, cfg.inp_bound)
    worst = (cfg.bound_management == BoundManagement.ITERATIVE_WORST_CASE
             and cfg.noise_management != NoiseManagement.ABS_MAX_NP_SUM)
    rounds, factor, np_sum = [], 1.0, False
    while True:
        if len(rounds) == 1 and worst:
            factor, np_sum = 1.0, True
        rounds.append((factor, np_sum))
        if factor > cfg.max_bm_factor or (step > 0 and factor > cfg.max_bm_res / step):
            return rounds
        factor *= 2.0


def sample_io_state(cfg: IOParameters, out_size: int, key, *, transposed: bool = False) -> dict:
    """Per-output-line parameters of one MVM direction, drawn once at tile construction.

    Args:
        cfg: the IO parameters of that direction.
        out_size: number of output lines of that direction (``in_size`` of W for the backward pass).
        key: device-to-device Philox key; only used when a spread is configured (may then not be None).
        transposed: True for the backward direction; its draws use names ending in ``'_bwd'``, so the
            forward and backward lines of one tile are independent.

    Returns:
        dict with, where the config uses them, float32 ``(out_size,)`` NumPy arrays ``out_noise_values``
        (sigma_i, when ``out_noise_std > 0``), ``out_nonlinearity`` (n_i, when ``out_nonlinearity > 0``),
        ``v_offset`` (v_i, when ``v_offset_std > 0``); the float32 scalar ``out_nonlinearity_factor`` (the
        slope calibration f, 1 when off); and the mutable ``nm_alpha`` (AVERAGE_ABS_MAX running alpha, None
        until the first call). The tile may move the arrays to its backend.
    """
    suffix = "_bwd" if transposed else ""

    def xi(name):
        if key is None:
            raise ValueError(f"sample_io_state: {name} needs a device-to-device key (got None)")
        return d2d_normal(key, name + suffix, (out_size,))

    st: dict = {"nm_alpha": None, "out_nonlinearity_factor": _ONE}
    # the nonlinearity is relative to the ADC range; unbounded outputs count as range 1 (aihwkit)
    bound = cfg.out_bound if cfg.out_bound > 0 else 1.0
    if cfg.out_noise_std > 0:
        sigma = np.abs(cfg.out_noise * (1.0 + cfg.out_noise_std * xi("io_out_noise")))
        st["out_noise_values"] = sigma.astype(F32)
    if cfg.out_nonlinearity > 0:
        spread = 1.0 + cfg.out_nonlinearity_std * xi("io_out_nonlinearity") if cfg.out_nonlinearity_std > 0 \
            else np.ones(out_size)
        st["out_nonlinearity"] = np.abs(cfg.out_nonlinearity / bound * spread).astype(F32)
    if cfg.v_offset_std > 0:
        st["v_offset"] = np.maximum(cfg.v_offset_std * xi("io_v_offset"), 0.0).astype(F32)
    if cfg.slope_calibration > 0:
        n_mean = float(np.mean(st["out_nonlinearity"], dtype=np.float64)) if "out_nonlinearity" in st else 0.0
        f = 1.0 + (n_mean + cfg.r_series) * cfg.slope_calibration * bound
        st["out_nonlinearity_factor"] = F32(f * f)
    return st


def mvm(w, x, cfg: IOParameters, key, sample0: int, *, transposed: bool = False, state: dict | None = None,
        xp=np):
    """Analog MVM with the IO non-idealities of ``cfg`` (see the module docstring for the model).

    Args:
        w: float32 ``[out, in]`` weights (normalised units).
        x: float32 ``[batch, in]`` inputs for the forward pass, or ``[batch, out]`` errors ``d`` when
            ``transposed``.
        cfg: IO parameters of this direction.
        key: the tile's Philox key for IO noise (two uint32 words).
        sample0: sample number of row 0 (the tile's running count of vectors seen in this direction).
        transposed: compute ``W^T d`` (backward); bound management is then off.
        state: :func:`sample_io_state` of this direction's output lines (mutated by AVERAGE_ABS_MAX). None
            is allowed when the config needs no drawn per-line parameter (then AVERAGE_ABS_MAX restarts
            from this batch on every call).
        xp: array module of ``w`` and ``x``.

    Returns:
        float32 ``[batch, out]`` (``[batch, in]`` when ``transposed``), in the units of ``W x``.

    Raises:
        ValueError: ``w`` or ``x`` is not 2-D, or their shapes do not match.
    """
    w = xp.asarray(w, dtype=xp.float32)
    x = xp.asarray(x, dtype=xp.float32)
    if w.ndim != 2 or x.ndim != 2:
        raise ValueError(f"mvm: w and x must be 2-D, got shapes {w.shape} and {x.shape}")
    wt = w if transposed else w.T  # [in', out']: y = x' @ wt in either direction
    in_size, out_size = wt.shape
    if x.shape[1] != in_size:
        which = "d [batch, out]" if transposed else "x [batch, in]"
        raise ValueError(f"mvm: {which} has shape {x.shape}, weights {w.shape} (transposed={transposed})")
    if cfg.is_perfect:
        return cfg.out_scale * (x @ wt)
    batch = x.shape[0]
    if batch == 0:
        return xp.zeros((0, out_size), xp.float32)
    if state is None:
        state = sample_io_state(cfg, out_size, None, transposed=transposed)
    return _Pass(w, wt, x, cfg, key, int(sample0), transposed, state, xp).run()


@register("mvm", "numpy")
def counted_mvm(w, x, cfg: IOParameters, key, ctr, transposed: bool, state: dict | None):
    """:func:`mvm` with the first sample number read from the counter array ``ctr`` (``(1,)``; the caller
    advances it): the form in which a tile calls its backend's MVM."""
    return mvm(w, x, cfg, key, int(ctr[0]), transposed=transposed, state=state)


class _Pass:
    """One call of :func:`mvm`: constants, draws and the per-round physics (not part of the API)."""

    def __init__(self, w, wt, x, cfg, key, sample0, transposed, state, xp):
        self.w, self.wt, self.x, self.cfg, self.key = w, wt, x, cfg, key
        self.sample0, self.transposed, self.state, self.xp = sample0, transposed, state, xp
        self.in_size, self.out_size = wt.shape
        self.plan = io_plan(cfg, transposed)
        self.inp_step, self.out_step, self.bm_on = self.plan.inp_step, self.plan.out_step, self.plan.bm_on
        self.nm_on = cfg.noise_management != NoiseManagement.NONE
        self._wabs = None
        self.ctr = None  # a counter array whose value is added to sample0 (read_vectors, captured graphs)

    # ---- per-line parameters ----------------------------------------------------------------------
    def _line(self, name):
        v = self.state.get(name)
        if v is None:
            raise ValueError(f"mvm: state lacks {name!r}; build it with sample_io_state for this config")
        v = self.xp.asarray(v, dtype=self.xp.float32)
        if v.shape != (self.out_size,):
            raise ValueError(f"mvm: state[{name!r}] has shape {v.shape}, expected ({self.out_size},)")
        return v

    def _abs_w(self):
        if self._wabs is None:
            self._wabs = self.xp.abs(self.wt)
        return self._wabs

    # ---- noise management ---------------------------------------------------------------------------
    def noise_management(self, kind):
        """Per-sample alpha, float32 ``[batch]`` (None for NONE)."""
        xp, cfg, x = self.xp, self.cfg, self.x
        thres = F32(cfg.nm_thres)
        if kind == NoiseManagement.NONE:
            return None
        if kind == NoiseManagement.CONSTANT:
            return xp.full(x.shape[0], thres if cfg.nm_thres > 0 else _ONE, dtype=xp.float32)
        if kind == NoiseManagement.MAX:
            a = x.max(axis=1)
            return xp.minimum(a, thres) if cfg.nm_thres > 0 else a
        amax = xp.abs(x).max(axis=1)
        if kind == NoiseManagement.ABS_MAX:
            return xp.minimum(amax, thres) if cfg.nm_thres > 0 else amax
        if kind == NoiseManagement.AVERAGE_ABS_MAX:
            m = amax.mean(dtype=xp.float32)
            prev = self.state.get("nm_alpha")
            if prev is None:
                new = m
            else:
                new = xp.asarray(prev, dtype=xp.float32) * F32(1 - cfg.nm_decay) + F32(cfg.nm_decay) * m
            self.state["nm_alpha"] = new
            return xp.broadcast_to(new, amax.shape)
        if kind == NoiseManagement.ABS_MAX_NP_SUM:
            # worst-case output estimate: the larger one-signed input sum times an assumed max weight
            total = xp.maximum(xp.maximum(x, _ZERO).sum(axis=1), -xp.minimum(x, _ZERO).sum(axis=1))
            a = xp.minimum(amax, thres) if cfg.nm_thres > 0 else amax
            bound = cfg.out_bound if cfg.out_bound > 0 else 1.0
            s = total * F32(cfg.nm_assumed_wmax) / F32(bound)
            if self.inp_step > 0:  # never scale so far that the input uses fewer than max_bm_res levels
                s = xp.minimum(a / F32(self.inp_step) * F32(cfg.max_bm_res), s)
            return xp.maximum(a, s)
        raise ValueError(f"mvm: unknown noise management {kind!r}")

    def schedule(self):
        """Bound-management rounds as ``(factor, use_np_sum_alpha)``; see :func:`bm_schedule`."""
        return self.plan.schedule

    # ---- random numbers ---------------------------------------------------------------------------
    def draw(self, normal, stream, size, rows, c2):
        """Draws of shape ``[len(rows), size]`` named by sample ``sample0 + rows`` (all rows if None)."""
        xp = self.xp
        if rows is None:
            fn = rng.normal_rows if normal else rng.uniform_rows
            return fn(self.key, stream, self.x.shape[0], size, self.sample0, c2, xp, ctr=self.ctr)
        # same layout as rng.normal_rows / uniform_rows, for a subset of the samples
        fn = rng.normal if normal else rng.uniform
        c0 = xp.arange((size + 3) // 4, dtype=xp.uint32)[None, :]
        c1 = ((rows.astype(xp.uint64) + np.uint64(self.sample0)) & np.uint64(0xFFFFFFFF))[:, None]
        vals = fn(self.key, stream, c0, c1, c2, xp)  # [4, n, ceil(size / 4)]
        return xp.moveaxis(vals, 0, -1).reshape(rows.shape[0], -1)[:, :size]

    def dac_one(self):
        """The DAC output of an input of exactly 1 (deterministic DAC, no input noise), float32."""
        v = _ONE
        if self.inp_step > 0:
            v = F32(self.inp_step) * np.rint(_ONE / F32(self.inp_step))
        return F32(min(max(v, F32(-self.cfg.inp_bound)), F32(self.cfg.inp_bound)))

    # ---- one round for a set of samples -------------------------------------------------------------
    def _quantize(self, v, step, u):
        t = v / F32(step)
        if u is not None:
            t += u
            t -= _HALF
        return self.xp.rint(t, out=t) * F32(step)

    def analog(self, x, div, rows, rnd):
        """Pre-rescale outputs ``[n, out]`` and the exceeded flags ``[n]`` for inputs ``x`` ``[n, in]``."""
        xp, cfg = self.xp, self.cfg
        c2 = 2 * rnd + (1 if self.transposed else 0)
        # --- DAC
        xs = x / div[:, None] if div is not None else x
        if self.inp_step > 0:
            u = self.draw(False, rng.Stream.INP_ROUND, self.in_size, rows, c2) if cfg.inp_sto_round else None
            xs = self._quantize(xs, self.inp_step, u)
        xs = xp.clip(xs, F32(-cfg.inp_bound), F32(cfg.inp_bound))
        if cfg.inp_noise > 0:
            xs = xs + F32(cfg.inp_noise) * self.draw(True, rng.Stream.INP_NOISE, self.in_size, rows, c2)
        if cfg.inp_asymmetry != 0:
            xs = xp.where(xs < 0, xs * F32(1 - cfg.inp_asymmetry), xs)
        # --- crossbar
        y = xs @ self.wt
        if cfg.ir_drop > 0:
            y = self._ir_drop(y, xs)
        if cfg.v_offset_std > 0 or cfg.r_series > 0:
            y = self._voltage_offsets(y, xs)
        std = None
        if cfg.w_noise_type != WeightNoiseType.NONE and cfg.w_noise > 0:
            if cfg.w_noise_type == WeightNoiseType.ADDITIVE_CONSTANT:
                std = (F32(cfg.w_noise) * xp.sqrt((xs * xs).sum(axis=1)))[:, None]
            else:  # PCM_READ: read noise grows with the current sqrt(sum_j |w_ij| x_j^2)
                std = F32(cfg.w_noise) * xp.sqrt((xs * xs) @ self._abs_w())
        return self.periphery(y, std, rows, c2)

    def periphery(self, y, w_std, rows, c2):
        """Weight noise (std ``w_std``), output nonlinearity, asymmetry, noise, ADC and clip of the pre-ADC
        outputs ``y`` ``[n, out]``; returns them with the exceeded flags ``[n]`` (None without BM)."""
        xp, cfg = self.xp, self.cfg
        if w_std is not None:
            y += w_std * self.draw(True, rng.Stream.W_NOISE, self.out_size, rows, c2)
        # --- periphery and ADC
        if cfg.out_nonlinearity > 0 or cfg.r_series > 0:
            f = F32(self.state.get("out_nonlinearity_factor", _ONE))
            if cfg.out_nonlinearity > 0:
                y = f * y / (_ONE + xp.abs(self._line("out_nonlinearity") * y))
            elif f != 1:
                y = f * y
        if cfg.out_asymmetry != 0:
            y = xp.where(y < 0, y * F32(1 - cfg.out_asymmetry), y)
        if cfg.out_noise > 0:
            sigma = self._line("out_noise_values") if cfg.out_noise_std > 0 else F32(cfg.out_noise)
            y += sigma * self.draw(True, rng.Stream.OUT_NOISE, self.out_size, rows, c2)
        if self.out_step > 0:
            u = self.draw(False, rng.Stream.OUT_ROUND, self.out_size, rows, c2) if cfg.out_sto_round else None
            y = self._quantize(y, self.out_step, u)
        exceeded = None
        if cfg.out_bound > 0:
            ob = F32(cfg.out_bound)
            if self.bm_on:
                exceeded = (y > ob).any(axis=1)
                if cfg.bm_test_negative_bound:
                    exceeded |= (y < -ob).any(axis=1)
            y = xp.clip(y, -ob, ob)
        return y, exceeded

    def _ir_drop(self, y, xs):
        """``y_i -= ir_drop c_i sum_j w_ij x''_j`` with ``a_i = n/g_ratio sum_j |w_ij||x'_j|`` (module docstring)."""
        xp, n = self.xp, self.in_size
        a = F32(n / self.cfg.ir_drop_g_ratio) * (xp.abs(xs) @ self._abs_w())
        c = a * (a * (F32(0.05) * a - F32(0.2)) + _HALF)
        p = _ONE - xp.arange(n, dtype=xp.float32) / F32(n)  # line j = 0 is farthest from the output
        ramp = _ONE - p * p
        return y - c * (F32(self.cfg.ir_drop) * ((xs * ramp) @ self.wt))

    def _voltage_offsets(self, y, xs):
        """Per-line voltage offsets v_i and series resistance (module docstring; no cap on the r_series term)."""
        xp, cfg = self.xp, self.cfg
        v = self._line("v_offset") if cfg.v_offset_std > 0 else _ZERO
        rs = F32(cfg.r_series)
        if cfg.v_offset_w_min == 0:
            if cfg.r_series <= 0:
                return y * (_ONE - v)
            return (_ONE - v) * y / (_ONE + rs * xp.abs(y))
        # implicit reference column at weight v_offset_w_min, read with the opposite offset
        y_ref = F32(-cfg.v_offset_w_min) * xs.sum(axis=1, keepdims=True)
        if cfg.r_series <= 0:
            return y * (_ONE - v) - v * (y_ref * F32(2))
        y_pos = y + y_ref
        return ((_ONE - v) * y_pos / (_ONE + rs * xp.abs(y_pos))
                - (_ONE + v) * y_ref / (_ONE + rs * xp.abs(y_ref)))

    # ---- the whole call ---------------------------------------------------------------------------
    def run(self):
        xp, cfg, x = self.xp, self.cfg, self.x
        batch = x.shape[0]
        alpha = self.noise_management(cfg.noise_management)
        zero = None
        if self.nm_on and cfg.inp_noise == 0:
            zero = alpha <= 0  # nothing reaches the crossbar: the output is exactly 0
        alpha_np = None
        rows = None  # None: every sample is active
        y = div_all = None
        rounds = self.schedule()
        for rnd, (factor, np_round) in enumerate(rounds):
            if np_round and alpha_np is None:
                alpha_np = self.noise_management(NoiseManagement.ABS_MAX_NP_SUM)
            a = alpha_np if np_round else alpha
            if self.nm_on:
                a = a if rows is None else a[rows]
                div = xp.where(a > 0, a, _ONE) * F32(factor)
            elif factor != 1.0:
                div = xp.full(batch if rows is None else rows.shape[0], factor, dtype=xp.float32)
            else:
                div = None
            y_r, exceeded = self.analog(x if rows is None else x[rows], div, rows, rnd)
            if rows is None:
                y, div_all = y_r, div
            else:
                y[rows] = y_r
                if div_all is None:  # NM NONE: round 0 ran unscaled
                    div_all = xp.ones(batch, dtype=xp.float32)
                div_all[rows] = div
            if exceeded is None or rnd == len(rounds) - 1:
                break
            if zero is not None:
                exceeded &= ~(zero if rows is None else zero[rows])
            hit = xp.nonzero(exceeded)[0]  # host sync: how many samples are left
            if hit.shape[0] == 0:
                break
            rows = hit if rows is None else rows[hit]
        scale = F32(cfg.out_scale) if div_all is None else F32(cfg.out_scale) * div_all[:, None]
        if div_all is not None or cfg.out_scale != 1:
            y = y * scale
        if zero is not None:
            y = xp.where(zero[:, None], _ZERO, y)
        return y


def read_vectors(v, cfg: IOParameters, key, sample0: int, *, transposed: bool = False, state: dict | None = None,
                 xp=np, ctr=None):
    """Transfer reads: the MVM of a one-hot input ``e_c`` on stored vectors, without forming ``W e_c``.

    Row ``t`` of ``v`` is the column ``W[:, c_t]`` (or, ``transposed``, the row ``W[r_t, :]``) that a read of
    line ``c_t`` would return; the read is :func:`mvm` of that one-hot input (noise management and bound
    management off, as transfer reads are): the DAC turns 1 into ``x' = clip(q_in(1))``, the crossbar gives
    ``v x'``, and the periphery adds weight noise, output noise, ADC and clip, with the draws named by
    sample ``sample0 + t`` exactly as :func:`mvm` names them. It equals ``mvm(W, e_c)`` whenever the
    undriven lines add nothing, i.e. without input noise, stochastic DAC rounding, IR drop or voltage
    offsets (the transfer configs reject those).

    Args:
        v: float32 ``[n, size]`` stored vectors.
        cfg: the transfer IO parameters (noise and bound management must be NONE).
        ctr: a ``(1,)`` counter array holding the first sample number, added to ``sample0`` (on the GPU it
            stays in device memory, so captured CUDA graphs replay with fresh draws).

    Returns:
        float32 ``[n, size]`` reads.
    """
    v = xp.asarray(v, dtype=xp.float32)
    if cfg.is_perfect:
        return v * F32(cfg.out_scale) if cfg.out_scale != 1 else v.copy()
    n, size = v.shape
    ones = xp.ones((n, 1), xp.float32)
    p = _Pass(ones[:1], ones[:1], ones, cfg, key, int(sample0), transposed,
              state if state is not None else sample_io_state(cfg, size, None, transposed=transposed), xp)
    p.out_size, p.ctr = size, ctr
    x1 = p.dac_one()
    y = v * x1
    std = None
    if cfg.w_noise_type != WeightNoiseType.NONE and cfg.w_noise > 0:
        if cfg.w_noise_type == WeightNoiseType.ADDITIVE_CONSTANT:
            std = F32(cfg.w_noise) * xp.sqrt(x1 * x1)
        else:
            std = F32(cfg.w_noise) * xp.sqrt((x1 * x1) * xp.abs(v))
    y, _ = p.periphery(y, std, None, 1 if transposed else 0)
    return y * F32(cfg.out_scale) if cfg.out_scale != 1 else y
