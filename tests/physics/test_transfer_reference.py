"""Independent sequential references for the Tiki-Taka family and mixed precision, and their tests.

:class:`TransferReference` (TTv1 ``TransferCompound``, TTv2 ``BufferedTransferCompound``, c-TTv2
``ChoppedTransferCompound`` and AGAD ``DynamicTransferCompound``, also as built by ``build_config``) and
:class:`MixedPrecisionReference` (``MixedPrecisionCompound``) are plain per-sample Python loops written from
the algorithms' formulas (Gokmen & Haensch 2020; Gokmen 2021; Rasch et al. 2023; Nandakumar et al. 2020; the
incumbent aihwkit 1.1's CPU devices): one vector update of A, then every transfer that is due, one line at a
time, one buffer element at a time. They share no code with ``crossbar/tiles/transfer.py``: gamma vectors,
periods, learning rates, thresholds, chopper flips, running means, the warm-up and the quantiser are all
computed here. What they do use:

* single-device :class:`crossbar.AnalogTile` objects as the arrays A and C (the single tile is tested
  elsewhere): a transfer read of line ``c`` is ``A.forward(e_c)`` (``A.backward(e_r)`` for rows) on a tile
  whose forward and backward IO is the transfer IO (a one-hot MVM is the stored column times the DAC level
  of 1, plus the periphery), and each written vector is one sample of the receiving tile's ``update``;
* :mod:`crossbar.physics.rng` to draw the same named random numbers as the code.

Conventions reproduced (they are naming conventions, not physics; reproducing them makes the comparison
exact, bit for bit):

* sub-tile ``k`` (A is 0, C is 1, longer TTv1 chains continue) is an ``AnalogTile`` with seed
  ``seed_key(seed, 1000 + k)`` packed into 64 bits, device ``unit_cell_devices[min(k, 1)]``, update
  parameters: the tile's for A, ``transfer_update`` for the others, and forward = backward = the transfer IO
  with noise and bound management off (the mixed-precision tile: one sub-tile, the tile's update parameters
  with update and BL management forced on). Same seeds, same device-to-device draws;
* transfer-read noise is named by the read sub-tile's forward (rows: backward) counter, one sample per read;
  each written vector is one sample of the receiving sub-tile's update counter, also when it is all zero
  (AGAD's warm-up, a buffer below threshold), so the pulse draws of later writes keep their names;
* draws of the compound tile (key ``seed_key(seed, 0)``), stream TRANSFER: TTv1 random start of device
  ``k`` ``(c0=k, c1=transfer number counting this one, c2=0)``; TTv1 column-reset decision ``(k, transfer
  number, 3)``; in-chopper flip of line ``c`` ``(c, completed sweeps, 1)``; out-chopper ``i`` ``(i // 4,
  completed sweeps, 2)`` word ``i % 4``; mixed precision random first row ``(0, previous row transfers,
  0)``; stream QUANT: stochastic rounding of element ``j`` of sample ``s`` ``(j // 4, s, 0 for x / 1 for d)``
  word ``j % 4``;
* scalar parameters are computed in float64 and cast once to float32 (the project's convention), buffer
  arithmetic is float32 in the order of the formulas.

Where the project deliberately differs from the incumbent's CPU code, the references follow the project's
documented contract (``crossbar/tiles/transfer.py`` module docstring) and say so where it happens: the auto-scale
running maxima are updated once per batch with the batch mean of the per-sample maxima (as the incumbent's
GPU engine); the ``1 / (m_x m_d)`` factor of the auto-scaled fast learning rate is applied to ``d`` (the same
pulse probabilities in exact arithmetic); mixed precision accumulates a batch in one addition to chi and
transfers at the end of the batch (as the incumbent's GPU engine); transfer reads run with noise and bound
management off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import (AnalogTile, BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound,
                      IOParameters, MixedPrecisionCompound, TileConfig, TransferCompound, UpdateParameters, make_tile)
from crossbar.physics import rng
from crossbar.presets import build_config

F32 = np.float32
TRANSFER, QUANT = rng.Stream.TRANSFER, rng.Stream.QUANT


# ---- shared conventions (naming only) ----------------------------------------------------------------

def sub_tile_seed(seed: int, k: int) -> int:
    """Seed of sub-tile ``k``: the Philox key ``seed_key(seed, 1000 + k)`` as one 64-bit integer."""
    key = rng.seed_key(seed, 1000 + k)
    return int(key[0]) | (int(key[1]) << 32)


def one_hot(c: int, n: int) -> np.ndarray:
    e = np.zeros((1, n), F32)
    e[0, c] = 1
    return e


def uniform(key, c0: int, c1: int, c2: int, stream=TRANSFER, word: int = 0) -> float:
    """One named uniform of the compound tile (exactly representable in float32)."""
    return float(rng.uniform(key, stream, c0, c1, c2)[word])


# ---- Tiki-Taka family ----------------------------------------------------------------------------------

class TransferReference:
    """Sequential reference of a compound tile of the Tiki-Taka family (``TransferCompound`` and subclasses).

    State: ``tiles`` (A, C, ...), ``H`` (buffer, out x in), choppers ``c_in`` (per input line) and ``c_out``
    (per output line), auto-scale maxima ``m_x``, ``m_d``, AGAD running means ``mean``, ``past``, flags
    ``switched`` (per read line), and the counters ``vec`` (vector updates), ``slices`` (next line per device),
    ``sweeps`` (completed sweeps of A), ``ops`` (transfers), ``samples`` (samples seen).
    """

    def __init__(self, out_size: int, in_size: int, config: TileConfig, seed: int):
        cc = self.cc = config.device
        self.config, self.out_size, self.in_size = config, out_size, in_size
        self.key = rng.seed_key(seed, 0)
        devs = cc.unit_cell_devices
        self.n = n = len(devs)
        tio = cc.transfer_forward.replace(noise_management="none", bound_management="none")
        self.tiles = [AnalogTile(out_size, in_size, TileConfig(device=devs[min(k, 1)], forward=tio, backward=tio,
                                                               update=config.update if k == 0 else cc.transfer_update),
                                 seed=sub_tile_seed(seed, k)) for k in range(n)]
        self.dynamic = isinstance(cc, DynamicTransferCompound)
        self.chopped = isinstance(cc, ChoppedTransferCompound)
        self.buffered = isinstance(cc, BufferedTransferCompound)
        self.columns = cc.transfer_columns
        self.lines = in_size if self.columns else out_size  # lines read per sweep
        self.length = out_size if self.columns else in_size  # length of one read
        # visible weight factors: gamma_k = gamma^(n-1-k) unless given
        self.gammas = list(cc.gamma_vec) if cc.gamma_vec else [cc.gamma ** (n - 1 - k) for k in range(n)]
        self.tlrs = list(cc.transfer_lr_vec) if cc.transfer_lr_vec else [cc.transfer_lr] * n
        # transfer periods t_k: t_0 = transfer_every, t_(k+1) = t_k * (read length) / n_reads, the last one 0
        if cc.transfer_every_vec:
            self.t = list(cc.transfer_every_vec)
        else:
            self.t = [cc.transfer_every]
            for _ in range(n - 1):
                self.t.append(self.t[-1] * self.length / cc.n_reads_per_transfer)
            if cc.no_self_transfer:
                self.t[-1] = 0.0
        self.H = np.zeros((out_size, in_size), F32)
        self.c_in, self.c_out = np.zeros(in_size, bool), np.zeros(out_size, bool)
        self.m_x = self.m_d = F32(0)
        self.mean, self.past = np.zeros((out_size, in_size), F32), np.zeros((out_size, in_size), F32)
        self.switched = np.zeros(self.lines, bool)
        self.vec, self.slices, self.sweeps, self.ops, self.samples = 0, [0] * n, 0, 0, 0
        self.lr_a = 1.0  # A's pulse-count learning rate of the current batch
        self.d_scale = None  # auto scale: the factor 1 / (m_x m_d) applied to d

    # -- helpers on the lines --------------------------------------------------------------------------
    def line_choppers(self):
        """(choppers of the read lines, choppers of the other lines)."""
        return (self.c_in, self.c_out) if self.columns else (self.c_out, self.c_in)

    def read(self, tile: AnalogTile, c: int) -> np.ndarray:
        if self.columns:
            return np.asarray(tile.forward(one_hot(c, self.in_size)))[0]
        return np.asarray(tile.backward(one_hot(c, self.out_size)))[0]

    def write(self, tile: AnalogTile, c: int, d_vec, lr: float) -> None:
        """One sample of ``tile``'s update: ``W[:, c] -= lr d_vec`` (rows: ``W[c, :] -= lr d_vec``)."""
        d_vec = np.asarray(d_vec, F32)[None, :]
        if self.columns:
            tile.update(one_hot(c, self.in_size), d_vec, lr)
        else:
            tile.update(d_vec, one_hot(c, self.out_size), lr)

    def period(self, k: int, batch: int) -> int:
        """Period of device ``k`` in vector updates (0 = never)."""
        cc = self.cc
        if self.chopped and k == 0 and cc.transfer_every < 0:  # automatic: A's number of states per line
            dev = cc.unit_cell_devices[0]
            states = (dev.w_max - dev.w_min) / dev.granularity()
            return max(int(round(states / self.lines * abs(cc.transfer_every))), 1)
        t = self.t[k]
        if t <= 0:
            return 0
        return math.ceil(t * batch) if cc.units_in_mbatch else int(round(t))

    # -- the update --------------------------------------------------------------------------------------
    def update(self, x, d, lr: float) -> None:
        cc = self.cc
        x, d, lr = np.asarray(x, F32), np.asarray(d, F32), float(lr)
        batch = x.shape[0]
        self.samples += batch
        self.d_scale = None
        if self.chopped and cc.auto_scale and cc.fast_lr > 0:
            # running max|x|, max|d|: once per batch with the batch mean of the per-sample maxima, tau = 1 -
            # auto_momentum (the project's contract, as the incumbent's GPU engine; its CPU steps per sample)
            tau = F32(1 - cc.auto_momentum)
            for name, v in (("m_x", x), ("m_d", d)):
                m = np.array([np.abs(row).max() for row in v], F32).mean(dtype=F32)
                cur = getattr(self, name)
                if m > 0:  # initialised with the first non-zero value; zero batches leave it unchanged
                    setattr(self, name, (F32(1) - tau) * cur + tau * m if cur > 0 else m)
            # lambda_A = fast_lr BL dw_A / (m_x m_d): the project applies the 1 / (m_x m_d) factor to d
            ok = self.m_x > 0 and self.m_d > 0
            self.d_scale = F32(1) / (self.m_x * self.m_d) if ok else F32(0)
            base = cc.fast_lr * self.config.update.desired_bl * cc.unit_cell_devices[0].granularity()
            self.lr_a = math.copysign(base * abs(lr) if cc.scale_fast_lr else base, lr)
        elif cc.fast_lr > 0:
            self.lr_a = cc.fast_lr * lr if cc.scale_fast_lr else math.copysign(cc.fast_lr, lr)
        else:
            self.lr_a = lr
        periods = [self.period(k, batch) for k in range(self.n)]
        A = self.tiles[0]
        for b in range(batch):
            xb, db = x[b].copy(), d[b].copy()
            if self.d_scale is not None:
                db = db * self.d_scale
            if self.chopped:  # A stores c_ij A_true: flip the coincidence signs of chopped lines
                xb = np.where(self.c_in, -xb, xb)
                db = np.where(self.c_out, -db, db)
            A.update(xb[None, :], db[None, :], self.lr_a)
            self.vec += 1
            for k in range(self.n - 1):  # the last device never transfers to itself
                if periods[k] > 0 and self.vec % periods[k] == 0:
                    self.transfer(k, lr)

    def transfer(self, k: int, lr: float) -> None:
        self.ops += 1
        if self.buffered:
            self.buffered_transfer(lr)
        else:
            self.plain_transfer(k, lr)

    def plain_transfer(self, k: int, lr: float) -> None:
        """TTv1: read ``n_reads`` consecutive lines of device k, write ``+lr_t`` times each onto device k+1."""
        cc = self.cc
        n = min(cc.n_reads_per_transfer, self.lines)
        start = self.slices[k]
        if cc.random_selection:
            start = int(uniform(self.key, k, self.ops, 0) * self.lines) % self.lines
        lines = [(start + t) % self.lines for t in range(n)]
        self.slices[k] = (start + n) % self.lines
        src, dst = self.tiles[k], self.tiles[k + 1]
        reads = [self.read(src, c) for c in lines]
        if cc.with_reset_prob > 0 and self.columns:
            # the read columns are reset together with probability with_reset_prob (the incumbent's column-wise
            # probability; every device of a reset column is reset), after the reads
            if uniform(self.key, k, self.ops, 3) < cc.with_reset_prob:
                src.reset_columns(start, n)
        lr_t = self.tlrs[k] * (abs(lr) if cc.scale_transfer_lr else 1.0)
        for c, v in zip(lines, reads):
            self.write(dst, c, -v, lr_t)  # E[dW_to[:, c]] = +lr_t W_from[:, c]

    def lr_scale(self, lr_t: float, dw_a: float, dw_c: float):
        """Chopped buffer increment per unit read: ``|lr_t| / bg`` (or ``/ lambda_A / bg``), float32."""
        cc = self.cc
        if cc.auto_granularity > 0:
            bg = cc.buffer_granularity * dw_a * cc.auto_granularity / (self.lines * abs(cc.transfer_every))
        else:
            bg = cc.buffer_granularity * dw_a
        if not cc.correct_gradient_magnitudes:
            return F32(abs(lr_t) / bg)
        bg = bg * dw_c / dw_a
        scale = F32(abs(lr_t) / (abs(self.lr_a) or 1.0) / bg)
        if self.d_scale is not None and self.d_scale > 0:
            scale = scale / self.d_scale  # lambda_A includes 1 / (m_x m_d)
        return scale

    def buffered_transfer(self, lr: float) -> None:
        """TTv2 / c-TTv2 / AGAD: one line of A into the buffer H; whole thresholds crossed are written to C."""
        cc = self.cc
        c = self.slices[0]
        self.slices[0] = (c + 1) % self.lines
        A, C = self.tiles
        v = self.read(A, c)
        dw_a, dw_c = cc.unit_cell_devices[0].granularity(), cc.unit_cell_devices[1].granularity()
        lr_t = self.tlrs[0] * (abs(lr) if cc.scale_transfer_lr else 1.0)
        g_a, g_c = self.gammas
        if g_a > 0 and g_c > 0:
            lr_t *= g_a / g_c
        bl = F32(cc.transfer_update.desired_bl)
        H = self.H[:, c] if self.columns else self.H[c, :]  # views
        n_out = np.zeros(self.length, F32)
        keep, sub = F32(cc.momentum), F32(1 - cc.momentum)
        if not self.chopped:  # TTv2: threshold theta = thres_scale dw_C, buffer in weight units
            theta, a = F32(cc.thres_scale * dw_c), F32(abs(lr_t))
            for i in range(self.length):
                h = H[i] + a * v[i]
                n = min(max(np.trunc(h / theta), -bl), bl)
                if n != 0:
                    h = h * keep if cc.forget_buffer else h - sub * n * theta
                H[i], n_out[i] = h, n
        else:
            line_ch, other_ch = self.line_choppers()
            sign = [F32(1) if other_ch[i] == line_ch[c] else F32(-1) for i in range(self.length)]
            scale = self.lr_scale(lr_t, dw_a, dw_c)
            P = max(math.ceil(1 / cc.in_chop_prob), 2) if cc.in_chop_prob > 0 else 2
            k_count = self.sweeps % P + 1
            if self.dynamic:
                beta = F32(min(cc.tail_weightening / P, 1.0))
                mean = self.mean[:, c] if self.columns else self.mean[c, :]
                past = self.past[:, c] if self.columns else self.past[c, :]
                if cc.experimental_correct_accumulation:
                    scale = scale / F32(min(k_count, 1 / dw_a))
            cap = F32(cc.buffer_cap) * bl if self.dynamic else None
            for i in range(self.length):
                if self.dynamic:
                    if self.switched[c]:  # a new chopper period: freeze the reference
                        past[i] = mean[i]
                    h = H[i] + (v[i] - past[i]) * sign[i] * scale  # the raw read, referenced, sign-corrected
                    mean[i] = (F32(1) - beta) * mean[i] + beta * v[i]
                else:
                    h = (F32(0) if cc.no_buffer else H[i]) + sign[i] * scale * v[i]
                n = F32(0)
                if abs(h) >= 1:  # dimensionless buffer, threshold 1
                    n = min(max(np.trunc(h), -bl), bl)
                    if cc.forget_buffer:
                        h = h * keep
                    else:
                        h = h - sub * n
                        if self.dynamic and cc.buffer_cap > 0:
                            h = min(max(h, -cap), cap)
                H[i], n_out[i] = h, n
            if self.dynamic:
                self.switched[c] = False
                if self.sweeps <= P:  # warm-up: nothing is written during the first P sweeps
                    n_out[:] = 0
        self.write(C, c, -n_out, F32(cc.step * dw_c))  # C[:, c] += step dw_C n (pulses)
        if self.chopped:
            self.flip_choppers(c)
        if c == self.lines - 1:
            self.sweeps += 1

    def flip_choppers(self, c: int) -> None:
        cc = self.cc
        line_ch, other_ch = self.line_choppers()
        p = cc.in_chop_prob
        P = max(math.ceil(1 / p), 2) if p > 0 else 0
        if self.dynamic:  # regular flips every P sweeps, plus random ones if in_chop_random
            flip = self.sweeps % P + 1 == P or (cc.in_chop_random and uniform(self.key, c, self.sweeps, 1) < p)
        elif p > 0:
            flip = uniform(self.key, c, self.sweeps, 1) < p if cc.in_chop_random else self.sweeps % P + 1 == P
        else:
            flip = False
        if flip:
            line_ch[c] = not line_ch[c]
            if self.dynamic:
                self.switched[c] = True
        if c == self.lines - 1 and not self.dynamic and cc.out_chop_prob > 0:  # AGAD has no output choppers
            for i in range(other_ch.shape[0]):
                if uniform(self.key, i // 4, self.sweeps, 2, word=i % 4) < cc.out_chop_prob:
                    other_ch[i] = not other_ch[i]

    # -- observations ------------------------------------------------------------------------------------
    def weights(self) -> np.ndarray:
        """``W = sum_k gamma_k W_k``; the chopped family's A enters with its chopper signs ``c_ij``."""
        w = np.zeros((self.out_size, self.in_size), F32)
        for k, (g, t) in enumerate(zip(self.gammas, self.tiles)):
            term = t.get_weights()
            if k == 0 and self.chopped:
                term = np.where(self.c_out[:, None] == self.c_in[None, :], term, -term)
            w = w + F32(g) * term
        return w

    def observe(self) -> dict:
        out = {"W": self.weights(), "H": self.H.copy(), "c_in": self.c_in.copy(), "c_out": self.c_out.copy(),
               "m": np.array([self.m_x, self.m_d]), "mean": self.mean.copy(), "past": self.past.copy()}
        for k, t in enumerate(self.tiles):
            out[f"W{k}"] = t.get_weights()
        return out


# ---- mixed precision -----------------------------------------------------------------------------------

class MixedPrecisionReference:
    """Sequential reference of the mixed-precision tile: quantise per sample, accumulate chi, write rows."""

    def __init__(self, out_size: int, in_size: int, config: TileConfig, seed: int):
        cc = self.cc = config.device
        self.out_size, self.in_size = out_size, in_size
        self.key = rng.seed_key(seed, 0)
        tio = IOParameters(noise_management="none", bound_management="none")
        update = config.update.replace(update_management=True, update_bl_management=True)  # forced on
        self.tile = AnalogTile(out_size, in_size, TileConfig(device=cc.device, forward=tio, backward=tio,
                                                             update=update), seed=sub_tile_seed(seed, 0))
        self.chi = np.zeros((out_size, in_size), F32)
        self.eps = cc.granularity if cc.granularity > 0 else cc.device.granularity()
        self.row, self.batches, self.samples, self.ops = 0, 0, 0, 0

    def quantise(self, v, bins: int, sto: bool, c2: int, sample: int) -> np.ndarray:
        """``q = clip(rint(v / w + (U - 1/2 if sto)), +-floor(bins/2)) w`` with ``w = max|v| / floor(bins/2)``."""
        if bins <= 0:
            return v
        half = F32(bins // 2)
        w = F32(np.abs(v).max()) / half
        if not w > 0:
            w = F32(1)
        q = np.empty_like(v)
        for j in range(v.shape[0]):
            t = v[j] / w
            if sto:
                t = t + (F32(uniform(self.key, j // 4, sample, c2, QUANT, j % 4)) - F32(0.5))
            q[j] = min(max(np.rint(t), -half), half) * w
        return q

    def update(self, x, d, lr: float) -> None:
        cc = self.cc
        x, d = np.asarray(x, F32), np.asarray(d, F32)
        acc = np.zeros((self.out_size, self.in_size), np.float64)
        for b in range(x.shape[0]):
            s = self.samples + b
            qx = self.quantise(x[b], cc.n_x_bins, cc.stoc_round_x, 0, s)
            qd = self.quantise(d[b], cc.n_d_bins, cc.stoc_round_d, 1, s)
            acc += np.outer(qd.astype(np.float64), qx.astype(np.float64))
        self.samples += x.shape[0]
        # one float32 addition per batch (the project's contract, as the incumbent's GPU GEMM); with inputs whose
        # products and sums are exact in float32 this equals any summation order
        self.chi = self.chi + F32(lr) * acc.astype(F32)
        self.batches += 1
        if self.batches % cc.transfer_every == 0:  # at the end of every transfer_every-th batch
            self.transfer()

    def transfer(self) -> None:
        cc = self.cc
        n_rows = self.out_size if cc.n_rows_per_transfer < 0 else min(cc.n_rows_per_transfer, self.out_size)
        first = self.row
        if cc.random_row:
            first = int(uniform(self.key, 0, self.ops, 0) * self.out_size)
        self.ops += 1
        eps = F32(self.eps)
        lr_w = float(eps * F32(cc.transfer_lr))  # in float32, as the project
        for r in range(n_rows):
            i = (first + r) % self.out_size
            counts = np.trunc(self.chi[i] / eps)  # whole epsilons
            self.chi[i] = self.chi[i] - counts * eps
            self.tile.update(counts[None, :], one_hot(i, self.out_size), lr_w)  # E[dW_i] = -eps transfer_lr n
        self.row = (first + n_rows) % self.out_size

    def weights(self) -> np.ndarray:
        return self.tile.get_weights()

    def observe(self) -> dict:
        return {"W": self.weights(), "chi": self.chi.copy()}


def reference(out_size: int, in_size: int, config: TileConfig, seed: int):
    if isinstance(config.device, MixedPrecisionCompound):
        return MixedPrecisionReference(out_size, in_size, config, seed)
    return TransferReference(out_size, in_size, config, seed)


# ---- comparison ----------------------------------------------------------------------------------------

def _np(a):
    """A NumPy copy of ``a`` (CuPy arrays, lists of them, host values)."""
    if isinstance(a, (list, tuple)):
        return np.asarray([_np(v) for v in a])
    return np.asarray(a.get() if hasattr(a, "get") else a)


def mismatches(tile, ref) -> list:
    """Names of the quantities where the code's tile and the reference differ (bit for bit)."""
    bad = []

    def same(name, a, b):
        if not np.array_equal(_np(a), _np(b)):
            bad.append(name)

    same("visible weights", tile.get_weights(), ref.weights())
    if isinstance(ref, MixedPrecisionReference):
        pairs = [(tile.sub[0], ref.tile)]
        same("chi", tile.state["chi"], ref.chi)
        same("host", tile._host_state(), [ref.row, ref.batches])
        same("counters", [tile.counters[k] for k in ("update", "ops")], [ref.samples, ref.ops])
    else:
        pairs = list(zip(tile.sub, ref.tiles))
        st = tile.state
        if ref.buffered:
            same("buffer", st["buffer"], ref.H)
        if ref.chopped:
            same("c_in", st["c_in"], ref.c_in)
            same("c_out", st["c_out"], ref.c_out)
            same("auto-scale maxima", [st["m_x"], st["m_d"]], [ref.m_x, ref.m_d])
        if ref.dynamic:
            same("running mean", st["mean"], ref.mean)
            same("past mean", st["past_mean"], ref.past)
            same("switched", st["switched"], ref.switched)
        same("vector updates", tile.vec, ref.vec)
        same("read pointers", tile.slices, ref.slices)
        if ref.buffered:
            same("sweeps", tile.sweeps, ref.sweeps)
        same("counters", [tile.counters[k] for k in ("update", "ops")], [ref.samples, ref.ops])
    for k, (t, r) in enumerate(pairs):
        same(f"sub-tile {k} weights", t.get_weights(), r.get_weights())
        for name, v in r.hidden_parameters().items():
            same(f"sub-tile {k} {name}", t.hidden_parameters()[name], v)
        same(f"sub-tile {k} counters", [t.counters[c] for c in ("update", "forward", "backward", "ops")],
             [r.counters[c] for c in ("update", "forward", "backward", "ops")])
    return bad


def inputs(seed: int, batch: int, in_size: int, out_size: int, d_scale: float = 0.3, dyadic: bool = False):
    """Test inputs ``(x, d)``; ``dyadic``: multiples of 1/8 (x) and 1/16 (d), whose products and batch sums
    are exact in float32 in any order."""
    x = rng.normal_array(rng.seed_key(seed, 1), 0, (batch, in_size))
    d = rng.normal_array(rng.seed_key(seed, 2), 0, (batch, out_size)) * F32(d_scale)
    if dyadic:
        x = np.clip(np.rint(x * 8), -16, 16).astype(F32) / F32(8)
        d = np.clip(np.rint(d * 16), -16, 16).astype(F32) / F32(16)
    return x, d


def run_pair(config: TileConfig, out_size: int, in_size: int, batches, *, seed: int = 3, lr: float = 0.1,
             fused: bool = True, dyadic: bool = False, d_scale: float = 0.3, check_each: bool = True):
    """Run the code's tile and the reference side by side over ``batches`` (a list of batch sizes); returns
    ``(tile, ref, fused_batches)``; asserts equality after every batch (or at the end)."""
    tile = make_tile(out_size, in_size, config, seed=seed)
    tile.fused = fused
    ref = reference(out_size, in_size, config, seed)
    fused_batches = 0
    for step, batch in enumerate(batches):
        x, d = inputs(100 + step, batch, in_size, out_size, d_scale, dyadic)
        if hasattr(tile, "_fused_ok"):
            fused_batches += bool(tile._fused_ok(batch, tile._period(0, batch)))
        tile.update(x, d, lr)
        ref.update(x, d, lr)
        if check_each or step == len(batches) - 1:
            bad = mismatches(tile, ref)
            assert not bad, f"after batch {step}: code and reference differ in {bad}"
    return tile, ref, fused_batches


def run_reference(config: TileConfig, out_size: int, in_size: int, batches, *, seed: int = 3, lr: float = 0.1,
                  dyadic: bool = False, d_scale: float = 0.3):
    ref = reference(out_size, in_size, config, seed)
    for step, batch in enumerate(batches):
        x, d = inputs(100 + step, batch, in_size, out_size, d_scale, dyadic)
        ref.update(x, d, lr)
    return ref


# ---- scenarios -----------------------------------------------------------------------------------------

def quiet_pair():
    """A: a noisy constant-step device; C: a soft-bounds device (different granularities)."""
    a = D.ConstantStepDevice(dw_min=0.01, w_max=1.0, w_min=-1.0, dw_min_std=0.3)
    c = D.SoftBoundsDevice(dw_min=0.02, w_max=1.0, w_min=-1.0)
    return a, c


NOISY_IO = IOParameters(out_noise=0.02, w_noise=0.003, w_noise_type="additive_constant", out_res=1 / 254,
                        noise_management="none", bound_management="none")
SB = D.SoftBoundsReferenceDevice(dw_min=0.01, w_max=1.0, w_min=-1.0)


def tt(**kw):
    return TileConfig(device=TransferCompound(unit_cell_devices=quiet_pair(), transfer_forward=NOISY_IO, **kw),
                      update=UpdateParameters(desired_bl=10))


def ttv2(**kw):
    kw = {"transfer_forward": NOISY_IO, "units_in_mbatch": False, **kw}
    return TileConfig(device=BufferedTransferCompound(unit_cell_devices=quiet_pair(), **kw),
                      update=UpdateParameters(desired_bl=10))


def chopped(**kw):
    kw = {"transfer_forward": NOISY_IO, "in_chop_prob": 0.5, "fast_lr": 0.02, **kw}
    return TileConfig(device=ChoppedTransferCompound(unit_cell_devices=quiet_pair(), **kw),
                      update=UpdateParameters(desired_bl=10))


def agad(**kw):
    kw = {"transfer_forward": NOISY_IO, "in_chop_prob": 0.5, "fast_lr": 0.02, **kw}
    return TileConfig(device=DynamicTransferCompound(unit_cell_devices=quiet_pair(), **kw),
                      update=UpdateParameters(desired_bl=10))


def built(algorithm, device="soft-bounds-reference", **kw):
    cfg = build_config(algorithm, device)
    return cfg.replace(device=cfg.device.replace(**kw)) if kw else cfg


def mp(**kw):
    return TileConfig(device=MixedPrecisionCompound(device=quiet_pair()[0], **kw),
                      update=UpdateParameters(desired_bl=10))


EIGHTS = [8] * 6
#: name -> (config, out_size, in_size, batch sizes, lr, batches expected to take the fused path)
SCENARIOS = {
    # TTv1 (never fused: the fused path is for the buffered family)
    "ttv1 build_config": (built("tiki-taka", transfer_every=0.25), 5, 7, EIGHTS, 0.1, 0),
    "ttv1 vector updates, 2 reads": (tt(units_in_mbatch=False, transfer_every=3, n_reads_per_transfer=2), 5, 7,
                                     [8, 5, 8], 0.1, 0),
    "ttv1 rows, 3 reads": (tt(transfer_columns=False, units_in_mbatch=False, n_reads_per_transfer=3,
                              transfer_lr=2.0, gamma=0.4), 6, 5, EIGHTS, 0.1, 0),
    "ttv1 random selection, reset": (tt(units_in_mbatch=False, random_selection=True, with_reset_prob=0.5,
                                        n_reads_per_transfer=2, transfer_every=2), 5, 7, EIGHTS, 0.1, 0),
    "ttv1 chain of 3": (TileConfig(device=TransferCompound(
        unit_cell_devices=quiet_pair() + (quiet_pair()[1],), transfer_forward=NOISY_IO, units_in_mbatch=True,
        transfer_every=0.25, gamma=0.5, transfer_lr_vec=(1.0, 3.0, 1.0), fast_lr=0.5)), 4, 5, EIGHTS, 0.1, 0),
    "ttv1 chain of 3, rows": (TileConfig(device=TransferCompound(
        unit_cell_devices=quiet_pair() + (quiet_pair()[1],), transfer_forward=NOISY_IO, units_in_mbatch=True,
        transfer_every=0.5, n_reads_per_transfer=3, transfer_columns=False, gamma=0.5)), 4, 6, EIGHTS, 0.1, 0),
    "ttv1 fast and transfer lr": (tt(fast_lr=0.05, scale_fast_lr=False, scale_transfer_lr=False, transfer_lr=0.3,
                                     gamma_vec=(0.25, 0.75), units_in_mbatch=False), 5, 7, EIGHTS, 0.1, 0),
    # TTv2 (the BufferedTransferCompound class)
    "ttv2 forget": (ttv2(momentum=0.3, thres_scale=0.7, gamma=0.2), 5, 9, EIGHTS, 0.1, 6),
    "ttv2 keep, BL 3": (ttv2(forget_buffer=False, momentum=0.2, transfer_update=UpdateParameters(desired_bl=3),
                             step=2.0, transfer_every=2), 5, 9, EIGHTS, 0.1, 6),
    "ttv2 mini-batch units": (ttv2(units_in_mbatch=True, transfer_every=0.25, transfer_lr=3.0), 5, 9, EIGHTS,
                              0.1, 6),
    "ttv2 uneven batches": (ttv2(transfer_every=2, forget_buffer=False), 5, 9, [8, 5, 3, 8, 6], 0.1, 3),
    "ttv2 build_config": (built("ttv2"), 9, 21, EIGHTS, 0.1, 6),
    "ttv2 build_config reram": (built("ttv2", "reram-sb"), 5, 9, EIGHTS, 0.1, 6),
    # c-TTv2
    "c-ttv2 build_config, in-batch flips": (built("c-ttv2", in_chop_prob=0.5), 9, 21, EIGHTS, 0.1, 6),
    "c-ttv2 regular flips, keep": (chopped(in_chop_random=False, forget_buffer=False, momentum=0.25), 5, 9,
                                   EIGHTS, 0.1, 6),
    "c-ttv2 out choppers": (chopped(out_chop_prob=0.5), 5, 9, EIGHTS, 0.1, 0),
    "c-ttv2 auto scale, granularity": (chopped(auto_scale=True, fast_lr=0.3, auto_momentum=0.6,
                                               auto_granularity=20.0, buffer_granularity=0.7, transfer_every=2),
                                       5, 9, EIGHTS, 0.1, 6),
    # (transfer_lr 0.03: buffer increments ~0.3, so the lr_scale is visible rather than saturated)
    "c-ttv2 correct gradient magnitudes": (chopped(correct_gradient_magnitudes=True, fast_lr=0.2,
                                                   scale_fast_lr=True, transfer_lr=0.03), 5, 9, EIGHTS, 0.1, 6),
    "c-ttv2 correct gradient magnitudes, auto scale": (chopped(correct_gradient_magnitudes=True, auto_scale=True,
                                                               fast_lr=0.3, transfer_lr=0.03), 5, 9, EIGHTS, 0.1, 6),
    "c-ttv2 no buffer": (chopped(no_buffer=True, transfer_lr=1.0), 5, 9, EIGHTS, 0.1, 6),
    "c-ttv2 automatic period": (chopped(transfer_every=-0.02), 5, 9, EIGHTS, 0.1, 6),
    # (a batch longer than the sweep: the fused path's in-batch chopper flips count samples, not columns)
    "c-ttv2 batch above the line count": (chopped(in_chop_prob=0.5, transfer_every=4), 4, 5, [16] * 4, 0.1, 4),
    "c-ttv2 rows": (chopped(transfer_columns=False, out_chop_prob=0.3), 6, 5, EIGHTS, 0.1, 0),
    "c-ttv2 gamma": (chopped(gamma=0.3, units_in_mbatch=True, transfer_every=0.5, transfer_lr=4.0), 5, 9, EIGHTS,
                     0.1, 6),
    # AGAD
    "agad build_config, in-batch flips": (built("agad", in_chop_prob=0.5), 9, 21, [8] * 9, 0.1, 9),
    "agad keep, buffer cap": (agad(forget_buffer=False, momentum=0.2, buffer_cap=0.5, tail_weightening=0.7,
                                   transfer_update=UpdateParameters(desired_bl=2)), 5, 8, [8] * 5, 0.1, 5),
    "agad random flips": (agad(in_chop_random=True, in_chop_prob=0.3), 5, 8, [8] * 7, 0.1, 7),
    "agad correct accumulation": (agad(experimental_correct_accumulation=True, auto_scale=True, fast_lr=0.2), 5, 8,
                                  [8] * 5, 0.1, 0),
    "agad rows": (agad(transfer_columns=False, tail_weightening=1.5), 4, 5, [8] * 5, 0.1, 0),
    # mixed precision (dyadic inputs: chi is exact in any summation order)
    "mp build_config": (built("mp"), 5, 7, [8] * 4, 0.125, None),
    "mp bins, stochastic rounding": (mp(n_x_bins=8, n_d_bins=4), 5, 7, [8] * 4, 0.125, None),
    "mp rows, random row, every 2": (mp(n_x_bins=4, n_d_bins=8, stoc_round_d=False, n_rows_per_transfer=2,
                                        random_row=True, transfer_every=2, granularity=0.015, transfer_lr=0.5), 5, 7,
                                     [8] * 6, 0.125, None),
}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "sequential"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_code_equals_the_sequential_reference(name, fused):
    # the fused path (buffered family, when a batch's transfers allow it) and the sequential path of the code
    # both equal the per-sample reference bit for bit: weights, sub-tiles, buffers, choppers, counters
    config, out_size, in_size, batches, lr, n_fused = SCENARIOS[name]
    _, ref, fused_batches = run_pair(config, out_size, in_size, batches, lr=lr, fused=fused,
                                     dyadic=name.startswith("mp"))
    if fused and n_fused is not None:
        assert fused_batches == n_fused, f"{fused_batches} of {len(batches)} batches took the fused path"
    # the scenario does something: A moved and C was written
    obs = ref.observe()
    if "W1" in obs:
        assert np.abs(obs["W0"]).max() > 0 and np.abs(obs["W1"]).max() > 0
    else:
        assert np.abs(obs["W"]).max() > 0


def test_reference_ttv1_with_reset_and_perfect_io_is_sgd_on_c():
    # sanity of the reference itself: reading every column after every sample, writing it with floating-point
    # updates and resetting A makes C follow SGD with lr * transfer_lr
    fp = UpdateParameters(pulse_type="none")
    dev = D.ConstantStepDevice(w_max=100.0, w_min=-100.0, reset_std=0.0)
    cfg = TileConfig(device=TransferCompound(unit_cell_devices=(dev, dev), units_in_mbatch=False,
                                             n_reads_per_transfer=4, with_reset_prob=1.0, transfer_lr=0.5,
                                             scale_transfer_lr=False, transfer_forward=IOParameters(is_perfect=True),
                                             transfer_update=fp), update=fp)
    ref = reference(3, 4, cfg, seed=1)
    x, d = inputs(1, 5, 4, 3)
    ref.update(x, d, 0.1)
    np.testing.assert_allclose(ref.weights(), -0.1 * 0.5 * d.T @ x, rtol=1e-5, atol=1e-7)


def test_reference_agad_mean_reference_cancels_a_constant_offset():
    # sanity of the reference: a constant A (no pulses) is read as v = 0.4 every time; the first chopper period
    # references 0 (H grows by 0.4 per read), after the regular flip the reference is the running mean (beta =
    # 1: the last read), so H stops growing
    dev = D.ConstantStepDevice(w_max=100.0, w_min=-100.0)
    cfg = TileConfig(device=DynamicTransferCompound(unit_cell_devices=(dev, dev), in_chop_prob=1.0,
                                                    tail_weightening=2.0,
                                                    transfer_forward=IOParameters(is_perfect=True)),
                     update=UpdateParameters(pulse_type="none"))
    ref = reference(2, 3, cfg, seed=1)
    ref.tiles[0].set_weights(np.full((2, 3), 0.4, F32))
    for _ in range(4):  # 4 sweeps of the 3 columns; lr_scale = 1e-3 / dw_A = 1
        ref.update(np.zeros((3, 3), F32), np.zeros((3, 2), F32), 1e-3)
    assert ref.sweeps == 4 and np.all(ref.past == F32(0.4))
    assert np.all(ref.H == F32(0.4) + F32(0.4)) and ref.weights().max() == 0
