"""From ``update(x, d, lr)`` to per-weight pulse counts: the stochastic pulsed update of Gokmen & Vlasov
2016 ("Acceleration of deep neural network training with resistive cross-point devices"), with the update
management and pulse types of IBM's aihwkit 1.1.

Goal: ``W -= lr d x^T`` (``x`` the forward input, ``d`` the output gradient) with pulses on devices whose mean
step is the granularity ``dw`` (``PulsedDevice.granularity()``, normally ``dw_min``; weight units). Input line
``j`` sends a train of ``BL`` slots, each firing with probability ``p_x[j] = B |x_j|``; output line ``i`` sends
one with ``p_d[i] = A |d_i|``; weight ``(i, j)`` gets one pulse per slot in which both fire (a coincidence), so
``n_ij ~ Binomial(BL, p_x p_d)``, ``E[n_ij] = BL A B |x_j d_i|``, ``Var[n_ij] = BL p (1 - p)``. With
``A B = |lr| / (dw BL)`` a constant-step device moves by ``E[dW] = -lr d x^T`` on average; a weight gets at
most ``BL`` pulses per sample. Clipped probabilities, discretisation, bounds and nonlinear steps bias it.

Train length and scales, per sample (:func:`update_management`, float32; ``lam = |lr|``; defaults
``desired_bl = 31``, ``fixed_bl``, update management and BL management on, ``um_grad_scale = 1``, ``res = 0``):

* ``lam == 0``: no update (``BL = 0``).
* ``fixed_bl``, BL management, or ``dw desired_bl >= lam``: ``BL = desired_bl``, ``A = B = sqrt(lam / (dw BL))``;
  otherwise ``BL = ceil(lam / dw)`` and ``A = B = 1``.
* Update management (on if ``update_management`` or ``update_bl_management``): ``m_x = max|x|``,
  ``m_d = um_grad_scale max|d|``, ``k = lam m_x m_d / dw`` (expected pulses at the largest product). BL
  management sets ``BL = min(max(ceil(k), 1), desired_bl)`` and ``A = B = sqrt(lam / (dw BL))``. If
  ``k > desired_bl``, ``m_d <- m_d desired_bl / k``. Then ``A <- A sqrt(m_x / m_d)``, ``B <- B sqrt(m_d / m_x)``:
  ``B m_x <= 1`` (x never saturates) and past ``k > desired_bl`` the largest d probability exceeds 1 (the
  gradient is clipped first). A sample with ``m_x == 0`` or ``m_d == 0`` gets ``BL = 0``.
* ``res > 0``: ``p <- rint(p / res [+ U - 1/2 with sto_round]) res``. A probability >= 1 always fires; a line
  with ``p == 0`` sends nothing.

Semantics (identical on every backend): the samples of a batch are applied in batch order; for each
weight and sample the ``n`` coincidences of that sample are applied as ``n`` pulses of one sign, all
before the next sample touches the weight. A coincidence of ``x_j`` and ``d_i`` at learning rate ``lr``
carries the sign ``sign(x_j) sign(d_i) sign(lr)``: positive moves the weight down.

Pulse types (:class:`~crossbar.config.PulseType`):

* ``STOCHASTIC_COMPRESSED`` (default): sample ``b`` (the tile's running sample number ``s = sample0 + b``) has
  ``BL_b`` slots; slot ``k`` of input line ``j`` fires iff ``U(j, s, k // 4, X_BITS)[k % 4] < p_x[b, j]``
  (likewise output line ``i`` with ``D_BITS``), and ``n_ijb = sum_k bit_x * bit_d``.
* ``MEAN_COUNT`` (deterministic): ``c_x = sign(x) min(rint(BL p_x), BL)``, likewise ``c_d``;
  ``n_ij = rint(c_d c_x / BL)`` (signed).
* ``DETERMINISTIC_IMPLICIT``: ``x^ = sign(x) clip(q(p_x, x_res_implicit), 0, 1)``, likewise ``d^`` with
  ``d_res_implicit``; ``n_ij = rint(BL d^ x^)``.
* ``NONE``: a floating-point ``W -= lr d x^T``; the tile replaces a pulsed device by an ideal one.
  ``NONE_WITH_DEVICE``: the same update, then the device's hard bounds.

All scalar and per-sample arithmetic is float32 in a fixed order, so a CUDA kernel computing the same
thresholds fires the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import rng
from ..backend import register
from ..config import PulseType, UpdateParameters, resolution
from .devices.base import PulsedDevice, apply_events

F32 = np.float32


@dataclass
class Events:
    """Pulse counts of one update, one entry per touched (sample, weight), sorted by sample then weight.

    Attributes:
        widx: flat weight index ``i * in_size + j`` (int64).
        sample: sample index within the batch (int32).
        n: number of pulses (int32, >= 1).
        up: True where the pulses move the weight up.
    """

    widx: np.ndarray
    sample: np.ndarray
    n: np.ndarray
    up: np.ndarray

    @classmethod
    def empty(cls):
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, bool))

    def dense_counts(self, batch: int, out_size: int, in_size: int) -> np.ndarray:
        """Signed counts as a dense ``(batch, out, in)`` int32 array (positive = down), for tests."""
        c = np.zeros((batch, out_size * in_size), np.int32)
        c[self.sample, self.widx] = np.where(self.up, -self.n, self.n)
        return c.reshape(batch, out_size, in_size)


def _keeps_desired_bl(lam, dw, cfg: UpdateParameters) -> bool:
    """Whether trains have ``desired_bl`` slots before update-BL management (float32 ``lam = |lr|``, ``dw``):
    when BL is fixed or managed, or when ``desired_bl`` pulses of ``dw`` can reach ``lam``; otherwise a train
    has ``ceil(lam / dw)`` slots at full probability."""
    return bool(cfg.fixed_bl or cfg.update_bl_management or dw * F32(cfg.desired_bl) >= lam)


def max_train_length(lr: float, dw: float, cfg: UpdateParameters) -> int:
    """The largest BL any sample of an update can get; it depends on the config and ``lr``, never on data
    (the GPU sizes its pulse-train words with it)."""
    lam, dwf = F32(abs(lr)), F32(dw)
    if lam == 0 or _keeps_desired_bl(lam, dwf, cfg):
        return cfg.desired_bl
    return int(max(np.ceil(lam / dwf), F32(1)))


def update_management(x_max, d_max, lr: float, dw: float, cfg: UpdateParameters):
    """Per-sample pulse-train length and probability scales (module docstring), in float32.

    Args:
        x_max, d_max: float32 ``(batch,)``, the per-sample ``max|x|`` and ``max|d|``.
        lr: learning rate (only ``|lr|`` is used here).
        dw: weight granularity delta of the device.
        cfg: the update parameters.

    Returns:
        ``(bl, scale_d, scale_x)``: int32 ``(batch,)`` train lengths (0 = no update) and float32
        ``(batch,)`` factors so that ``p_d = scale_d |d|`` and ``p_x = scale_x |x|``.
    """
    lam, dw, bld = F32(abs(lr)), F32(dw), F32(cfg.desired_bl)
    batch = x_max.shape[0]
    if lam == 0:
        zero = np.zeros(batch, F32)
        return np.zeros(batch, np.int32), zero, zero
    if _keeps_desired_bl(lam, dw, cfg):
        bl = np.full(batch, bld, F32)
        a = np.sqrt(lam / (dw * bl))
    else:
        bl = np.full(batch, max(np.ceil(lam / dw), F32(1)), F32)
        a = np.ones(batch, F32)
    b = a.copy()
    if cfg.um_on:
        d_v = F32(cfg.um_grad_scale) * d_max
        k = lam * x_max * d_v / dw
        if cfg.update_bl_management:
            bl = np.minimum(np.maximum(np.ceil(k), F32(1)), bld)
            a = np.sqrt(lam / (dw * bl))
            b = a.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            d_v = np.where(k > bld, d_v * bld / k, d_v)
            a = a * np.sqrt(x_max / d_v)
            b = b * np.sqrt(d_v / x_max)
        dead = (x_max == 0) | (d_max == 0)
        bl = np.where(dead, F32(0), bl)
        a, b = np.where(dead, F32(0), a), np.where(dead, F32(0), b)
    return bl.astype(np.int32), a.astype(F32), b.astype(F32)


def _discretise(p, res: float, sto_round: bool, key, stream_c2, sample0, xp=np):
    """Probability discretisation ``p <- rint(p / res [+ U - 1/2]) * res``."""
    r = F32(resolution(res))
    if r == 0:
        return p
    v = p / r
    if sto_round:
        batch, size = p.shape
        u = rng.uniform(key, rng.Stream.PROB_ROUND, np.arange(size, dtype=np.uint32)[None, :],
                        (sample0 + np.arange(batch, dtype=np.uint64))[:, None] & 0xFFFFFFFF,
                        stream_c2, xp)[0]
        v = v + (u - F32(0.5))
    return xp.rint(v) * r


def probabilities(x, d, lr, dw, cfg: UpdateParameters, key, sample0: int):
    """Pulse probabilities and train lengths of a stochastic update.

    Args:
        x: float32 ``(batch, in)``; d: float32 ``(batch, out)``.

    Returns:
        ``(p_x, p_d, bl)``: float32 ``(batch, in)``, ``(batch, out)`` and int32 ``(batch,)``.
    """
    x_max = np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0], F32)
    d_max = np.abs(d).max(axis=1) if d.shape[1] else np.zeros(d.shape[0], F32)
    bl, sd, sx = update_management(x_max, d_max, lr, dw, cfg)
    p_x = _discretise(sx[:, None] * np.abs(x), cfg.res, cfg.sto_round, key, 0, sample0)
    p_d = _discretise(sd[:, None] * np.abs(d), cfg.res, cfg.sto_round, key, 1, sample0)
    return p_x, p_d, bl


def _words(probs, bl, key, streams, sample0: int):
    """Pulse trains of the lines with ``p > 0`` packed into uint32 words (slot ``k`` is bit ``k % 32`` of
    word ``k // 32``), exactly as the CUDA kernel builds them. All line sets share one Philox call.

    Args:
        probs: list of float32 ``(batch, size)`` probabilities (x lines, d lines).
        streams: the stream tag of each.

    Returns:
        one ``(b, line, words)`` per entry of ``probs``: sample and line of every line that fired at least
        once (sorted by sample, then line) and its uint32 ``(m, ceil(max(bl) / 32))`` words.
    """
    nwords = max((int(bl.max(initial=0)) + 31) // 32, 1)
    parts = []
    for p, stream in zip(probs, streams):
        b, line = np.nonzero((p > 0) & (bl[:, None] > 0))
        nblk = (bl[b] + 3) // 4  # one Philox counter gives the uniforms of four slots
        first = np.cumsum(nblk) - nblk
        if int(nblk.max(initial=1)) == 1:  # BL <= 4 (the usual case at larger batches): one row per line
            rep, blk = np.arange(b.size), np.zeros(b.size, np.int64)
        else:
            rep = np.repeat(np.arange(b.size), nblk)
            blk = np.arange(rep.size) - np.repeat(first, nblk)
        parts.append((p, b, line, rep, blk, first, int(stream)))
    rep_b = np.concatenate([part[1][part[3]] for part in parts]).astype(np.uint64)
    rep_line = np.concatenate([part[2][part[3]] for part in parts]).astype(np.uint32)
    tags = np.concatenate([np.full(part[3].size, part[6], np.uint32) for part in parts])
    blocks = np.concatenate([part[4] for part in parts]).astype(np.uint32)
    u = rng.uniform_from_words(rng.philox4x32(key, rep_line, (sample0 + rep_b) & 0xFFFFFFFF, blocks, tags))
    weight = (np.uint32(1) << np.arange(4, dtype=np.uint32))[:, None]
    out, start = [], 0
    for p, b, line, rep, blk, first, _ in parts:
        uu = u[:, start:start + rep.size]  # (4, rows): the uniforms of slots 4 blk .. 4 blk + 3
        start += rep.size
        left = bl[b[rep]] - 4 * blk  # slots of the train still ahead of this block
        fired = (uu < p[b[rep], line[rep]][None, :]) & (np.arange(4)[:, None] < left[None, :])
        bits = (fired * weight).sum(axis=0, dtype=np.uint32) << (4 * (blk % 8)).astype(np.uint32)
        if nwords == 1:  # one word per line: its blocks are consecutive rows
            words = (np.add.reduceat(bits, first) if b.size else bits).reshape(-1, 1)  # distinct bits: sum = or
        else:
            words = np.zeros((b.size, nwords), np.uint32)
            np.add.at(words, (rep, blk // 8), bits)
        keep = words.any(axis=1)
        out.append((b[keep], line[keep], words[keep]))
    return out


def stochastic_counts(p_x, p_d, bl, key, sample0: int):
    """Coincidence counts of stochastic compressed pulse trains.

    Returns:
        ``(sample, i, j, n)`` for every (sample, weight) with ``n > 0``, sorted by sample, then ``i``, ``j``.
    """
    batch = p_x.shape[0]
    (bx, jx, wx), (bd, id_, wd) = _words([p_x, p_d], bl, key, [rng.Stream.X_BITS, rng.Stream.D_BITS], sample0)
    cx, cd = np.bincount(bx, minlength=batch), np.bincount(bd, minlength=batch)
    ox, od = np.cumsum(cx) - cx, np.cumsum(cd) - cd
    pairs = cx * cd
    b = np.repeat(np.arange(batch), pairs)
    q = np.arange(b.size) - np.repeat(np.cumsum(pairs) - pairs, pairs)
    xi, di = ox[b] + q % cx[b], od[b] + q // np.maximum(cx[b], 1)
    n = np.bitwise_count(wx[xi] & wd[di]).sum(axis=1, dtype=np.int32)
    hit = n > 0
    return b[hit].astype(np.int32), id_[di[hit]], jx[xi[hit]], n[hit]


def _dense_events(c):
    """Signed dense counts ``(batch, out, in)`` (positive = down) to :class:`Events`."""
    batch = c.shape[0]
    b, widx = np.nonzero(c.reshape(batch, -1))  # sample-major, weights ascending
    v = c.reshape(batch, -1)[b, widx]
    return Events(widx.astype(np.int64), b.astype(np.int32), np.abs(v).astype(np.int32), v < 0)


def _quantise(v, res: float, xp=np):
    r = F32(resolution(res))
    return v if r == 0 else xp.rint(v / r) * r


def coincidences(x, d, lr: float, dw: float, cfg: UpdateParameters, key, sample0: int) -> Events:
    """Pulse counts of ``update(x, d, lr)`` for a pulsed device of granularity ``dw``.

    Args:
        x: float32 ``(batch, in)`` forward inputs; d: float32 ``(batch, out)`` output gradients.
        lr: learning rate (its sign flips all directions).
        dw: weight granularity of the device (``PulsedDevice.granularity()``).
        cfg: update parameters (pulse type STOCHASTIC_COMPRESSED, DETERMINISTIC_IMPLICIT or MEAN_COUNT).
        key: the tile's Philox key.
        sample0: running number of the first sample (names the random draws).

    Returns:
        :class:`Events`, sorted by sample then weight.
    """
    neg_lr = lr < 0
    if cfg.pulse_type == PulseType.STOCHASTIC_COMPRESSED:
        p_x, p_d, bl = probabilities(x, d, lr, dw, cfg, key, sample0)
        b, i, j, n = stochastic_counts(p_x, p_d, bl, key, sample0)
        up = (x[b, j] < 0) ^ (d[b, i] < 0) ^ neg_lr
        return Events(i.astype(np.int64) * x.shape[1] + j, b, n, up)
    x_max, d_max = np.abs(x).max(axis=1), np.abs(d).max(axis=1)
    bl, sd, sx = update_management(x_max, d_max, lr, dw, cfg)
    return _dense_events(deterministic_counts(x, d, bl, sd, sx, cfg, neg_lr))


def deterministic_counts(x, d, bl, sd, sx, cfg: UpdateParameters, neg_lr: bool, xp=np):
    """Signed pulse counts ``(batch, out, in)`` int32 (positive = down) of the deterministic pulse types
    (MEAN_COUNT, DETERMINISTIC_IMPLICIT; module docstring), from the update-management output ``bl, sd, sx``.
    Runs on NumPy or CuPy arrays."""
    p_x = sx[:, None] * xp.abs(x)
    p_d = sd[:, None] * xp.abs(d)
    blf = bl.astype(F32)
    if cfg.pulse_type == PulseType.MEAN_COUNT:
        cx = xp.sign(x) * xp.minimum(xp.rint(blf[:, None] * p_x), blf[:, None])
        cd = xp.sign(d) * xp.minimum(xp.rint(blf[:, None] * p_d), blf[:, None])
        c = xp.rint(cd[:, :, None] * cx[:, None, :] / xp.maximum(blf, F32(1))[:, None, None])
    elif cfg.pulse_type == PulseType.DETERMINISTIC_IMPLICIT:
        xh = xp.sign(x) * xp.clip(_quantise(p_x, cfg.x_res_implicit, xp), 0, 1)
        dh = xp.sign(d) * xp.clip(_quantise(p_d, cfg.d_res_implicit, xp), 0, 1)
        c = xp.rint(blf[:, None, None] * dh[:, :, None] * xh[:, None, :])
    else:
        raise ValueError(f"pulse_type {cfg.pulse_type} has no deterministic pulse counts")
    c = c.astype(xp.int32)
    return -c if neg_lr else c


# ---- the pulsed update of a tile: its plan and the NumPy engine -------------------------------------------
class UpdatePlan(NamedTuple):
    """What a pulsed-update implementation needs besides the arrays, computed once per tile
    (:func:`update_plan`): the device and the update settings, the parameter stack's row of each hidden
    parameter, and the device's tile-wide constants as one float32 array on the tile's backend, in the order its
    CUDA step function reads them (scalars as they are, each array preceded by its length)."""
    device: PulsedDevice
    cfg: UpdateParameters
    rows: dict
    constants: object


def update_plan(device: PulsedDevice, cfg: UpdateParameters, rows: dict, xp=np) -> UpdatePlan:
    """The :class:`UpdatePlan` of a tile whose hidden parameters sit in rows ``rows`` of its stack."""
    flat = []
    for v in device.scalars().values():
        v = np.asarray(v, np.float32)
        flat += [np.float32(v.size), *v.tolist()] if v.ndim else [v]
    return UpdatePlan(device, cfg, dict(rows), xp.asarray(np.asarray(flat, np.float32)))


@register("pulsed_update", "numpy")
def pulsed_update(weights, stack, x, d, lr: float, plan: UpdatePlan, key, ctr, pulse_counts=None, snap=None,
                  only: int = 0):
    """Apply ``W -= lr d^T x`` as stochastic pulses to ``weights`` (float32 ``(out, in)``) and the parameter stack
    ``stack`` (``(n, out, in)``), in place, samples named from ``ctr[0]`` (the caller advances it).

    ``snap = (snap_at, snap_slot, snap_out, flip_after)`` serves the fused Tiki-Taka transfers: the signs of
    column ``j``'s coincidences invert after sample ``flip_after[j]`` (a chopper flip), and the visible weights
    of each column with ``snap_at[j] >= 0`` as they are after sample ``snap_at[j]`` go to
    ``snap_out[snap_slot[j]]``. A column only changes by its own events, so replaying the events of the snapshot
    columns up to their boundaries on a copy gives those weights exactly (the draws are named by weight and
    sample).

    ``only`` (one-sided unit cells, whose two devices share one set of trains): 1 applies only the coincidences
    that raise the weight, 2 only those that lower it, each as a pulse up; 0 applies all."""
    start = int(ctr[0])
    events = coincidences(x, d, lr, plan.device.granularity(), plan.cfg, key, start)
    if snap is not None:  # chopper flips first, then the one-sided selection (the kernel's order)
        events.up = events.up ^ (events.sample > snap[3][events.widx % weights.shape[1]])
    if only:
        keep = events.up == (only == 1)
        events = Events(events.widx[keep], events.sample[keep], events.n[keep], np.ones(int(keep.sum()), bool))
    flat = {k: stack[r].reshape(-1) for k, r in plan.rows.items()}
    counts = None if pulse_counts is None else {k: v.reshape(-1) for k, v in pulse_counts.items()}
    if snap is not None:
        snap_at, snap_slot, snap_out, _ = snap
        j = events.widx % weights.shape[1]
        keep = (snap_at[j] >= 0) & (events.sample <= snap_at[j])
        sub = Events(events.widx[keep], events.sample[keep], events.n[keep], events.up[keep])
        copy = weights.reshape(-1).copy()
        apply_events(plan.device, copy, {k: (v.copy() if k == "persistent_weights" else v) for k, v in flat.items()},
                     sub, key, start)
        cols = np.flatnonzero(snap_at >= 0)
        snap_out[snap_slot[cols]] = copy.reshape(weights.shape)[:, cols].T
    apply_events(plan.device, weights.reshape(-1), flat, events, key, start, counts)
