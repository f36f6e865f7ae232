"""AnalogTile: one crossbar array of ``out_size x in_size`` resistive devices.

A tile holds a frozen :class:`~crossbar.config.TileConfig` and mutable arrays: the weights ``W``
(float32 ``(out, in)``), the per-device hidden parameters, per-direction IO state, RNG counters, and
optionally pulse counters and drift state. It offers the three operations of analog training
(Gokmen & Vlasov 2016), each with its non-idealities:

* ``forward(x)``: ``y = W x`` through the forward IO (DAC, noise, bound management, ADC: :mod:`crossbar.io`),
* ``backward(d)``: ``z = W^T d`` through the backward IO,
* ``update(x, d, lr)``: ``W -= lr d^T x`` as stochastic pulses (:mod:`crossbar.pulses`) on the devices
  (:mod:`crossbar.devices`),

plus exact and realistic access to the weights (``get_weights``/``set_weights`` are exact;
``read_weights`` estimates through noisy reads; ``program_weights`` writes through pulses) and the
periodic device operations (decay, diffusion, reset, clip, drift).

Randomness: the runtime key is ``seed_key(seed, 0)``; device-to-device draws use
``seed_key(construction_seed or seed, 1)`` (and ``2``/``3`` for the forward/backward IO lines), so the
same seed always builds the same devices and replays the same noise.
"""

from __future__ import annotations

import contextlib
import json

import numpy as np

from . import _cuda, io, pulses, rng
from .backend import get_xp, to_backend, to_numpy
from .config import Config, PulseType, TileConfig
from .devices import IdealDevice, PulsedDevice
from .devices.base import apply_events, clip_to_bounds

F32 = np.float32
_COUNTERS = ("update", "forward", "backward", "ops")


