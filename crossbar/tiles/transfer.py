"""The Tiki-Taka family and mixed precision: compound tiles built from single-device tiles, following the
papers below and the behaviour of IBM's aihwkit 1.1 (its Transfer, BufferedTransfer, ChoppedTransfer,
DynamicTransfer and MixedPrecision compounds).

* :class:`TransferCompound` (TTv1, Gokmen & Haensch 2020, "Algorithm for training neural networks on resistive
  device arrays"): the update pulses go only to a fast array A (device 0) at ``lr_A = fast_lr lr``
  (``scale_fast_lr``; else ``fast_lr`` with the sign of ``lr``). Every ``transfer_every`` vector updates (times
  the batch, rounded up, with ``units_in_mbatch``) the next ``n_reads_per_transfer`` columns ``c`` of A are read
  with the transfer IO (noise and bound management off): ``v = read(A, e_c)``; C (device 1) is then pulsed with
  ``x = e_c``, ``d = -v`` at ``lr_t = transfer_lr |lr|`` (``scale_transfer_lr``), so ``E[dC[:, c]] = lr_t v``.
  Rows instead of columns with ``transfer_columns=False``. Visible ``W = sum_k gamma_k W_k``, ``gamma_k =
  gamma^(n-1-k)`` (``gamma = 0``: ``W = C``). Longer chains transfer onward with period ``t_(k+1) = t_k out /
  n_reads``. ``set_weights`` zeroes every device and writes ``W / gamma_last`` to the last; ``reset_columns``
  acts on A only.
* :class:`BufferedTransferCompound` (TTv2, Gokmen 2021, "Enabling training of neural networks on noisy
  hardware"): one column per transfer, accumulated in a digital buffer ``H``: with ``theta = thres_scale dw_C``,
  ``h = H + |lr_t| v``, ``n = clip(trunc(h / theta), +-BL_t)``; where ``n != 0``, ``H = momentum h``
  (``forget_buffer``) or ``h - (1 - momentum) n theta``; C gets ``dC[:, c] = step dw_C n`` (one-pulse writes:
  ``transfer_update`` BL 1, no update management). ``lr_t`` is multiplied by ``gamma_A / gamma_C`` when both are
  > 0. Defaults ``thres_scale = step = 1``, ``momentum = 0.1``.
* :class:`ChoppedTransferCompound` (c-TTv2, Rasch et al. 2023, "Fast and robust analog in-memory deep neural
  network training", Nature Communications 2024): choppers ``c_in`` (per input) and ``c_out`` (per output) flip
  the signs of A's updates, so A stores ``c_ij A`` with ``c_ij = +1`` where they agree, else -1, and device
  offsets average out; ``W = gamma c o A + C``. Buffer in units of ``bg = buffer_granularity dw_A`` (times
  ``auto_granularity / (in |transfer_every|)`` if set): ``h = H + c_ic (|lr_t| / bg) v``; where ``|h| >= 1``,
  ``n = clip(trunc(h), +-BL_t)`` and ``H = momentum h`` or ``h - (1 - momentum) n``. After reading column ``c``,
  ``c_in[c]`` flips with probability ``in_chop_prob`` (or regularly every ``P = max(ceil(1/in_chop_prob), 2)``
  sweeps with ``in_chop_random=False``); after the last column each ``c_out`` flips with ``out_chop_prob``.
  ``auto_scale``: ``lr_A = fast_lr desired_bl dw_A / (m_x m_d)`` with running maxima ``m <- (1 - tau) m + tau
  mean_b max|.|``, ``tau = 1 - auto_momentum``. ``transfer_every < 0``: period ``round(states_A / in
  |transfer_every|)``. Defaults ``in_chop_prob = 0.1`` (random), ``momentum = 0``, ``fast_lr = 1`` (absolute).
* :class:`DynamicTransferCompound` (AGAD, Rasch et al. 2023): as c-TTv2 with regular chopper flips (every ``P``
  sweeps, plus random ones if ``in_chop_random``), but the buffer takes the read relative to a reference:
  ``g = c_ic (v - mu_past)``, where ``mu <- (1 - beta) mu + beta v`` (``beta = min(tail_weightening / P, 1)``) is
  a running mean of the raw reads and ``mu_past`` its value frozen when the column's chopper last flipped. C is
  written only once more than ``P`` sweeps are complete (a warm-up); out choppers never flip. Defaults
  ``tail_weightening = 5``, no buffer cap.
* :class:`MixedPrecisionCompound` (Nandakumar et al. 2020, "Mixed-precision deep learning based on
  computational memory"): a digital float32 accumulator ``chi += lr q(d)^T q(x)`` per batch (``q``: optional
  per-sample quantisation to ``n_bins // 2`` levels of ``max|v|``, stochastically rounded); every
  ``transfer_every`` batches each selected row ``i`` gets ``n = trunc(chi_i / eps)``, ``chi_i -= n eps``, and a
  pulsed update with ``x = n``, ``d = e_i``, ``lr = eps transfer_lr`` (update and BL management forced on), so
  ``E[dW_i] = -eps transfer_lr n``; ``eps = granularity`` or the device's.

Order semantics (both backends): the samples of a batch are applied to A in order; the transfers fall at
exact sample boundaries (a transfer that is due after sample b reads A after samples <= b) and are applied in
order. A transfer read is :func:`crossbar.physics.io.read_vectors` of the stored column with the transfer IO
(noise and bound management off); its noise is named by the read tile's forward counter, and each written
vector is one sample of the receiving tile's update counter. The fast learning-rate auto-scaling of the
chopped family updates its running input/gradient maxima once per batch (as the incumbent's GPU engine).
"""

from __future__ import annotations

import math

import numpy as np

from ..physics import rng
from ..backend import capturing, to_backend, to_numpy
from ..config import DeviceConfig, IOParameters, PulseType, TileConfig, UpdateParameters, config, param
from ..physics.devices import PulsedDevice, SoftBoundsDevice
from ..physics.io import read_vectors
from .tile import TILE_CLASSES, AnalogTile, make_tile, update_inputs  # noqa: F401 (make_tile re-exported)

F32 = np.float32


def _no_nm_bm(io: IOParameters) -> IOParameters:
    return io.replace(noise_management="none", bound_management="none")


