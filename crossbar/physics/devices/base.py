"""Common part of every pulsed device: parameters, device-to-device sampling, pulse application, and the
periodic operations (decay, diffusion, reset, clip, drift), following the pulsed devices of IBM's aihwkit 1.1.

Units: weights, bounds, steps and reset values are normalised weight units (the conductance range mapped onto
the stored weight); ``*_dtod`` spreads and ``dw_min_std`` are relative; ``xi`` is a standard normal.

Device-to-device sampling (:meth:`PulsedDevice.sample`, once per tile; every parameter from its own stream):

* bounds ``b+ = w_max (1 + w_max_dtod xi)``, ``b- = w_min (1 + w_min_dtod xi)``;
* steps: gain ``g = 1 + dw_min_dtod xi`` (``exp(dw_min_dtod xi)`` if log-normal), ``r = up_down_dtod xi``,
  ``dwmin_up = (min(up_down, 0) + g + r) dw_min``, ``dwmin_down = (-max(up_down, 0) + g - r) dw_min``, so
  ``up_down > 0`` shrinks the down steps and ``up_down < 0`` the up steps;
* ``enforce_consistency``: steps ``|.|``, bounds swapped if ``b- > b+``, then ``b+ = |b+|``, ``b- = -|b-|``;
  without it an element with ``b- > b+`` gets both bounds at their midpoint (a dead device);
* stuck devices with probability ``corrupt_devices_prob``: both bounds at one ``U`` value inside the bounds and
  ``+-corrupt_devices_range``, steps 0; ``perfect_bias``: the last column steps ``dw_min``, bounds ``100 w_max|min``;
* ``diffusion_rates = |diffusion (1 + diffusion_dtod xi)|``, ``reset_bias = reset + reset_dtod xi``,
  ``decay_scales = 1 - 1/L`` with ``L = lifetime (1 + lifetime_dtod xi)`` (0 if ``L <= 1``; 1 when lifetime is
  0), ``drift_nu = nu (1 + nu_dtod xi)``; then the subclass's extra parameters (:meth:`PulsedDevice.sample_extra`).

Pulses: a device model is a :class:`PulsedDevice` subclass naming a pure *step function*::

    step(w, up, p, xi, dev) -> w_new

applying ONE pulse to the float32 weights ``w`` (shape ``(k,)``) in direction ``up`` (bool, True = the
weight grows), with the gathered per-device parameters ``p`` (dict of float32 ``(k,)`` arrays), its own
cycle-to-cycle normal ``xi``, and tile-wide constants. It ends with the clip to ``[min_bound, max_bound]``.
Its CUDA twin of the same name lives in raw_kernels/devices.cuh. All arithmetic is float32 in a fixed order,
so both backends round alike. The granularity ``dw`` that turns a learning rate into pulses is ``dw_min``
unless a model overrides :meth:`PulsedDevice.granularity`. Reference devices act on ``g = w + reference``.
Write noise (``write_noise_std > 0``): the steps act on a hidden ``persistent_weights``; after each touched
update the visible weight is ``persistent + write_noise_std dw_min xi`` (fresh), and every periodic
operation redraws all visible weights so.

Periodic operations (methods of :class:`crossbar.tiles.tile.AnalogTile`, each ending with the clip to the bounds):
``decay(alpha)``: ``w <- (w - reset_bias)(1 + alpha (decay_scales - 1)) + reset_bias``; ``diffuse()``:
``w += diffusion_rates xi``; ``post_update_step()`` (once per mini-batch) diffuses then decays where
configured; ``reset_columns(start, n, prob)``: with probability ``prob`` ``w = reset_bias + reset_std xi``;
``clip_weights(c)``: the bounds, and ``+-c`` if ``c >= 0``. ``drift(dt)`` (:class:`DriftParameter`): the
clock ``T += dt / t_0``; an element whose weight moved by more than ``reset_tol`` since the last call restarts
(``t_ij = T``, ``w0 = w``); the others get ``nu = drift_nu (1 + nu_std xi) - nu_k ln((w - w_offset) / wg_ratio
+ g_offset) + nu_k log_g0``, ``f = max(T - t_ij, 1)^-nu``, ``w = w0 f + a (f - 1)`` with ``a = g_offset
wg_ratio + w_offset`` (0 below ``reset_tol``), then ``w += w_noise_std xi``.

Hidden parameters (names as in aihwkit, all float32 arrays of the tile's shape ``(out, in)``):
``max_bound, min_bound, dwmin_up, dwmin_down, decay_scales, diffusion_rates, reset_bias`` and, when
used, ``drift_nu`` and ``persistent_weights``, then the device-specific ones.
"""