class AnalogTile:
    """An analog crossbar tile.

    Args:
        out_size: number of output lines (rows of ``W``).
        in_size: number of input lines (columns of ``W``).
        config: the tile's :class:`TileConfig` (default: ConstantStep device, default IO and update).
        seed: seed of all runtime randomness (and of the device draws unless the device names a
            ``construction_seed``); an int in ``[0, 2**64)``.
        backend: ``"numpy"`` or ``"cupy"``.

    Example:
        >>> import numpy as np
        >>> from crossbar import AnalogTile
        >>> tile = AnalogTile(3, 4, seed=1)
        >>> tile.set_weights(np.full((3, 4), 0.1, np.float32))
        >>> tile.forward(np.ones((2, 4), np.float32)).shape
        (2, 3)
    """

    #: check inputs for NaN/Inf (a host synchronisation on the GPU; the captured path turns it off)
    check_finite = True

    def __init__(self, out_size: int, in_size: int, config: TileConfig | None = None, *, seed: int = 0,
                 backend: str = "numpy"):
        for name, v in (("out_size", out_size), ("in_size", in_size)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"AnalogTile: {name} must be a positive integer, got {v!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
            raise ValueError(f"AnalogTile: seed must be an integer in [0, 2**64), got {seed!r}")
        config = TileConfig() if config is None else config
        if not isinstance(config, TileConfig):
            raise TypeError(f"AnalogTile: config must be a TileConfig, got {type(config).__name__}")
        self.out_size, self.in_size = int(out_size), int(in_size)
        self.config, self.seed = config, int(seed)
        device = config.device
        if config.update.pulse_type == PulseType.NONE and isinstance(device, PulsedDevice):
            device = IdealDevice(reset_std=device.reset_std)  # a floating-point update: no device physics
        self.device = device
        self.key = rng.seed_key(self.seed, 0)
        own_seed = getattr(device, "construction_seed", None)  # compounds: their sub-devices carry seeds
        d2d_seed = own_seed if own_seed is not None else self.seed
        shape = (self.out_size, self.in_size)
        params = device.sample(shape, rng.seed_key(d2d_seed, 1)) if self.pulsed else {}
        io_state = {"forward": io.sample_io_state(config.forward, self.out_size, rng.seed_key(d2d_seed, 2)),
                    "backward": io.sample_io_state(config.backward, self.in_size, rng.seed_key(d2d_seed, 3),
                                                transposed=True)}
        self.backend = "numpy"
        self.weights = np.zeros(shape, F32)
        self.params = params
        self.io_state = io_state
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.pulse_counts = ({"up": np.zeros(shape, np.int64), "down": np.zeros(shape, np.int64)}
                             if self.pulsed and device.count_pulses else None)
        self.drift_state = None
        self.device_counters = self.device_constants = None
        if backend != "numpy":
            self.to(backend)

    # ---- properties ----------------------------------------------------------------------------
    @property
    def pulsed(self) -> bool:
        """True for a pulsed device (False for the ideal, floating-point one)."""
        return isinstance(self.device, PulsedDevice)

    @property
    def xp(self):
        return get_xp(self.backend)

    @property
    def shape(self) -> tuple:
        return (self.out_size, self.in_size)

    def __repr__(self):
        return (f"AnalogTile({self.out_size}, {self.in_size}, device={type(self.device).__name__}, "
                f"seed={self.seed}, backend={self.backend!r})")

    # ---- inputs --------------------------------------------------------------------------------
    def _vectors(self, name: str, a, size: int):
        """Validate a batch of vectors: ``(batch, size)`` or ``(size,)`` -> float32 ``(batch, size)``."""
        xp = self.xp
        a = to_backend(a, self.backend) if hasattr(a, "__array__") or hasattr(a, "__cuda_array_interface__") \
            else xp.asarray(a)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != size:
            raise ValueError(f"{self!r}: {name} must have shape (batch, {size}) or ({size},), "
                             f"got {tuple(a.shape)}")
        if a.dtype.kind not in "fiu":
            raise TypeError(f"{self!r}: {name} must be real numbers, got dtype {a.dtype}")
        with np.errstate(over="ignore"):  # an overflow is reported below
            a32 = xp.ascontiguousarray(a, dtype=F32)
        if self.check_finite and not bool(xp.isfinite(a32).all()):
            if not bool(xp.isfinite(a).all()):
                raise ValueError(f"{self!r}: {name} contains NaN or Inf")
            raise ValueError(f"{self!r}: {name} overflows float32: its largest magnitude is "
                             f"{float(xp.abs(a).max()):.6g}, float32 holds at most {float(np.finfo(F32).max):.6g}")
        return a32

    def _advance(self, counter: str, n: int) -> int:
        start = self.counters[counter]
        self.counters[counter] = start + n
        return start

    # ---- MVMs ----------------------------------------------------------------------------------
    def forward(self, x):
        """Analog ``y = W x`` for a batch.

        Args:
            x: ``(batch, in_size)`` or ``(in_size,)`` inputs (converted to float32).

        Returns:
            float32 ``(batch, out_size)`` outputs on the tile's backend.
        """
        return self._mvm(self._vectors("x", x, self.in_size), False)

    def backward(self, d):
        """Analog ``z = W^T d`` for a batch of output gradients ``d`` (``(batch, out_size)``)."""
        return self._mvm(self._vectors("d", d, self.out_size), True)

    def _mvm(self, v, transposed: bool):
        with self._gpu_errors("backward" if transposed else "forward", v.shape[0]):
            return self._mvm_unguarded(v, transposed)

    def _gpu_errors(self, op: str, batch: int):
        """Turn a GPU out-of-memory error into a ``MemoryError`` naming the tile, the operation and sizes."""
        if self.backend != "cupy":
            return contextlib.nullcontext()
        cp = self.xp

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except cp.cuda.memory.OutOfMemoryError as exc:
                raise MemoryError(f"{self!r}: GPU out of memory in {op} (batch {batch}, tile {self.out_size} x "
                                  f"{self.in_size}): {exc}") from exc
        return guard()

    def _mvm_unguarded(self, v, transposed: bool):
        direction = "backward" if transposed else "forward"
        cfg = getattr(self.config, direction)
        n_in, n_out = (self.out_size, self.in_size) if transposed else (self.in_size, self.out_size)
        batch = v.shape[0]
        if self.backend == "cupy":
            what = f"{self!r}.{direction}(batch={batch})"
            ctr = self.device_counters[direction]
            reference = None
            if _cuda.use_fused_mvm(cfg, n_in, n_out, batch):
                y = _cuda.io_mvm(self.weights, v, cfg, self.key, ctr, transposed, what)
            elif _cuda.gemm_mvm_supported(cfg):  # large tiles: DAC kernel, cuBLAS, ADC kernel
                y, exceeded = _cuda.io_mvm_gemm(self.weights, v, cfg, self.key, ctr, transposed, what)
                reference = io.bm_active(cfg, transposed) and bool(exceeded.any())  # host check; then the reference redoes the rounds
            else:
                reference = True  # the rarer settings: the xp reference around cuBLAS
            if reference:
                y = io.mvm(self.weights, v, cfg, self.key, self.counters[direction], transposed=transposed,
                           state=self.io_state[direction], xp=self.xp)
            _cuda.counter_add(ctr, batch, what)
            self._advance(direction, batch)
            return y
        start = self._advance(direction, batch)
        return io.mvm(self.weights, v, cfg, self.key, start, transposed=transposed, state=self.io_state[direction],
                      xp=self.xp)

    # ---- update --------------------------------------------------------------------------------
    def _update_inputs(self, x, d, lr):
        """Validated ``(x, d, lr)`` of an update: float32 ``(batch, in)``, ``(batch, out)``, a finite float."""
        x = self._vectors("x", x, self.in_size)
        d = self._vectors("d", d, self.out_size)
        if x.shape[0] != d.shape[0]:
            raise ValueError(f"{self!r}: x and d must have the same batch size, got {x.shape[0]} and {d.shape[0]}")
        try:
            if isinstance(lr, (str, bytes, bool)):
                raise TypeError
            lr = float(lr)
        except (TypeError, ValueError):
            raise TypeError(f"{self!r}: lr must be a finite real number, got {lr!r}") from None
        if not np.isfinite(lr):
            raise ValueError(f"{self!r}: lr must be finite, got {lr}")
        return x, d, lr

    def update(self, x, d, lr: float, *, _snap=None):
        """Apply ``W -= lr * d^T x`` (summed over the batch) as pulses, samples in batch order.

        Args:
            x: ``(batch, in_size)`` forward inputs; d: ``(batch, out_size)`` output gradients.
            lr: learning rate (weight units per unit of ``x d``); must be finite.
        """
        x, d, lr = self._update_inputs(x, d, lr)
        start = self._advance("update", x.shape[0])
        ptype = self.config.update.pulse_type
        if not self.pulsed or ptype in (PulseType.NONE, PulseType.NONE_WITH_DEVICE):
            self.weights -= F32(lr) * (d.T @ x)
            if ptype == PulseType.NONE_WITH_DEVICE and self.pulsed:
                self._store_device_weights(clip_to_bounds(self._device_weights(), self.params))
            return
        if self.backend == "cupy":
            with self._gpu_errors("update", x.shape[0]):
                self._update_gpu(x, d, lr, _snap)
            return
        events = pulses.coincidences(x, d, lr, self.device.granularity(), self.config.update, self.key, start)
        flat = {k: v.reshape(-1) for k, v in self.params.items()}
        counts = None if self.pulse_counts is None else {k: v.reshape(-1) for k, v in self.pulse_counts.items()}
        if _snap is not None:
            events = self._snapshots(events, flat, start, *_snap)
        apply_events(self.device, self.weights.reshape(-1), flat, events, self.key, start, counts)

    def _snapshots(self, events, flat, start, snap_at, snap_slot, snap_out, flip_after):
        """NumPy twin of the GPU kernel's Tiki-Taka support: invert the coincidence signs of column ``j`` after
        sample ``flip_after[j]`` (a chopper flip), and write the visible weights of each column ``j`` with
        ``snap_at[j] >= 0`` as they are after sample ``snap_at[j]`` to ``snap_out[snap_slot[j]]``. A column only
        changes by its own events, so replaying the events of the snapshot columns up to their boundaries on
        a copy gives those weights exactly (the draws are named by weight and sample)."""
        j = events.widx % self.in_size
        events.up = events.up ^ (events.sample > flip_after[j])
        keep = (snap_at[j] >= 0) & (events.sample <= snap_at[j])
        sub = pulses.Events(events.widx[keep], events.sample[keep], events.n[keep], events.up[keep])
        weights = self.weights.reshape(-1).copy()
        params = {k: (v.copy() if k == "persistent_weights" else v) for k, v in flat.items()}
        apply_events(self.device, weights, params, sub, self.key, start)
        cols = np.flatnonzero(snap_at >= 0)
        snap_out[snap_slot[cols]] = weights.reshape(self.shape)[:, cols].T
        return events

    def _update_gpu(self, x, d, lr, snap=None):
        cfg = self.config.update
        if cfg.pulse_type == PulseType.STOCHASTIC_COMPRESSED:
            _cuda.pulsed_update(self, x, d, lr, snap=snap)
            return
        dw = self.device.granularity()
        bl, sd, sx = _cuda.update_management(x, d, lr, dw, cfg, f"{self!r}.update")
        counts = pulses.deterministic_counts(x, d, bl, sd, sx, cfg, lr < 0, xp=self.xp)
        _cuda.pulsed_update(self, x, d, lr, counts=counts, snap=snap)

    # ---- weights -------------------------------------------------------------------------------
    def get_weights(self) -> np.ndarray:
        """The exact simulator weights, a float32 ``(out, in)`` NumPy copy."""
        return to_numpy(self.weights).copy()

    def set_weights(self, weights) -> None:
        """Set the weights exactly, clipped to the device bounds (write noise applied if configured)."""
        w = to_backend(np.asarray(to_numpy(weights), dtype=F32), self.backend)
        if w.shape != self.shape:
            raise ValueError(f"{self!r}: weights must have shape {self.shape}, got {tuple(w.shape)}")
        if not bool(self.xp.isfinite(w).all()):
            raise ValueError(f"{self!r}: weights contain NaN or Inf")
        if not self.pulsed:
            self.weights[...] = w
            return
        g = clip_to_bounds(self.device.to_device(w, self.params), self.params)
        self._store_device_weights(g, noisy=self.device.apply_write_noise_on_set)

    def _device_weights(self):
        """The state the device physics acts on: ``persistent + reference`` where those exist."""
        base = self.params["persistent_weights"] if self._write_noise else self.weights
        return self.device.to_device(base, self.params)

    @property
    def _write_noise(self) -> bool:
        return self.pulsed and self.device.write_noise_std > 0

    def _store_device_weights(self, g, noisy: bool = True) -> None:
        """Store device-space weights ``g``; with write noise, redraw all visible weights from them."""
        w = self.device.from_device(g, self.params)
        if not self._write_noise:
            self.weights[...] = w
            return
        self.params["persistent_weights"][...] = w
        if noisy:
            with self._op():
                z = self._draw(rng.Stream.WRITE_NOISE, 1)
            w = w + F32(self.device.write_noise_std * self.device.dw_min) * z
        self.weights[...] = w

    def read_weights(self, n_reads: int = 1) -> np.ndarray:
        """Estimate ``W`` as hardware would: forward reads of one-hot inputs, averaged over ``n_reads``.

        Returns:
            float32 ``(out, in)`` NumPy array (noisy: it carries the forward IO's noise and quantisation).
        """
        if n_reads < 1:
            raise ValueError(f"n_reads must be >= 1, got {n_reads}")
        eye = self.xp.eye(self.in_size, dtype=F32)
        total = sum(self.forward(eye) for _ in range(n_reads))
        return to_numpy(total.T / F32(n_reads))

    def program_weights(self, target, *, n_iterations: int = 50, n_reads: int = 1, tolerance: float = 0.0):
        """Write ``target`` through pulses: iterate noisy read, error, pulsed column updates.

        Each iteration reads the weights (:meth:`read_weights`) and applies ``update(x=e_j, d=-(target - read)[:, j],
        lr=1)`` for all columns ``j``; it stops early once the read error's max is below ``tolerance``.

        Returns:
            the max absolute error of the last read, float.
        """
        target = np.asarray(to_numpy(target), dtype=F32)
        if target.shape != self.shape:
            raise ValueError(f"{self!r}: target must have shape {self.shape}, got {target.shape}")
        eye = np.eye(self.in_size, dtype=F32)
        err = np.inf
        for _ in range(n_iterations):
            diff = target - self.read_weights(n_reads)
            err = float(np.abs(diff).max())
            if err <= tolerance:
                break
            self.update(eye, -diff.T, 1.0)
        return err

    # ---- hidden parameters ---------------------------------------------------------------------
    def hidden_parameters(self) -> dict:
        """Per-device hidden parameters as float32 ``(out, in)`` NumPy arrays (copies)."""
        return {k: to_numpy(v).copy() for k, v in self.params.items()}

    def set_hidden_parameters(self, params: dict) -> None:
        """Replace hidden parameters (names and shapes must match :meth:`hidden_parameters`)."""
        for name, value in params.items():
            if name not in self.params:
                raise ValueError(f"{self!r}: unknown hidden parameter {name!r}; known: {sorted(self.params)}")
            value = np.asarray(to_numpy(value), dtype=F32)
            if value.shape != self.shape:
                raise ValueError(f"{self!r}: hidden parameter {name!r} must have shape {self.shape}")
            self.params[name][...] = to_backend(value, self.backend)

    # ---- periodic device operations (formulas: crossbar.devices.base) ---------------------------
    def _op(self):
        """Context of one periodic operation: its draws are named by the ``ops`` counter, read from device
        memory on the GPU (so graph replays draw afresh) and advanced when the operation's draws are issued."""

        @contextlib.contextmanager
        def op():
            yield self._advance("ops", 1)
            if self.backend == "cupy":
                _cuda.counter_add(self.device_counters["ops"], 1, f"{self!r} periodic operation")
        return op()

    def _draw(self, stream, c2: int = 0, normal: bool = True):
        """Normals (or uniforms) of the tile's shape named ``(element, ops, c2, stream)``; inside :meth:`_op`."""
        if self.backend == "cupy":
            n = self.out_size * self.in_size
            return _cuda.random_rows(self.key, int(stream), 1, n, 0, c2, normal,
                                     ctr=self.device_counters["ops"]).reshape(self.shape)
        fn = rng.normal_array if normal else rng.uniform_array
        return fn(self.key, stream, self.shape, c1=self.counters["ops"] - 1, c2=c2)

    def _noise(self, stream, c2: int = 0):
        with self._op():
            return self._draw(stream, c2)

    def decay(self, alpha: float = 1.0) -> None:
        """One decay step toward the reset bias: ``w <- (w - b)(1 + alpha (s - 1)) + b``, then clip."""
        if not self.pulsed:
            if self.device.lifetime > 1:
                self.weights *= F32(1 - alpha / self.device.lifetime)
            return
        p, g = self.params, self._device_weights()
        g = (g - p["reset_bias"]) * (F32(1) + F32(alpha) * (p["decay_scales"] - F32(1))) + p["reset_bias"]
        self._store_device_weights(clip_to_bounds(g, p))

    def diffuse(self) -> None:
        """One diffusion step: ``w += rate * xi``, then clip."""
        xi = self._noise(rng.Stream.DIFFUSION)
        if not self.pulsed:
            self.weights += F32(self.device.diffusion) * xi
            return
        self._store_device_weights(clip_to_bounds(self._device_weights() + self.params["diffusion_rates"] * xi,
                                                  self.params))

    def reset_columns(self, start: int = 0, n: int = 1, prob: float = 1.0) -> None:
        """Reset ``n`` columns from ``start`` (wrapping around), each device with probability ``prob``:
        ``w = reset_bias + reset_std * xi``, then clip."""
        cols = (start + np.arange(n)) % self.in_size
        mask = np.zeros(self.shape, bool)
        mask[:, cols] = True
        mask = to_backend(mask, self.backend)
        with self._op():
            if prob < 1:
                mask &= self._draw(rng.Stream.RESET, 0, normal=False) < F32(prob)
            xi = self._draw(rng.Stream.RESET, 1)
        std = F32(self.device.reset_std)
        if not self.pulsed:
            self.weights[...] = self.xp.where(mask, std * xi, self.weights)
            return
        p = self.params
        g = self.xp.where(mask, p["reset_bias"] + std * xi, self._device_weights())
        self._store_device_weights(clip_to_bounds(g, p))

    def clip_weights(self, clip: float = -1.0) -> None:
        """Clip to the device bounds (``clip < 0``) or to ``[max(b-, -clip), min(b+, clip)]``."""
        if not self.pulsed:
            if clip >= 0:
                self.weights[...] = self.xp.clip(self.weights, -clip, clip)
            return
        g = clip_to_bounds(self._device_weights(), self.params)
        if clip >= 0:
            g = self.xp.clip(g, F32(-clip), F32(clip))
        self._store_device_weights(g)

    def post_update_step(self) -> None:
        """Once per mini-batch (called by the optimizer): diffusion if configured, then decay."""
        if self.device.diffusion > 0:
            self.diffuse()
        if self.device.lifetime > 0:
            self.decay()

    def drift(self, dt: float) -> None:
        """Advance the power-law drift of pulsed devices by ``dt`` (units of ``drift.t_0``); the full rule is in
        :mod:`crossbar.devices.base`.

        A device whose weight changed since the last call (by more than ``reset_tol``) restarts its clock
        from its new weight; the others follow ``w = w0 max(T - t_ij, 1)^-nu``.
        """
        if not self.pulsed or self.device.drift.nu <= 0:
            return
        if not dt >= 0:
            raise ValueError(f"{self!r}: drift dt must be >= 0, got {dt}")
        cfg, xp, p = self.device.drift, self.xp, self.params
        g = self._device_weights()
        if self.drift_state is None:
            self.drift_state = {"w0": g.copy(), "t": xp.zeros(self.shape, F32), "prev": g.copy(),
                                "T": np.zeros(1, np.float64)}
        st = self.drift_state
        st["T"][0] += dt / cfg.t_0
        T = F32(st["T"][0])
        moved = xp.abs(st["prev"] - g) > F32(cfg.reset_tol)
        st["t"][...] = xp.where(moved, T, st["t"])
        st["w0"][...] = xp.where(moved, g, st["w0"])
        with self._op():
            xi_nu = self._draw(rng.Stream.DRIFT, 0) if cfg.nu_std > 0 else None
            xi_w = self._draw(rng.Stream.DRIFT, 1) if cfg.w_noise_std > 0 else None
        nu = p["drift_nu"]
        if cfg.nu_std > 0:
            nu = nu + F32(cfg.nu_std) * nu * xi_nu
        if cfg.nu_k != 0:
            with np.errstate(invalid="ignore", divide="ignore"):
                nu = nu - F32(cfg.nu_k) * xp.log((g - F32(cfg.w_offset)) / F32(cfg.wg_ratio) + F32(cfg.g_offset)) \
                    + F32(cfg.nu_k * cfg.log_g0)
        f = xp.power(xp.maximum(T - st["t"], F32(1)), -nu)
        a = cfg.g_offset * cfg.wg_ratio + cfg.w_offset
        a = F32(0 if abs(a) < cfg.reset_tol else a)
        g = xp.where(moved, g, st["w0"] * f + a * (f - F32(1)))
        if cfg.w_noise_std > 0:
            g = g + F32(cfg.w_noise_std) * xi_w
        g = clip_to_bounds(g, p)
        st["prev"][...] = g
        self._store_device_weights(g)

    def _progress_tiles(self) -> list:
        """Tiles whose host counters a training step advances (compound tiles add their sub-tiles)."""
        return [self]

    def _host_state(self) -> np.ndarray:
        """Host-side progress beyond the counters (compound tiles: transfer pointers); empty here."""
        return np.zeros(0, np.int64)

    def _set_host_state(self, values) -> None:
        pass

    # ---- backend and state ---------------------------------------------------------------------
    def to(self, backend: str) -> "AnalogTile":
        """Move every array of the tile to ``backend`` ('numpy' or 'cupy'); returns the tile."""
        xp = get_xp(backend)  # validates the name and that the backend is usable
        if backend == "cupy":
            try:
                return self._to(backend, xp)
            except xp.cuda.memory.OutOfMemoryError as exc:
                self.to("numpy")  # leave the tile whole on the host
                raise MemoryError(f"{self!r}: GPU out of memory moving a {self.out_size} x {self.in_size} tile "
                                  f"({len(self.params) + 1} arrays of {4 * self.out_size * self.in_size} bytes): "
                                  f"{exc}") from exc
        return self._to(backend, xp)

    def _to(self, backend, xp):
        move = lambda a: to_backend(a, backend)  # noqa: E731
        self.weights = move(self.weights)
        # all hidden parameters live in one (n, out, in) array, rows in the order the kernels expect;
        # the dict entries are views of it
        names = [k for k in ("max_bound", "min_bound", "dwmin_up", "dwmin_down") if k in self.params]
        names += [k for k in getattr(self.device, "extra_names", ()) if k not in names]
        names += [k for k in self.params if k not in names]
        self.param_rows = {k: r for r, k in enumerate(names)}
        self.param_stack = xp.stack([move(self.params[k]) for k in names]) if names else xp.zeros((0,) + self.shape,
                                                                                               F32)
        self.params = {k: self.param_stack[r] for k, r in self.param_rows.items()}
        self.io_state = {d: {k: move(v) if hasattr(v, "shape") and v.ndim else v for k, v in s.items()}
                         for d, s in self.io_state.items()}
        if self.pulse_counts is not None:
            self.pulse_counts = {k: move(v) for k, v in self.pulse_counts.items()}
        if self.drift_state is not None:
            self.drift_state = {k: (v if k == "T" else move(v)) for k, v in self.drift_state.items()}
        self.backend = backend
        self._sync_device_state()
        return self

    def _sync_device_state(self) -> None:
        """Device copies of the RNG counters and device constants (cupy backend): kernels read the sample
        numbers from device memory, so a captured CUDA graph replays with fresh random numbers."""
        if self.backend != "cupy":
            self.device_counters = self.device_constants = None
            return
        xp = self.xp
        self.device_counters = {k: xp.asarray([v], dtype=xp.uint64) for k, v in self.counters.items()}
        self.device_constants = xp.asarray(_cuda.flat_constants(self.device)) if self.pulsed else None

    def state_dict(self) -> dict:
        """All mutable state as plain NumPy arrays (plus the config as JSON), for checkpoints."""
        state = {"weights": to_numpy(self.weights).copy(),
                 "counters": np.array([self.counters[c] for c in _COUNTERS], np.int64),
                 "seed": np.array(self.seed, dtype=np.uint64),
                 "config": np.array(json.dumps(self.config.to_dict()))}
        for k, v in self.params.items():
            state[f"params/{k}"] = to_numpy(v).copy()
        for direction, s in self.io_state.items():
            for k, v in s.items():  # an unset optional scalar (None) is stored as an empty array
                state[f"io/{direction}/{k}"] = np.zeros(0, F32) if v is None else np.array(to_numpy(v), copy=True)
        for k, v in (self.pulse_counts or {}).items():
            state[f"pulse_counts/{k}"] = to_numpy(v).copy()
        for k, v in (self.drift_state or {}).items():
            state[f"drift/{k}"] = to_numpy(v).copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output. Checks config, names and shapes before changing anything."""
        cfg = Config.from_dict(json.loads(str(state["config"])))
        if cfg != self.config:
            raise ValueError(f"{self!r}: checkpoint config differs from the tile's config")
        mine = AnalogTile.state_dict(self)  # this class's arrays (compound tiles add their own)
        expected = set(mine)
        have = set(state)
        optional = {k for k in have | expected if k.startswith("drift/")}
        if (have - optional) != (expected - optional):
            raise ValueError(f"{self!r}: checkpoint arrays differ: missing {sorted(expected - have - optional)}, "
                             f"unexpected {sorted(have - expected - optional)}")
        if np.shape(state["weights"]) != self.shape:
            raise ValueError(f"{self!r}: checkpoint weights have shape {np.shape(state['weights'])}")
        for k in have - {"config", "seed", "counters"}:
            if not k.startswith("drift/") and k in expected and np.shape(state[k]) != np.shape(mine[k]):
                raise ValueError(f"{self!r}: checkpoint array {k!r} has shape {np.shape(state[k])}")
        move = lambda a: to_backend(np.array(a), self.backend)  # noqa: E731
        self.seed = int(state["seed"])
        self.key = rng.seed_key(self.seed, 0)
        self.counters = dict(zip(_COUNTERS, (int(c) for c in state["counters"])))
        self.weights = move(np.asarray(state["weights"], F32))
        for k in self.params:  # in place: on the GPU the entries are views of one stacked array
            self.params[k][...] = move(np.asarray(state[f"params/{k}"], F32))
        for direction, s in self.io_state.items():
            for k in s:
                v = np.asarray(state[f"io/{direction}/{k}"])
                s[k] = None if v.size == 0 or v.dtype == object and v.item() is None else \
                    (move(v) if v.ndim else v[()])  # a scalar keeps its dtype (float32)
        if self.pulse_counts is not None:
            self.pulse_counts = {k: move(state[f"pulse_counts/{k}"]) for k in self.pulse_counts}
        drift = {k.split("/", 1)[1]: np.array(v) for k, v in state.items() if k.startswith("drift/")}
        self.drift_state = ({k: (v if k == "T" else move(v)) for k, v in drift.items()} if drift else None)
        self._sync_device_state()