@config
class TransferCompound(DeviceConfig):
    """Tiki-Taka v1: a fast array A (device 0) and slower arrays C (device 1, also used for any later one)."""

    unit_cell_devices: tuple = param((SoftBoundsDevice(), SoftBoundsDevice()), "devices: A, then C (and more)")
    gamma: float = param(0.0, "weight of A in the visible weight (gamma_k = gamma^(n-1-k))", lo=0)
    gamma_vec: tuple = param((), "explicit visible-weight factors per device (overrides gamma)")
    transfer_every: float = param(1.0, "transfer period of A in vector updates (or mini-batches with "
                                  "units_in_mbatch); 0 = never", lo=0)
    no_self_transfer: bool = param(True, "the last device does not transfer to itself")
    transfer_every_vec: tuple = param((), "explicit periods per device (overrides transfer_every)", lo=0)
    units_in_mbatch: bool = param(True, "periods count mini-batches (True) or vector updates")
    n_reads_per_transfer: int = param(1, "consecutive columns read per transfer", lo=1, integer=True)
    transfer_columns: bool = param(True, "read columns (forward reads); False: rows (backward reads)")
    with_reset_prob: float = param(0.0, "probability to reset a read column of A after the transfer", lo=0,
                                   hi=1)
    random_selection: bool = param(False, "start each transfer at a random column")
    fast_lr: float = param(1.0, "learning rate of A (relative to lr if scale_fast_lr)", lo=0)
    transfer_lr: float = param(1.0, "learning rate of the transfer writes", lo=0)
    transfer_lr_vec: tuple = param((), "explicit transfer learning rates per device", lo=0)
    scale_transfer_lr: bool = param(True, "multiply the transfer learning rate by lr")
    scale_fast_lr: bool = param(True, "multiply fast_lr by lr")
    transfer_forward: IOParameters = param(IOParameters(noise_management="none", bound_management="none"),
                                           "IO of the transfer reads (noise and bound management are off)")
    transfer_update: UpdateParameters = param(UpdateParameters(), "pulsed update of the transfer writes")

    two_devices_only = False

    def validate(self):
        devs = self.unit_cell_devices
        if len(devs) < 2 or not all(isinstance(d, PulsedDevice) for d in devs):
            self._fail("unit_cell_devices", devs, "two or more pulsed device configs")
        if self.two_devices_only and len(devs) != 2:
            self._fail("unit_cell_devices", devs, f"exactly two devices for {type(self).__name__}")
        tf = self.transfer_forward
        if tf.inp_noise > 0 or tf.inp_sto_round or tf.ir_drop > 0 or tf.v_offset_std > 0 or tf.r_series > 0:
            self._fail("transfer_forward", tf, "IO without input noise, stochastic DAC rounding, IR drop or "
                       "voltage offsets (a transfer read drives one line)")
        n = len(devs)
        for name in ("gamma_vec", "transfer_every_vec", "transfer_lr_vec"):
            if getattr(self, name) and len(getattr(self, name)) != n:
                self._fail(name, getattr(self, name), f"empty or {n} values (one per device)")
        if not any(self.gammas()):
            self._fail("gamma_vec", self.gamma_vec, "at least one non-zero weight (else the visible weight is 0)")

    # ---- derived values (module docstring) -------------------------------------------------------
    def gammas(self) -> list:
        n = len(self.unit_cell_devices)
        return list(self.gamma_vec) if self.gamma_vec else [self.gamma ** (n - 1 - k) for k in range(n)]

    def periods(self, out_size: int) -> list:
        """Transfer periods ``t_k`` per device, in the units of ``units_in_mbatch``."""
        if self.transfer_every_vec:
            return list(self.transfer_every_vec)
        n, t = len(self.unit_cell_devices), [self.transfer_every]
        for _ in range(n - 1):
            t.append(t[-1] * out_size / self.n_reads_per_transfer)
        if self.no_self_transfer:
            t[-1] = 0.0
        return t

    def transfer_lrs(self) -> list:
        n = len(self.unit_cell_devices)
        return list(self.transfer_lr_vec) if self.transfer_lr_vec else [self.transfer_lr] * n


@config
class BufferedTransferCompound(TransferCompound):
    """TTv2: a digital buffer H between A and C; C gets one pulse per threshold crossed."""

    thres_scale: float = param(1.0, "buffer threshold in units of C's granularity", lo=0, lo_open=True)
    step: float = param(1.0, "transfer write size in units of C's granularity", lo=0, lo_open=True)
    momentum: float = param(0.1, "fraction of the buffer kept after a write", lo=0, hi=1)
    forget_buffer: bool = param(True, "after a write keep momentum * h (else h - (1 - momentum) n threshold)")
    transfer_update: UpdateParameters = param(UpdateParameters(desired_bl=1, update_bl_management=False,
                                                               update_management=False),
                                              "pulsed update of the transfer writes (one pulse)")

    two_devices_only = True

    def validate(self):
        super().validate()
        # as the incumbent's initDefaults: one line per transfer, in order, no reset
        if self.n_reads_per_transfer != 1 or self.random_selection or self.with_reset_prob > 0:
            self._fail("n_reads_per_transfer", self.n_reads_per_transfer,
                       "1, without random_selection or with_reset_prob, for the buffered family")


@config
class ChoppedTransferCompound(BufferedTransferCompound):
    """c-TTv2: chopped A updates, dimensionless buffer with threshold 1, optional auto-scaled fast lr."""

    in_chop_prob: float = param(0.1, "probability (or frequency) of flipping an input chopper per read",
                                lo=0, hi=1)
    in_chop_random: bool = param(True, "flip input choppers at random (else regularly)")
    out_chop_prob: float = param(0.0, "probability of flipping each output chopper per full sweep", lo=0,
                                 hi=1)
    buffer_granularity: float = param(1.0, "buffer granularity in units of A's granularity", lo=0,
                                      lo_open=True)
    auto_granularity: float = param(0.0, "scale the buffer granularity with the sweep length (0 = off)",
                                    lo=0)
    momentum: float = param(0.0, "fraction of the buffer kept after a write", lo=0, hi=1)
    no_buffer: bool = param(False, "no buffer: every read is written at once (TTv1-like)")
    units_in_mbatch: bool = param(False, "periods count mini-batches (True) or vector updates")
    auto_scale: bool = param(False, "scale the fast lr by the running max|x| max|d|")
    auto_momentum: float = param(0.99, "momentum of those running maxima (per batch)", lo=0, hi=1,
                                 hi_open=True)
    correct_gradient_magnitudes: bool = param(False, "scale the buffer by C's over A's granularity")
    scale_fast_lr: bool = param(False, "multiply fast_lr by lr")
    transfer_every: float = param(1.0, "transfer period (< 0: automatic from A's number of states)")

    def validate(self):
        super().validate()
        if self.auto_granularity > 0 and self.transfer_every == 0:
            self._fail("transfer_every", self.transfer_every, "non-zero with auto_granularity (it scales the "
                       "buffer granularity by the sweep length)")

    def chop_period(self) -> int:
        """Sweeps per regular input-chopper period (at least 2)."""
        return max(math.ceil(1 / self.in_chop_prob), 2)