from __future__ import annotations

import zlib

import numpy as np

from .. import rng
from ...backend import array_module
from ...config import DeviceConfig, DriftParameter, config, param

F32 = np.float32


def d2d_normal(key, name: str, shape) -> np.ndarray:
    """Standard normals (float64 view of float32 draws) for the d2d parameter ``name``.

    Each parameter has its own stream (``c2 = crc32(name)``), so adding a parameter never changes the
    draws of the others.
    """
    return rng.normal_array(key, rng.Stream.D2D, shape, c2=zlib.crc32(name.encode())).astype(np.float64)


def d2d_uniform(key, name: str, shape) -> np.ndarray:
    """Uniforms on [0, 1) for the d2d parameter ``name`` (see :func:`d2d_normal`)."""
    return rng.uniform_array(key, rng.Stream.D2D, shape, c2=zlib.crc32(name.encode())).astype(np.float64)


@config
class PulsedDevice(DeviceConfig):
    """Fields shared by all pulsed devices (model: :mod:`crossbar.physics.devices.base`). Weights are in normalised units."""

    construction_seed: int | None = param(None, "seed of the device-to-device draws; None: the tile seed",
                                          lo=0, integer=True, optional=True)
    dw_min: float = param(0.001, "mean step size of one pulse (weight units)", lo=0, lo_open=True)
    dw_min_dtod: float = param(0.3, "device-to-device spread of the step gain (relative)", lo=0)
    dw_min_dtod_log_normal: bool = param(False, "step gain exp(s xi) instead of 1 + s xi")
    dw_min_std: float = param(0.3, "cycle-to-cycle noise of one step (relative to the step)", lo=0)
    up_down: float = param(0.0, "systematic up/down asymmetry: > 0 shrinks down steps, < 0 up steps",
                           lo=-1, hi=1)
    up_down_dtod: float = param(0.01, "device-to-device spread of the asymmetry", lo=0)
    w_max: float = param(0.6, "mean upper bound (weight units)", lo=0)
    w_min: float = param(-0.6, "mean lower bound (weight units)", hi=0)
    w_max_dtod: float = param(0.3, "relative device-to-device spread of the upper bound", lo=0)
    w_min_dtod: float = param(0.3, "relative device-to-device spread of the lower bound", lo=0)
    enforce_consistency: bool = param(True, "make steps positive and bounds ordered and of proper sign")
    perfect_bias: bool = param(False, "last column is a perfect bias: step dw_min, bounds x100")
    corrupt_devices_prob: float = param(0.0, "probability of a stuck device", lo=0, hi=1)
    corrupt_devices_range: float = param(0.1, "stuck devices sit uniformly in +-this range", lo=0)
    lifetime: float = param(0.0, "decay lifetime in mini-batches (0 = off)", lo=0)
    lifetime_dtod: float = param(0.0, "relative device-to-device spread of the lifetime", lo=0)
    diffusion: float = param(0.0, "diffusion std per mini-batch (weight units)", lo=0)
    diffusion_dtod: float = param(0.0, "relative device-to-device spread of the diffusion", lo=0)
    reset: float = param(0.0, "mean reset value (weight units)")
    reset_dtod: float = param(0.0, "device-to-device spread of the reset value (additive)", lo=0)
    reset_std: float = param(0.01, "cycle-to-cycle spread of a reset (weight units)", lo=0)
    drift: DriftParameter = param(DriftParameter(), "power-law drift between updates")
    count_pulses: bool = param(False, "count the up and down pulses every device receives")
    write_noise_std: float = param(0.0, "write noise std relative to dw_min, on a hidden persistent weight",
                                   lo=0)
    apply_write_noise_on_set: bool = param(True, "set_weights also applies the write noise")

    #: name of the pure step function and of its CUDA twin
    step_name = ""
    #: hidden parameters this device adds to the common ones
    extra_names = ()
    #: whether this device implements write noise (LinearStep, SoftBounds, SoftBoundsReference, ExpStep, PowStep,
    #: PiecewiseStep do; the others reject write_noise_std > 0)
    supports_write_noise = False
    #: whether the device stores w = g - reference (the step acts on g)
    has_reference = False

    def validate(self):
        if self.write_noise_std > 0 and not self.supports_write_noise:
            self._fail("write_noise_std", self.write_noise_std,
                       f"0 for {type(self).__name__} (it has no write-noise model)")

    # ---- derived constants -------------------------------------------------------------------
    def granularity(self) -> float:
        """Weight granularity delta used to turn a learning rate into pulses (the mean step; ``dw_min`` here)."""
        return self.dw_min

    def summing(self) -> bool:
        """True when n same-sign pulses may be applied in closed form (ConstantStep, small noise)."""
        return False

    @property
    def hidden_names(self) -> tuple:
        names = ["max_bound", "min_bound", "dwmin_up", "dwmin_down", "decay_scales", "diffusion_rates",
                 "reset_bias"]
        if self.drift.nu > 0:
            names.append("drift_nu")
        if self.write_noise_std > 0:
            names.append("persistent_weights")
        return tuple(names) + tuple(self.extra_names)

    # ---- device-to-device sampling ------------------------------------------------------------
    def sample(self, shape, key) -> dict:
        """Draw all hidden parameters for a tile of ``shape = (out, in)`` from the d2d ``key``.

        Returns a dict of float32 NumPy arrays (the tile moves them to its backend).
        """
        out_size, in_size = shape
        n = lambda name: d2d_normal(key, name, shape)  # noqa: E731
        b_up = self.w_max * (1 + self.w_max_dtod * n("max_bound"))
        b_dn = self.w_min * (1 + self.w_min_dtod * n("min_bound"))
        xi = n("dw_min")
        gain = np.exp(self.dw_min_dtod * xi) if self.dw_min_dtod_log_normal else 1 + self.dw_min_dtod * xi
        r = self.up_down_dtod * n("up_down")
        up_bias, down_bias = min(self.up_down, 0.0), -max(self.up_down, 0.0)
        d_up = (up_bias + gain + r) * self.dw_min
        d_dn = (down_bias + gain - r) * self.dw_min
        if self.enforce_consistency:
            d_up, d_dn = np.abs(d_up), np.abs(d_dn)
            swap = b_dn > b_up
            b_up, b_dn = np.where(swap, b_dn, b_up), np.where(swap, b_up, b_dn)
            b_up, b_dn = np.abs(b_up), -np.abs(b_dn)
        else:
            off = b_dn > b_up
            mid = (b_up + b_dn) / 2
            b_up, b_dn = np.where(off, mid, b_up), np.where(off, mid, b_dn)
        if self.corrupt_devices_prob > 0:
            bad = d2d_uniform(key, "corrupt", shape) < self.corrupt_devices_prob
            R = self.corrupt_devices_range
            lo = np.maximum(np.minimum(b_dn, b_up), -R)
            hi = np.minimum(np.maximum(b_dn, b_up), R)
            v = lo + (hi - lo) * d2d_uniform(key, "corrupt_value", shape)
            b_up, b_dn = np.where(bad, v, b_up), np.where(bad, v, b_dn)
            d_up, d_dn = np.where(bad, 0.0, d_up), np.where(bad, 0.0, d_dn)
        if self.perfect_bias:
            d_up[:, -1] = d_dn[:, -1] = self.dw_min
            b_up[:, -1], b_dn[:, -1] = 100 * self.w_max, 100 * self.w_min
        p = dict(max_bound=b_up, min_bound=b_dn, dwmin_up=d_up, dwmin_down=d_dn)
        p["diffusion_rates"] = np.abs(self.diffusion * (1 + self.diffusion_dtod * n("diffusion")))
        p["reset_bias"] = self.reset + self.reset_dtod * n("reset")
        if self.lifetime > 0:
            life = self.lifetime * (1 + self.lifetime_dtod * n("lifetime"))
            p["decay_scales"] = np.where(life > 1, 1 - 1 / np.where(life > 1, life, 2), 0.0)
        else:
            p["decay_scales"] = np.ones(shape)
        if self.drift.nu > 0:
            p["drift_nu"] = self.drift.nu + self.drift.nu_dtod * self.drift.nu * n("drift_nu")
        self.sample_extra(p, shape, key)
        if self.write_noise_std > 0:
            p["persistent_weights"] = np.zeros(shape)
        return {k: np.ascontiguousarray(v, dtype=F32) for k, v in p.items()}

    def sample_extra(self, p: dict, shape, key) -> None:
        """Add (or adjust) device-specific hidden parameters in ``p`` (float64 arrays)."""

    # ---- the update rule ------------------------------------------------------------------------
    def scalars(self) -> dict:
        """Tile-wide float32 constants of the step function (also the CUDA kernel's arguments)."""
        return dict(dw_min_std=F32(self.dw_min_std))

    def step(self, w, up, p, xi):
        """Apply one pulse with the device's pure step function (see the module docstring)."""
        return STEPS[self.step_name](w, up, p, xi, self.scalars())

    def step_n(self, w, n, up, p, xi):
        """Apply ``n`` same-sign pulses in closed form (only where :meth:`summing` is True)."""
        raise NotImplementedError(f"{type(self).__name__} applies pulses one at a time")

    # ---- device space: the weight the rule acts on ------------------------------------------------
    def to_device(self, w, p):
        """The weight the step acts on: ``w + reference`` for reference devices, else ``w``."""
        return w + p["reference"] if self.has_reference else w

    def from_device(self, g, p):
        return g - p["reference"] if self.has_reference else g