@config
class DynamicTransferCompound(ChoppedTransferCompound):
    """AGAD: chopped transfers referenced to a running mean of the reads; a warm-up writes nothing."""

    in_chop_prob: float = param(0.1, "chopper flip frequency (regular: every 1/in_chop_prob sweeps)", lo=0,
                                lo_open=True, hi=1)
    in_chop_random: bool = param(False, "flip input choppers at random (else regularly)")
    tail_weightening: float = param(5.0, "weight of the newest read in the running mean (x 1/period)", lo=0)
    buffer_cap: float = param(0.0, "cap on |H| in units of the transfer BL (0 = none)", lo=0)
    experimental_correct_accumulation: bool = param(False, "divide the buffer increment by the period count")

    def mean_weight(self) -> np.float32:
        """beta: the weight of the newest read in the running mean of the reads."""
        return F32(min(self.tail_weightening / self.chop_period(), 1.0))

    def validate(self):
        super().validate()
        # AGAD never flips output choppers and always accumulates in its buffer (the incumbent's AGAD transfer)
        for name, value in (("out_chop_prob", 0.0), ("no_buffer", False)):
            if getattr(self, name) != value:
                self._fail(name, getattr(self, name), f"{value} for DynamicTransferCompound (AGAD)")


@config
class MixedPrecisionCompound(DeviceConfig):
    """Mixed precision: a digital accumulator chi of the (quantised) gradient, written row-wise in pulses."""

    device: PulsedDevice = param(SoftBoundsDevice(), "the analog device")
    transfer_every: int = param(1, "mini-batches between transfers", lo=1, integer=True)
    n_rows_per_transfer: int = param(-1, "rows written per transfer (-1 = all)", integer=True)
    random_row: bool = param(False, "start the row sweep at a random row")
    granularity: float = param(0.0, "write threshold epsilon (0 = the device granularity)", lo=0)
    transfer_lr: float = param(1.0, "scale of the written pulses", lo=0)
    n_x_bins: int = param(0, "quantisation bins of x (0 = none)", lo=0, integer=True)
    n_d_bins: int = param(0, "quantisation bins of d (0 = none)", lo=0, integer=True)
    stoc_round_x: bool = param(True, "stochastic rounding of x")
    stoc_round_d: bool = param(True, "stochastic rounding of d")

    def validate(self):
        if not isinstance(self.device, PulsedDevice):
            self._fail("device", self.device, "a pulsed device config")
        for name in ("n_x_bins", "n_d_bins"):
            if getattr(self, name) == 1:  # one bin has no width: rint(v / 0)
                self._fail(name, 1, "0 (no quantisation) or at least 2 bins")


def ttv2_buffer_step(h, v, lr_t: float, theta, bl_t, cc: BufferedTransferCompound, xp):
    """TTv2's buffer rule (Gokmen 2021), elementwise on any shape: add the read
    ``v`` scaled by ``|lr_t|`` to the buffer ``h``, write ``n = clip(trunc(h / theta), +-BL)`` pulses, and keep
    ``momentum * h`` (``forget_buffer``) or ``h - (1 - momentum) n theta`` where a write happened.
    Returns ``(new buffer, n)``."""
    h = h + F32(abs(lr_t)) * v
    n = xp.clip(xp.trunc(h / theta), -bl_t, bl_t)
    kept = h * F32(cc.momentum) if cc.forget_buffer else h - F32(1 - cc.momentum) * n * theta
    return xp.where(n != 0, kept, h), n


def agad_deviation(v, mean, past, switched, beta, xp):
    """AGAD's reference (Rasch et al. 2023): the read ``v`` minus the running mean of the reads as it was when
    the chopper last switched. ``past`` takes the current ``mean`` where ``switched``; the mean then moves by
    ``beta`` towards ``v``. Returns ``(v - past, new mean, past)``."""
    past = xp.where(switched, mean, past)
    return v - past, (F32(1) - beta) * mean + beta * v, past


def chopped_accumulate(h, v, sign, scale, cc: ChoppedTransferCompound, xp, agad=None):
    """The chopped family's buffer before its threshold (c-TTv2, AGAD), elementwise on any shape: ``h + c scale v``
    (``h`` taken as 0 with ``no_buffer``) for the read ``v`` with chopper signs ``c``; with ``agad = (mean, past,
    switched)``, ``h + c scale (v - past)`` after AGAD's reference update (:func:`agad_deviation`). Returns
    ``(new h, (mean, past))``, the second None without ``agad``. Used by the sequential and the fused path."""
    if agad is None:
        return (F32(0) if cc.no_buffer else h) + sign * scale * v, None
    g, mean, past = agad_deviation(v, *agad, cc.mean_weight(), xp)
    return h + g * sign * scale, (mean, past)  # AGAD always accumulates (validated)


def _sub_seed(seed: int, k: int) -> int:
    key = rng.seed_key(seed, 1000 + k)
    return int(key[0]) | (int(key[1]) << 32)