#: name -> pure step function ``step(w, up, p, xi, c)``; filled by the device modules
STEPS: dict = {}
#: name -> CUDA source of the step function's twin, for models whose struct is not shipped in
#: raw_kernels/devices.cuh (a user's own model); the GPU update kernel is instantiated for every name in STEPS
CUDA_STEPS: dict = {}


def register_step(fn=None, *, cuda: str = ""):
    """Register a pure step function under its own name, the name of its CUDA twin: a struct in namespace ``xb``
    with ``step`` and ``step_n`` (raw_kernels/devices.cuh shows the shape; inherit ``no_summing`` for the second).
    ``cuda``: that struct's source, where it is not in devices.cuh. Use as ``@register_step`` or
    ``@register_step(cuda=...)``."""
    def file(f):
        STEPS[f.__name__] = f
        if cuda:
            CUDA_STEPS[f.__name__] = cuda
        return f
    return file if fn is None else file(fn)


def clip_to_bounds(w, p):
    """``min(max(w, min_bound), max_bound)``: the last operation of every step."""
    xp = array_module(w)
    return xp.minimum(xp.maximum(w, p["min_bound"]), p["max_bound"])


def signed_step(up, p):
    """Float32 ``+dwmin_up`` where ``up`` else ``-dwmin_down``."""
    return array_module(up).where(up, p["dwmin_up"], -p["dwmin_down"])


def apply_events(dev: PulsedDevice, weights, params: dict, events, key, sample0: int, pulse_counts=None):
    """Apply the pulse counts of one update to the flat weights, in place (NumPy reference).

    For every weight the touched samples are applied in batch order; sample ``b`` applies its ``n``
    pulses one after the other, each pulse ``t`` with the normal ``z(widx, s, t // 4, PULSE_NOISE)[t % 4]``
    where ``s = sample0 + b``, or, where ``dev.summing()``, in closed form with :func:`sum_noise`. Devices
    with write noise act on ``persistent_weights`` and then redraw the
    visible weight as ``persistent + write_noise_std * dw_min * z(widx, s, 0, WRITE_NOISE)[0]``.

    Args:
        dev: the device config.
        weights: float32 ``(out * in,)`` visible weights (a flat view of the tile's weights).
        params: flat float32 hidden parameters, same length.
        events: :class:`crossbar.physics.pulses.Events`, sorted by sample.
        key: the tile's Philox key; sample0: running number of the batch's first sample.
        pulse_counts: optional dict of int64 ``(out * in,)`` arrays ``"up"``/``"down"`` to increment.
    """
    widx = events.widx
    if widx.size == 0:
        return
    s = ((sample0 + events.sample.astype(np.uint64)) & 0xFFFFFFFF).astype(np.uint32)
    wid = widx.astype(np.uint32)
    names = ("max_bound", "min_bound", "dwmin_up", "dwmin_down") + tuple(dev.extra_names)
    target = params["persistent_weights"] if dev.write_noise_std > 0 else weights
    todo = np.arange(widx.size)
    if dev.summing() and dev.write_noise_std == 0 and not dev.has_reference:
        todo = _sum_unclipped(dev, target, params, events, key, s)
    if todo.size:
        rank = _rank_within_weight(widx[todo], events.sample[todo], target.size)
        # the smallest unsigned type that holds the ranks: NumPy sorts 8/16-bit keys by radix sort
        order = todo[np.argsort(rank.astype(np.min_scalar_type(rank.max())), kind="stable")]
        edges = np.searchsorted(np.sort(rank), np.arange(rank.max() + 2))
        for r in range(len(edges) - 1):  # round r: every weight's r-th touching sample
            sel = order[edges[r]:edges[r + 1]]
            wi = widx[sel]
            p = {k: params[k][wi] for k in names}
            g = _pulse_run(dev, dev.to_device(target[wi], p), events.n[sel], events.up[sel], p, key, wid[sel], s[sel])
            target[wi] = dev.from_device(g, p)
            if dev.write_noise_std > 0:
                z = rng.normal1(key, rng.Stream.WRITE_NOISE, wid[sel], s[sel])
                weights[wi] = target[wi] + F32(dev.write_noise_std * dev.dw_min) * z
    if pulse_counts is not None:
        for name, mask in (("up", events.up), ("down", ~events.up)):
            pulse_counts[name] += np.bincount(widx[mask], events.n[mask], weights.size).astype(np.int64)