class _CompoundTile(AnalogTile):
    """Common machinery: sub-tiles, the visible weight, and delegation of the device operations."""

    def _init_compound(self, devices, updates, seed):
        tf = _no_nm_bm(getattr(self.config.device, "transfer_forward", IOParameters(
            noise_management="none", bound_management="none")))
        self.sub = [make_tile(self.out_size, self.in_size, TileConfig(device=dev, forward=tf, backward=tf, update=upd),
                              seed=_sub_seed(seed, k)) for k, (dev, upd) in enumerate(zip(devices, updates))]
        for t in self.sub:
            t.check_finite = False  # the compound validates its inputs once
        self.transfer_io = tf
        self.state = {}  # compound state: plain arrays (checkpointed)

    # the visible weight is derived from the sub-tiles
    def _refresh(self) -> None:
        raise NotImplementedError

    def get_weights(self) -> np.ndarray:
        return to_numpy(self.weights).copy()

    def hidden_parameters(self) -> dict:
        out = {}
        for k, t in enumerate(self.sub):
            out.update({f"{name}_{k}": v for name, v in t.hidden_parameters().items()})
            out[f"hidden_weights_{k}"] = t.get_weights()
        for name, v in self.state.items():
            out[name] = to_numpy(v).copy()
        return out

    def set_hidden_parameters(self, params: dict) -> None:
        for k, t in enumerate(self.sub):
            t.set_hidden_parameters({name[:-len(f"_{k}")]: v for name, v in params.items()
                                     if name.endswith(f"_{k}") and not name.startswith("hidden_weights")})
        self._refresh()

    def post_update_step(self) -> None:
        for t in self.sub:
            t.post_update_step()
        self._refresh()

    def _each(self, op: str, *args) -> None:
        for t in self.sub:
            getattr(t, op)(*args)
        self._refresh()

    def decay(self, alpha: float = 1.0) -> None:
        self._each("decay", alpha)

    def diffuse(self) -> None:
        self._each("diffuse")

    def drift(self, dt: float) -> None:
        self._each("drift", dt)

    def clip_weights(self, clip: float = -1.0) -> None:
        self._each("clip_weights", clip)

    def reset_columns(self, start: int = 0, n: int = 1, prob: float = 1.0) -> None:
        self.sub[0].reset_columns(start, n, prob)  # only the fast device A (as in Tiki-Taka)
        self._refresh()

    def _to(self, backend: str) -> None:
        for t in self.sub:
            t.to(backend)
        self.state = {k: to_backend(v, backend) for k, v in self.state.items()}
        super()._to(backend)
        if hasattr(self, "ptr"):
            self.ptr = to_backend(self.ptr, backend)
        self._refresh()

    def state_dict(self) -> dict:
        out = super().state_dict()
        out["compound_host"] = self._host_state()
        for k, t in enumerate(self.sub):
            out.update({f"sub{k}/{name}": v for name, v in t.state_dict().items()})
        out.update({f"compound/{name}": to_numpy(v).copy() for name, v in self.state.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        for k, t in enumerate(self.sub):
            prefix = f"sub{k}/"
            t.load_state_dict({name[len(prefix):]: v for name, v in state.items() if name.startswith(prefix)})
        own = {name: v for name, v in state.items() if not name.startswith(("sub", "compound"))}
        self._set_host_state(np.asarray(state["compound_host"], np.int64))
        for name in self.state:
            if f"compound/{name}" not in state:
                raise ValueError(f"{self!r}: checkpoint lacks compound/{name}")
            self.state[name] = to_backend(np.array(state[f"compound/{name}"]), self.backend)
        super().load_state_dict(own)
        self._refresh()

    def set_weights(self, weights) -> None:
        raise NotImplementedError

    def _one_hot(self, index, size: int):
        """``(n, size)`` float32 rows with a single 1 at ``index[t]`` (indices may live on the device)."""
        xp = self.xp
        return (xp.arange(size)[None, :] == xp.asarray(index)[:, None]).astype(xp.float32)


class TransferTile(_CompoundTile):
    """A compound tile of the Tiki-Taka family (:class:`TransferCompound` and its subclasses).

    ``sub[0]`` is A, ``sub[1]`` is C (and more for longer TTv1 chains). The visible weight is
    ``sum_k gamma_k W_k`` (chopped family: ``gamma c o A + C`` with the chopper signs ``c``).
    """

    def __init__(self, out_size, in_size, config: TileConfig, *, seed: int = 0, backend: str = "numpy"):
        super().__init__(out_size, in_size, config, seed=seed)
        cc = self.cc = config.device
        devs = list(cc.unit_cell_devices)
        n = len(devs)
        self._init_compound([devs[0]] + [devs[1]] * (n - 1), [config.update] + [cc.transfer_update] * (n - 1),
                            seed)
        self.gam = cc.gammas()
        self.columns = cc.transfer_columns
        self.size = in_size if self.columns else out_size  # lines read per sweep
        self.other = out_size if self.columns else in_size  # length of a read
        self._lr_a_last = None  # A's last pulse learning rate (correct_gradient_magnitudes)
        self._lr_a_scale = None  # and its device-side auto-scale factor 1 / (m_x m_d), if any
        self.dynamic = isinstance(cc, DynamicTransferCompound)
        self.buffered = isinstance(cc, BufferedTransferCompound)
        # progress: vector updates done (host), and [completed sweeps of A, next line of each device] (on the tile's
        # backend: the fused path reads and advances it on the device, so a captured graph replays correctly)
        self.vec, self.ptr = 0, np.zeros(n + 1, np.int64)
        self.state = self._initial_state()
        self._refresh()
        if backend != "numpy":
            self.to(backend)

    def _initial_state(self) -> dict:
        """The compound's arrays at construction (NumPy): TTv2's buffer."""
        return {"buffer": np.zeros(self.shape, F32)} if self.buffered else {}

    def _host_state(self) -> np.ndarray:
        return np.array([self.vec, *to_numpy(self.ptr)], np.int64)

    def _set_host_state(self, values) -> None:
        self.vec = int(values[0])
        self.ptr[...] = to_backend(np.asarray(values[1:], np.int64), self.backend)  # in place: graphs hold it

    @property
    def sweeps(self) -> int:
        """Completed sweeps of A's reads."""
        return int(self.ptr[0])

    @sweeps.setter
    def sweeps(self, value: int) -> None:
        self.ptr[0] = value

    @property
    def slices(self) -> list:
        """The next line each device reads."""
        return [int(v) for v in to_numpy(self.ptr[1:])]

    def _slice(self, k: int) -> int:
        return int(self.ptr[1 + k])

    # ---- visible weight -------------------------------------------------------------------------
    def _refresh(self) -> None:
        w = None  # the config guarantees a non-zero gamma
        for k, (g, t) in enumerate(zip(self.gam, self.sub)):
            if g == 0:
                continue
            term = self._stored_weights(k)
            term = term if g == 1 else F32(g) * term
            w = term if w is None else w + term
        if type(self.weights) is type(w):
            self.weights[...] = w  # in place: a captured CUDA graph holds the address of the visible weights
        else:
            self.weights = w

    def _stored_weights(self, k: int):
        """Device ``k``'s contribution to the visible weight before its gamma: its weights."""
        return self.sub[k].weights

    def set_weights(self, weights) -> None:
        """Zero every device, then ``W_last = W / gamma_last``; the buffers are cleared."""
        w = np.asarray(to_numpy(weights), dtype=F32)
        if w.shape != self.shape:
            raise ValueError(f"{self!r}: weights must have shape {self.shape}, got {w.shape}")
        zero = np.zeros(self.shape, F32)
        for t in self.sub[:-1]:
            t.set_weights(zero)
        self.sub[-1].set_weights(w / F32(self.gam[-1]) if self.gam[-1] not in (0, 1) else w)
        for name in ("buffer", "mean", "past_mean"):
            if name in self.state:
                self.state[name][...] = 0
        self._refresh()

    # ---- learning rates ---------------------------------------------------------------------------
    def _fast_lr(self, lr: float, x, d):
        """``(lr_A, d_scale)``: A's pulse learning rate and a device-side factor on d (auto scaling)."""
        cc = self.cc
        if cc.fast_lr > 0:
            return (cc.fast_lr * lr if cc.scale_fast_lr else math.copysign(cc.fast_lr, lr)), None
        return lr, None

    def _period(self, k: int, batch: int) -> int:
        # t_(k+1) = t_k * (length of a read) / n_reads: out_size for columns, in_size for rows (the incumbent's
        # out_size of the transfer, which is swapped for rows)
        t = self.cc.periods(self.other)[k]
        if t <= 0:
            return 0
        return int(math.ceil(t * batch)) if self.cc.units_in_mbatch else int(round(t))

    # ---- update -----------------------------------------------------------------------------------
    def update(self, x, d, lr: float):
        """Pulsed SGD on A, then the transfers that fall inside this batch, in order (module docstring)."""
        x, d, lr = update_inputs(self, x, d, lr)
        batch = x.shape[0]
        self._advance("update", batch)
        lr_a, scale = self._fast_lr(lr, x, d)  # the auto-scale maxima do not depend on the chopper signs
        self._lr_a_last = lr_a
        self._lr_a_scale = scale  # auto_scale: A's pulse-count lr is lr_a * scale (the factor is applied to d)
        if scale is not None:
            d = d * scale
        vec = self.vec
        periods = [self._period(k, batch) for k in range(len(self.sub))]
        if self._fused_ok(batch, periods[0]):
            self._update_fused(x, d, lr, lr_a, periods[0])
        else:
            if capturing(self.backend):
                # the sequential path bakes host-side column indices into the kernels: a replay would be wrong
                raise RuntimeError(f"{self!r}: this transfer schedule cannot be captured in a CUDA graph")
            t0 = periods[0]
            # transfers of A fall after sample b (0-based) where (vec + b + 1) % t0 == 0
            bounds = [] if t0 == 0 else list(range((t0 - vec % t0) - 1, batch, t0))
            start = 0
            for end in bounds + ([batch - 1] if not bounds or bounds[-1] < batch - 1 else []):
                self._update_a(x[start:end + 1], d[start:end + 1], lr_a)
                start = end + 1
                if end in bounds:
                    self._transfer(0, lr)
        # higher-order transfers of longer chains: at batch ends only (their periods are whole batches)
        for k in range(1, len(self.sub) - 1):
            tk = periods[k]
            if tk and (vec + batch) // tk > vec // tk:
                # exactly one transfer, due at the batch end (several would have to interleave with A's transfers)
                if (vec + batch) % tk or (vec + batch) // tk - vec // tk > 1:
                    raise NotImplementedError(f"{self!r}: transfer period of device {k} ({tk}) must be a multiple "
                                              f"of the batch size ({batch})")
                self._transfer(k, lr)
        self.vec = vec + batch
        self._refresh()

    def _update_a(self, x, d, lr_a, snap=None):
        """Pulsed update of A."""
        self.sub[0].update(x, d, lr_a, _snap=snap)

    # ---- the fused GPU path ----------------------------------------------------------------------
    #: use the fused path where it applies (False: always the sequential reference path)
    fused = True

    def _fused_ok(self, batch: int, t0: int) -> bool:
        """Whether this batch's transfers can run fused (one A update taking column snapshots, then all reads,
        buffer steps and C writes at once): buffered family, columns, each column read at most once.
        Both backends fuse; the sequential path is the reference it is tested against."""
        cc = self.cc
        return (self.fused and self.buffered and self.columns and len(self.sub) == 2
                and t0 >= 1 and batch % t0 == 0 and self.vec % t0 == 0 and batch // t0 <= self.size
                and getattr(cc, "out_chop_prob", 0.0) == 0
                and not getattr(cc, "experimental_correct_accumulation", False)
                and self.sub[0].pulsed and self.sub[0].config.update.pulse_type not in (PulseType.NONE,
                                                                                         PulseType.NONE_WITH_DEVICE))

    def _update_fused(self, x, d, lr: float, lr_a: float, t0: int) -> None:
        """The batch's A update and its ``batch / t0`` transfers (columns ``slice, slice + 1, ...`` after samples
        ``t0 - 1, 2 t0 - 1, ...``), equal to the sequential path: the A kernel snapshots each column when its
        transfer is due and inverts the signs of its later coincidences if its chopper flips; the reads,
        buffer steps and C writes of the batch then run together (no column repeats, so they commute)."""
        cc, xp, st = self.cc, self.xp, self.state
        batch, count, size = x.shape[0], x.shape[0] // t0, self.size
        # the read pointer and the sweep count are read from the device (a captured graph replays correctly)
        sweeps, start = self.ptr[0], self.ptr[1]
        t = xp.arange(count)
        lines = (start + t) % size
        sweep_t = sweeps + (start + t) // size  # completed sweeps when transfer t happens
        bound = t * t0 + (t0 - 1)
        flip = self._fused_flips(lines, sweep_t)
        snap_at = xp.full(self.in_size, -1, xp.int32)
        snap_at[lines] = bound.astype(xp.int32)
        snap_slot = xp.zeros(self.in_size, xp.int32)
        snap_slot[lines] = t.astype(xp.int32)
        flip_after = xp.full(self.in_size, batch, xp.int32)
        flip_after[lines] = xp.where(flip, bound, batch).astype(xp.int32)
        snaps = xp.empty((count, self.out_size), xp.float32)
        self._update_a(x, d, lr_a, snap=(snap_at, snap_slot, snaps, flip_after))
        reads = self._read_stored(0, snaps)  # (count, out)
        dw_c = cc.unit_cell_devices[1].granularity()
        lr_t = cc.transfer_lrs()[0] * (abs(lr) if cc.scale_transfer_lr else 1.0)
        if self.gam[0] > 0 and self.gam[1] > 0:
            lr_t *= self.gam[0] / self.gam[1]
        bl_t = F32(cc.transfer_update.desired_bl)
        cols = xp.take(st["buffer"], lines, axis=1)  # (out, count)
        v = reads.T
        new, write = self._fused_buffer(cols, v, lines, lr_t, bl_t, dw_c, flip, sweep_t)
        st["buffer"][:, lines] = new
        self._write(1, lines, -write.T, F32(cc.step * dw_c))
        self._advance("ops", count)
        self._replay = batch
        self.ptr[0] += (self.ptr[1] + count) // size
        self.ptr[1] = (self.ptr[1] + count) % size

    def _fused_flips(self, lines, sweep_t):
        """Whether the input chopper of each transfer's line flips after its read: never without choppers."""
        return self.xp.zeros(lines.shape[0], bool)

    def _fused_buffer(self, cols, v, lines, lr_t: float, bl_t, dw_c: float, flip, sweep_t):
        """The buffer step of a batch's transfers (columns ``lines``, reads ``v`` ``(out, count)``): TTv2's rule.
        Returns ``(new buffer columns, pulses to write)``."""
        return ttv2_buffer_step(cols, v, lr_t, F32(self.cc.thres_scale * dw_c), bl_t, self.cc, self.xp)

    def replayed(self, count: int) -> None:
        """``count`` captured steps were replayed (crossbar/cuda/graph.py): the host-side pointers follow."""
        self.vec += count * self._replay

    def _lines(self, k: int, n: int):
        """Device indices of the next ``n`` lines of device ``k`` to read, advancing its slice pointer."""
        start = self._slice(k)
        if self.cc.random_selection:
            u = rng.uniform(self.key, rng.Stream.TRANSFER, k, self.counters["ops"], 0)[0]
            start = int(float(u) * self.size) % self.size
        self.ptr[1 + k] = (start + n) % self.size
        # computed on the device from the host start (no host-to-device copy)
        return (start + self.xp.arange(n)) % self.size

    def _read(self, k: int, lines):
        """Noisy transfer reads of ``lines`` (device indices) of device ``k``: float32 ``(n, other)``."""
        t = self.sub[k]
        stored = self.xp.take(t.weights, lines, axis=1).T if self.columns else self.xp.take(t.weights, lines, axis=0)
        return self._read_stored(k, stored)

    def _read_stored(self, k: int, stored):
        """Transfer reads of the stored vectors ``(n, other)`` of device ``k`` (names from its read counter)."""
        t = self.sub[k]
        direction = "forward" if self.columns else "backward"
        v = read_vectors(stored, self.transfer_io, t.key, 0, transposed=not self.columns,
                         state=t.io_state[direction], xp=self.xp, ctr=t._counter(direction))
        t._advance(direction, int(stored.shape[0]))
        return v

    def _write(self, k: int, lines, d, lr: float):
        """Pulse ``-lr d`` onto ``lines`` of device ``k``: rows of ``d`` are the written vectors."""
        target = self.sub[k]
        onehot = self._one_hot(lines, self.size)
        if self.columns:
            target.update(onehot, d, lr)  # W[:, c] -= lr d
        else:
            target.update(d, onehot, lr)

    def _transfer(self, k: int, lr: float) -> None:
        """Transfer from device ``k`` to ``k + 1`` (the algorithms of the module docstring)."""
        cc, xp = self.cc, self.xp
        self._advance("ops", 1)
        if not self.buffered:
            lines = self._lines(k, min(cc.n_reads_per_transfer, self.size))
            v = self._read(k, lines)
            if cc.with_reset_prob > 0 and self.columns:
                # with probability with_reset_prob the read columns are reset, whole (the incumbent's column-wise
                # probability; it was applied to each device of the columns separately before)
                u = rng.uniform(self.key, rng.Stream.TRANSFER, k, self.counters["ops"], 3)[0]
                if float(u) < cc.with_reset_prob:
                    self.sub[k].reset_columns(self._slice(k) - lines.shape[0], lines.shape[0])
            lr_t = cc.transfer_lrs()[k] * (abs(lr) if cc.scale_transfer_lr else 1.0)
            self._write(k + 1, lines, -v, lr_t)
            return
        c = self._slice(k)
        lines = self._lines(k, 1)
        v = self._read(k, lines)[0]  # (other,)
        # granularity of the configured device (a floating-point write replaces the tile's device by an ideal one)
        dw_c = self.cc.unit_cell_devices[min(k + 1, 1)].granularity()
        lr_t = cc.transfer_lrs()[k] * (abs(lr) if cc.scale_transfer_lr else 1.0)
        if self.gam[k] > 0 and self.gam[k + 1] > 0:
            lr_t *= self.gam[k] / self.gam[k + 1]
        bl_t = F32(cc.transfer_update.desired_bl)
        buf = self.state["buffer"]
        col = buf[:, c] if self.columns else buf[c, :]
        new, n = self._buffer_step(col, v, c, lr_t, bl_t, dw_c)
        if self.columns:
            buf[:, c] = new
        else:
            buf[c, :] = new
        write = n
        if self.dynamic and self.sweeps <= cc.chop_period():  # AGAD warm-up
            write = xp.zeros_like(n)
        self._write(k + 1, lines, -write[None, :], F32(cc.step * dw_c))
        self._flip_choppers(c)
        if c == self.size - 1:  # a sweep over all lines is complete
            self.sweeps += 1

    def _buffer_step(self, col, v, c: int, lr_t: float, bl_t, dw_c: float):
        """One line's buffer step (the read ``v`` of line ``c``): TTv2's rule, threshold ``thres_scale dw_C``.
        Returns ``(new buffer line, pulses to write)``."""
        return ttv2_buffer_step(col, v, lr_t, F32(self.cc.thres_scale * dw_c), bl_t, self.cc, self.xp)

    def _flip_choppers(self, c: int) -> None:
        """After the read of line ``c``: no choppers here."""

class ChoppedTransferTile(TransferTile):
    """The chopped family (:class:`ChoppedTransferCompound`: c-TTv2; :class:`DynamicTransferCompound`: AGAD): the
    chopper signs of A, the dimensionless buffer with its threshold and the chopper flips."""

    def _initial_state(self) -> dict:
        """The buffer, the choppers (all off), the auto-scale maxima and, for AGAD, the running means."""
        st = super()._initial_state()
        st.update(c_in=np.zeros(self.in_size, bool), c_out=np.zeros(self.out_size, bool), m_x=np.zeros((), F32),
                  m_d=np.zeros((), F32))
        if self.dynamic:
            st.update(mean=np.zeros(self.shape, F32), past_mean=np.zeros(self.shape, F32),
                      switched=np.zeros(self.size, bool))
        return st

    def _fast_lr(self, lr: float, x, d):
        """With ``auto_scale``, A's pulse learning rate is ``fast_lr desired_bl dw_A`` (times ``|lr|`` with
        ``scale_fast_lr``) and the device-side factor on d is ``1 / (m_x m_d)``, the running maxima."""
        cc = self.cc
        if not (cc.auto_scale and cc.fast_lr > 0):
            return super()._fast_lr(lr, x, d)
        xp, st = self.xp, self.state
        tau = F32(1 - cc.auto_momentum)
        for name, v in (("m_x", x), ("m_d", d)):
            m = xp.abs(v).max(axis=1).mean(dtype=xp.float32)
            cur = st[name]
            # initialised with the first non-zero value; zero batches leave it unchanged
            new = xp.where(cur > 0, (F32(1) - tau) * cur + tau * m, m)
            st[name][...] = xp.where(m > 0, new, cur)
        mx, md = st["m_x"], st["m_d"]
        scale = xp.where((mx > 0) & (md > 0), F32(1) / xp.where((mx > 0) & (md > 0), mx * md, F32(1)), F32(0))
        base = cc.fast_lr * self.config.update.desired_bl * cc.unit_cell_devices[0].granularity()
        return (base * abs(lr) if cc.scale_fast_lr else base) * math.copysign(1, lr), scale

    def _period(self, k: int, batch: int) -> int:
        """``transfer_every < 0``: A's period from its number of states, ``states / size |transfer_every|``."""
        if self.cc.transfer_every < 0 and k == 0:
            dev = self.cc.unit_cell_devices[0]
            states = (dev.w_max - dev.w_min) / dev.granularity()
            return max(int(round(states / self.size * abs(self.cc.transfer_every))), 1)
        return super()._period(k, batch)

    def _update_a(self, x, d, lr_a, snap=None):
        """A stores ``c_ij A_true``: the lines whose chopper is set flip the sign of their inputs."""
        x = x * self.xp.where(self.state["c_in"], F32(-1), F32(1))[None, :]
        d = d * self.xp.where(self.state["c_out"], F32(-1), F32(1))[None, :]
        super()._update_a(x, d, lr_a, snap)

    def _stored_weights(self, k: int):
        """A stores ``c_ij A_true``: the chopper signs turn it back into its contribution."""
        w = self.sub[k].weights
        return w * self._chop_signs() if k == 0 else w

    def _chop_signs(self):
        """``c_ij = +1`` where the input and output choppers agree, else ``-1`` (float32 ``(out, in)``)."""
        xp = self.xp
        same = self.state["c_out"][:, None] == self.state["c_in"][None, :]
        return xp.where(same, F32(1), F32(-1))

    def _lr_scale(self, lr_t: float, dw_c: float) -> float:
        cc = self.cc
        dw_a = self.cc.unit_cell_devices[0].granularity()
        bg = cc.buffer_granularity * dw_a
        if cc.auto_granularity > 0:
            bg = cc.buffer_granularity * dw_a * cc.auto_granularity / (self.size * abs(cc.transfer_every))
        if cc.correct_gradient_magnitudes:
            bg = bg * dw_c / dw_a
            out = F32(abs(lr_t) / abs(self._lr_a_last or 1.0) / bg)
            s = self._lr_a_scale
            if s is not None:
                # lambda_A = lr_a / (m_x m_d) with auto_scale (the incumbent's count lr): divide by the device factor
                # too (it was left out: the buffer scale ignored the running maxima); a device scalar, no sync
                out = self.xp.where(s > 0, out / self.xp.where(s > 0, s, F32(1)), out)
            return out
        return F32(abs(lr_t) / bg)

    def _buffer_step(self, col, v, c: int, lr_t: float, bl_t, dw_c: float):
        cc, xp, st = self.cc, self.xp, self.state
        # the read of line c carries c_ic = +-1 per output: undo it
        sign_out = xp.where(st["c_out"] == st["c_in"][c], F32(1), F32(-1)) if self.columns else \
            xp.where(st["c_in"] == st["c_out"][c], F32(1), F32(-1))
        scale = self._lr_scale(lr_t, dw_c)
        if not self.dynamic:
            return self._emit(chopped_accumulate(col, v, sign_out, scale, cc, xp)[0], bl_t)
        if cc.experimental_correct_accumulation:
            kcount = self.sweeps % cc.chop_period() + 1
            scale = scale / F32(min(kcount, 1 / cc.unit_cell_devices[0].granularity()))
        line = (slice(None), c) if self.columns else (c, slice(None))
        h, (mean, past) = chopped_accumulate(col, v, sign_out, scale, cc, xp,
                                             (st["mean"][line], st["past_mean"][line], st["switched"][c]))
        st["mean"][line], st["past_mean"][line] = mean, past
        st["switched"][c] = False
        return self._emit(h, bl_t)

    def _emit(self, h, bl_t):
        """Chopped buffer threshold (c-TTv2, AGAD): ``n = clip(trunc(h), +-BL)`` where ``|h| >= 1``, and
        the buffer kept after a write. Elementwise on any shape; returns ``(new buffer, n)``."""
        cc, xp = self.cc, self.xp
        over = xp.abs(h) >= F32(1)
        n = xp.where(over, xp.clip(xp.trunc(h), -bl_t, bl_t), F32(0))
        if cc.forget_buffer:
            kept = h * F32(cc.momentum)
        else:
            kept = h - F32(1 - cc.momentum) * n
            if self.dynamic and cc.buffer_cap > 0:
                cap = F32(cc.buffer_cap) * bl_t
                kept = xp.clip(kept, -cap, cap)
        return xp.where(over, kept, h), n

    def _flip_choppers(self, c: int) -> None:
        cc, xp, st = self.cc, self.xp, self.state
        line_chop = st["c_in"] if self.columns else st["c_out"]
        sweeps = self.sweeps
        flip = False
        if cc.in_chop_prob > 0:
            period = cc.chop_period()
            # AGAD flips regularly and, with in_chop_random, also at random (the incumbent; it was one or the other)
            flip = self.dynamic and (sweeps % period) + 1 == period
            if cc.in_chop_random:
                u = float(rng.uniform(self.key, rng.Stream.TRANSFER, c, sweeps, 1)[0])
                flip = flip or u < cc.in_chop_prob
            else:
                flip = (sweeps % period) + 1 == period
        if flip:
            line_chop[c] = ~line_chop[c]
            if self.dynamic:
                st["switched"][c] = True
        if c == self.size - 1:
            if cc.out_chop_prob > 0:
                other_chop = st["c_out"] if self.columns else st["c_in"]
                u = rng.uniform_array(self.key, rng.Stream.TRANSFER, other_chop.shape, c1=sweeps, c2=2, xp=xp)
                other_chop ^= u < F32(cc.out_chop_prob)



    def _fused_flips(self, lines, sweep_t):
        """Whether the input chopper of each transfer's line flips after its read (bool ``(count,)``): the draws
        and the regular schedule of :meth:`_flip_choppers`, for all transfers of a batch at once."""
        cc, xp = self.cc, self.xp
        if cc.in_chop_prob == 0:
            return xp.zeros(lines.shape[0], bool)
        period = cc.chop_period()
        regular = (sweep_t % period) + 1 == period
        if not cc.in_chop_random:
            return regular
        u = rng.uniform(self.key, rng.Stream.TRANSFER, lines.astype(xp.uint32), sweep_t.astype(xp.uint32), 1, xp)[0]
        flip = u < F32(cc.in_chop_prob)
        return flip | regular if self.dynamic else flip  # AGAD: regular flips plus random ones (the incumbent's)


    def _fused_buffer(self, cols, v, lines, lr_t: float, bl_t, dw_c: float, flip, sweep_t):
        """The chopped buffer step of a batch's transfers, with their chopper ``flip`` s and the completed sweeps
        ``sweep_t`` (the input choppers are updated here, after A's update, which only read them)."""
        cc, xp, st = self.cc, self.xp, self.state
        c_in_read = st["c_in"][lines]  # the choppers at read time (before this batch's flips)
        sign = xp.where(st["c_out"][:, None] == c_in_read[None, :], F32(1), F32(-1))
        scale = self._lr_scale(lr_t, dw_c)
        agad = (xp.take(st["mean"], lines, axis=1), xp.take(st["past_mean"], lines, axis=1),
                st["switched"][lines][None, :]) if self.dynamic else None
        h, agad = chopped_accumulate(cols, v, sign, scale, cc, xp, agad)
        if self.dynamic:
            st["mean"][:, lines], st["past_mean"][:, lines] = agad
            st["switched"][lines] = flip
        new, write = self._emit(h, bl_t)
        if self.dynamic:  # AGAD writes nothing during its warm-up
            write = xp.where((sweep_t > cc.chop_period())[None, :], write, F32(0))
        st["c_in"][lines] = c_in_read ^ flip
        return new, write


class MixedPrecisionTile(_CompoundTile):
    """Mixed precision (module docstring): digital accumulator chi, row-wise pulsed writes of whole epsilons."""

    def __init__(self, out_size, in_size, config: TileConfig, *, seed: int = 0, backend: str = "numpy"):
        super().__init__(out_size, in_size, config, seed=seed)
        cc = self.cc = config.device
        forced = config.update.replace(update_management=True, update_bl_management=True)
        self._init_compound([cc.device], [forced], seed)
        self.state = {"chi": np.zeros((out_size, in_size), F32)}
        self.row, self.batches = 0, 0
        self.eps = cc.granularity if cc.granularity > 0 else cc.device.granularity()
        self._refresh()
        if backend != "numpy":
            self.to(backend)

    def _refresh(self) -> None:
        self.weights = self.sub[0].weights

    def set_weights(self, weights) -> None:
        self.sub[0].set_weights(weights)
        self.state["chi"][...] = 0
        self._refresh()

    def _quantise(self, v, bins: int, sto: bool, c2: int, ctr):
        if bins <= 0:
            return v
        xp = self.xp
        half = F32(bins // 2)
        width = xp.abs(v).max(axis=1, keepdims=True) / half
        width = xp.where(width > 0, width, F32(1))
        t = v / width
        if sto:
            t = t + (rng.uniform_rows(self.key, rng.Stream.QUANT, v.shape[0], v.shape[1], 0, c2, xp=xp, ctr=ctr)
                     - F32(0.5))
        return xp.clip(xp.rint(t), -half, half) * width

    def update(self, x, d, lr: float):
        """``chi += lr q(d)^T q(x)``; every ``transfer_every`` batches write ``trunc(chi / eps)`` row by row."""
        x, d, lr = update_inputs(self, x, d, lr)
        cc, st = self.cc, self.state
        qx = self._quantise(x, cc.n_x_bins, cc.stoc_round_x, 0, self._counter("update"))
        qd = self._quantise(d, cc.n_d_bins, cc.stoc_round_d, 1, self._counter("update"))
        self._advance("update", x.shape[0])
        st["chi"] += F32(lr) * (qd.T @ qx)  # cuBLAS on the GPU: a graph capture of this step is refused (eager)
        self.batches += 1
        if self.batches % cc.transfer_every == 0:
            self._write_rows()
        self._refresh()

    def _write_rows(self) -> None:
        cc, xp, st = self.cc, self.xp, self.state
        n_rows = self.out_size if cc.n_rows_per_transfer < 0 else min(cc.n_rows_per_transfer, self.out_size)
        first = self.row
        if cc.random_row:
            u = rng.uniform(self.key, rng.Stream.TRANSFER, 0, self.counters["ops"], 0)[0]
            first = int(float(u) * self.out_size)
        self._advance("ops", 1)
        rows = [(first + r) % self.out_size for r in range(n_rows)]
        eps = F32(self.eps)
        chi = st["chi"][rows]
        counts = xp.trunc(chi / eps)
        st["chi"][rows] = chi - counts * eps
        # one pulsed update per row: x = the counts, d = e_i, lr = eps transfer_lr (UM and BL management on)
        onehot = self._one_hot(rows, self.out_size)
        self.sub[0].update(counts, onehot, float(eps * cc.transfer_lr))
        self.row = (first + n_rows) % self.out_size

    def _host_state(self) -> np.ndarray:
        return np.array([self.row, self.batches], np.int64)

    def _set_host_state(self, values) -> None:
        self.row, self.batches = int(values[0]), int(values[1])


TILE_CLASSES.update({TransferCompound: TransferTile, ChoppedTransferCompound: ChoppedTransferTile,
                     MixedPrecisionCompound: MixedPrecisionTile})