_SCRATCH: dict = {}


def _scratch(size: int, dtype):
    """A zeroed work array reused across calls; callers must zero what they touched before returning."""
    key = (size, np.dtype(dtype).str)
    if key not in _SCRATCH:
        _SCRATCH[key] = np.zeros(size, dtype)
    return _SCRATCH[key]


def _rank_within_weight(widx, sample, size):
    """For events sorted by sample: how many earlier samples touched the same weight."""
    seen = _scratch(size, np.int32)
    rank = np.empty(widx.size, np.int32)
    edges = np.flatnonzero(np.r_[True, sample[1:] != sample[:-1], True])
    for a, b in zip(edges[:-1], edges[1:]):  # one weight appears at most once per sample
        w = widx[a:b]
        rank[a:b] = seen[w]
        seen[w] += 1
    seen[widx] = 0  # leave the scratch zeroed
    return rank


def _sum_unclipped(dev, target, params, events, key, s):
    """Closed-form runs of a summing device, added in sample order where no bound can be reached.

    ``w + dw_1 + dw_2 + ...`` in float32, in sample order, is what the per-sample rule gives whenever no
    partial sum leaves the bounds. Weights for which one might (the running sum of all up or of all down
    steps comes within a small margin of a bound) are returned for the exact per-round path.

    Returns:
        indices of the events still to apply.
    """
    widx = events.widx
    p = {k: params[k][widx] for k in ("dwmin_up", "dwmin_down")}
    z = sum_noise(key, widx.astype(np.uint32), s)
    nf = events.n.astype(F32)
    dw = signed_step(events.up, p) * (nf + F32(dev.dw_min_std) * np.sqrt(nf) * z)
    rise = dw > 0
    ups = _scratch(target.size, np.float64)
    np.add.at(ups, widx[rise], dw[rise])
    up_sum = ups[widx]
    ups[widx] = 0
    np.add.at(ups, widx[~rise], dw[~rise])
    down_sum = ups[widx]
    ups[widx] = 0
    w0 = target[widx].astype(np.float64)
    hi, lo = params["max_bound"][widx].astype(np.float64), params["min_bound"][widx].astype(np.float64)
    margin = 1e-5 * (np.abs(hi) + np.abs(lo)) + 1e-30
    safe = (w0 + up_sum <= hi - margin) & (w0 + down_sum >= lo + margin)
    np.add.at(target, widx[safe], dw[safe])  # sequential in event (= sample) order, like the kernel
    return np.flatnonzero(~safe)


def sum_noise(key, wid, s):
    """The normal of a closed-form pulse run of weight ``wid`` in sample ``s``: word ``s & 3`` of counter
    ``(wid, s >> 2, 0, SUM_NOISE)``, so one Philox call serves four consecutive samples of a weight."""
    return rng.normal_word(key, rng.Stream.SUM_NOISE, wid, s >> 2, 0, s & 3)


def _pulse_run(dev, g, n, up, p, key, wid, s):
    """Apply ``n[e]`` pulses of direction ``up[e]`` to each ``g[e]`` (one sample's coincidences)."""
    if dev.summing():
        return dev.step_n(g, n, up, p, sum_noise(key, wid, s))
    active = np.arange(g.size)
    for t in range(int(n.max())):
        active = active[n[active] > t]
        if t % 4 == 0:  # one Philox call serves four pulses
            block = active
            z = rng.normal(key, rng.Stream.PULSE_NOISE, wid[block], s[block], t // 4)
        xi = z[t % 4, np.searchsorted(block, active)]
        g[active] = dev.step(g[active], up[active], {k: v[active] for k, v in p.items()}, xi)
    return g
