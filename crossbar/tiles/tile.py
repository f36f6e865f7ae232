"""AnalogTile: one crossbar array of ``out_size x in_size`` resistive devices.

A tile holds a frozen :class:`~crossbar.config.TileConfig` and mutable arrays: the weights ``W``
(float32 ``(out, in)``), the per-device hidden parameters, per-direction IO state, RNG counters, and
optionally pulse counters and drift state. It offers the three operations of analog training
(Gokmen & Vlasov 2016), each with its non-idealities:

* ``forward(x)``: ``y = W x`` through the forward IO (DAC, noise, bound management, ADC: :mod:`crossbar.physics.io`),
* ``backward(d)``: ``z = W^T d`` through the backward IO,
* ``update(x, d, lr)``: ``W -= lr d^T x`` as stochastic pulses (:mod:`crossbar.physics.pulses`) on the devices
  (:mod:`crossbar.physics.devices`),

plus exact and realistic access to the weights (``get_weights``/``set_weights`` are exact;
``read_weights`` estimates through noisy reads; :func:`crossbar.tiles.characterize.program_weights` writes
through pulses) and the periodic device operations (decay, diffusion, reset, clip, drift).

Randomness: the runtime key is ``seed_key(seed, 0)``; device-to-device draws use
``seed_key(construction_seed or seed, 1)`` (and ``2``/``3`` for the forward/backward IO lines), so the
same seed always builds the same devices and replays the same noise.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..backend import get_xp, implementation, to_backend, to_numpy
from ..config import PulseType, TileConfig
from ..physics import io, periodic, pulses, rng
from ..physics.devices import IdealDevice, PulsedDevice
from ..physics.devices.base import clip_to_bounds
from . import state

F32 = np.float32
#: the tile's counters, in the order of its counter array: vectors updated, read forward and backward, periodic
#: operations; each names the random draws of its operations
COUNTERS = ("update", "forward", "backward", "ops")


class AnalogTile:
    """An analog crossbar tile.

    Args:
        out_size: number of output lines (rows of ``W``).
        in_size: number of input lines (columns of ``W``).
        config: the tile's :class:`TileConfig` (default: ConstantStep device, default IO and update).
        seed: seed of all runtime randomness (and of the device draws unless the device names a
            ``construction_seed``); an int in ``[0, 2**64)``.
        backend: ``"numpy"`` or ``"cupy"``.

    Its state is plain arrays on its backend (:mod:`crossbar.tiles.state`); its operations reach the backend only
    through :func:`crossbar.backend.implementation`.

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
        self.out_size, self.in_size, self.config, self.seed = checked_arguments(out_size, in_size, config, seed)
        device = self.config.device
        if self.config.update.pulse_type == PulseType.NONE and isinstance(device, PulsedDevice):
            device = IdealDevice(reset_std=device.reset_std)  # a floating-point update: no device physics
        self.device = device
        self.key = rng.seed_key(self.seed, 0)
        own_seed = getattr(device, "construction_seed", None)  # compounds: their sub-devices carry seeds
        d2d_seed = own_seed if own_seed is not None else self.seed
        shape = (self.out_size, self.in_size)
        params = device.sample(shape, rng.seed_key(d2d_seed, 1)) if self.pulsed else {}
        self.param_rows, self.param_stack = state.stack_parameters(params, device)
        self.io_state = {"forward": io.sample_io_state(self.config.forward, self.out_size, rng.seed_key(d2d_seed, 2)),
                         "backward": io.sample_io_state(self.config.backward, self.in_size, rng.seed_key(d2d_seed, 3),
                                                        transposed=True)}
        self.backend = "numpy"
        self.weights = np.zeros(shape, F32)
        self.counter_array = np.zeros(len(COUNTERS), np.uint64)
        self.pulse_counts = ({"up": np.zeros(shape, np.int64), "down": np.zeros(shape, np.int64)}
                             if self.pulsed and device.count_pulses else None)
        self.drift_state = None
        self._derived()
        if backend != "numpy":
            self.to(backend)

    def _derived(self) -> None:
        """The views and the plan that follow from the arrays (after construction, a move or a load)."""
        self.params = {k: self.param_stack[r] for k, r in self.param_rows.items()}
        self.update_plan = (pulses.update_plan(self.device, self.config.update, self.param_rows, self.xp)
                            if self.pulsed else None)

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

    @property
    def counters(self) -> dict:
        """The counters as host ints, ``{name: value}`` (one device read on the GPU)."""
        return dict(zip(COUNTERS, (int(c) for c in to_numpy(self.counter_array))))

    def __repr__(self):
        return (f"AnalogTile({self.out_size}, {self.in_size}, device={type(self.device).__name__}, "
                f"seed={self.seed}, backend={self.backend!r})")

    # ---- inputs and counters -------------------------------------------------------------------
    def _counter(self, name: str):
        """The ``(1,)`` view of counter ``name`` that the operations read (in device memory on the GPU)."""
        i = COUNTERS.index(name)
        return self.counter_array[i:i + 1]

    def _advance(self, name: str, n: int) -> None:
        counter = self._counter(name)
        counter += np.uint64(n)  # on the GPU a device operation, so a captured graph advances it on every replay

    # ---- MVMs ----------------------------------------------------------------------------------
    def forward(self, x):
        """Analog ``y = W x`` for inputs ``x`` ``(batch, in_size)`` or ``(in_size,)``: float32 ``(batch, out_size)``
        on the tile's backend."""
        return self._mvm(vectors(self, "x", x, self.in_size), False)

    def backward(self, d):
        """Analog ``z = W^T d`` for a batch of output gradients ``d`` (``(batch, out_size)``)."""
        return self._mvm(vectors(self, "d", d, self.out_size), True)

    def _mvm(self, v, transposed: bool):
        direction = "backward" if transposed else "forward"
        with out_of_memory(self, direction, v.shape[0]):
            y = implementation("mvm", self.backend)(self.weights, v, getattr(self.config, direction), self.key,
                                                    self._counter(direction), transposed, self.io_state[direction])
        self._advance(direction, v.shape[0])
        return y

    # ---- update --------------------------------------------------------------------------------
    def update(self, x, d, lr: float, *, _snap=None, _only: int = 0):
        """Apply ``W -= lr * d^T x`` (summed over the batch) as pulses, samples in batch order: ``x``
        ``(batch, in_size)`` forward inputs, ``d`` ``(batch, out_size)`` output gradients, ``lr`` a finite learning
        rate (weight units per unit of ``x d``)."""
        x, d, lr = update_inputs(self, x, d, lr)
        ptype = self.config.update.pulse_type
        if not self.pulsed or ptype in (PulseType.NONE, PulseType.NONE_WITH_DEVICE):
            self.weights -= F32(lr) * (d.T @ x)
            if ptype == PulseType.NONE_WITH_DEVICE and self.pulsed:
                self._store_device_weights(clip_to_bounds(self._device_weights(), self.params))
        else:
            with out_of_memory(self, "update", x.shape[0]):
                implementation("pulsed_update", self.backend)(self.weights, self.param_stack, x, d, lr,
                                                              self.update_plan, self.key, self._counter("update"),
                                                              self.pulse_counts, _snap, _only)
        self._advance("update", x.shape[0])

    # ---- weights -------------------------------------------------------------------------------
    def get_weights(self) -> np.ndarray:
        """The exact simulator weights, a float32 ``(out, in)`` NumPy copy."""
        return to_numpy(self.weights).copy()

    def set_weights(self, weights) -> None:
        """Set the weights exactly, clipped to the device bounds (write noise applied if configured)."""
        w = to_backend(matrix(self, "weights", weights), self.backend)
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
        """Estimate ``W`` as hardware would, by forward reads of one-hot inputs averaged over ``n_reads``: a float32
        ``(out, in)`` NumPy array with the forward IO's noise and quantisation."""
        if n_reads < 1:
            raise ValueError(f"n_reads must be >= 1, got {n_reads}")
        eye = self.xp.eye(self.in_size, dtype=F32)
        total = sum(self.forward(eye) for _ in range(n_reads))
        return to_numpy(total.T / F32(n_reads))

    # ---- hidden parameters ---------------------------------------------------------------------
    def hidden_parameters(self) -> dict:
        """Per-device hidden parameters as float32 ``(out, in)`` NumPy arrays (copies)."""
        return {k: to_numpy(v).copy() for k, v in self.params.items()}

    def set_hidden_parameters(self, params: dict) -> None:
        """Replace hidden parameters (names and shapes must match :meth:`hidden_parameters`)."""
        for name, value in params.items():
            if name not in self.params:
                raise ValueError(f"{self!r}: unknown hidden parameter {name!r}; known: {sorted(self.params)}")
            self.params[name][...] = to_backend(matrix(self, f"hidden parameter {name!r}", value, finite=False),
                                                self.backend)

    # ---- periodic device operations (formulas: crossbar.physics.periodic) ----------------------
    @contextlib.contextmanager
    def _op(self):
        """Context of one periodic operation: its draws are named by the ``ops`` counter (read in device memory
        on the GPU, so graph replays draw afresh), which advances once the operation's draws are issued."""
        yield
        self._advance("ops", 1)

    def _draw(self, stream, c2: int = 0, normal: bool = True):
        """Normals (or uniforms) of the tile's shape named ``(element, ops, c2, stream)``; inside :meth:`_op`."""
        fn = rng.normal_rows if normal else rng.uniform_rows
        return fn(self.key, stream, 1, self.out_size * self.in_size, 0, c2, xp=self.xp,
                  ctr=self._counter("ops")).reshape(self.shape)

    def decay(self, alpha: float = 1.0) -> None:
        """One decay step toward the reset bias: ``w <- (w - b)(1 + alpha (s - 1)) + b``, then clip."""
        if not self.pulsed:
            if self.device.lifetime > 1:
                self.weights *= F32(1 - alpha / self.device.lifetime)
            return
        self._store_device_weights(periodic.decay(self._device_weights(), self.params, alpha))

    def diffuse(self) -> None:
        """One diffusion step: ``w += rate * xi``, then clip."""
        with self._op():
            xi = self._draw(rng.Stream.DIFFUSION)
        if not self.pulsed:
            self.weights += F32(self.device.diffusion) * xi
            return
        self._store_device_weights(periodic.diffuse(self._device_weights(), self.params, xi))

    def reset_columns(self, start: int = 0, n: int = 1, prob: float = 1.0, *, mask=None) -> None:
        """Reset ``n`` columns from ``start`` (wrapping around), or the devices where ``mask`` (bool ``(out, in)``),
        each with probability ``prob``: ``w = reset_bias + reset_std * xi``, then clip."""
        if mask is None:
            mask = np.zeros(self.shape, bool)
            mask[:, (start + np.arange(n)) % self.in_size] = True
        mask = to_backend(mask, self.backend)
        with self._op():
            if prob < 1:
                mask = mask & (self._draw(rng.Stream.RESET, 0, normal=False) < F32(prob))
            xi = self._draw(rng.Stream.RESET, 1)
        if not self.pulsed:
            self.weights[...] = self.xp.where(mask, F32(self.device.reset_std) * xi, self.weights)
            return
        self._store_device_weights(periodic.reset(self._device_weights(), self.params, mask, xi,
                                                  self.device.reset_std))

    def clip_weights(self, clip: float = -1.0) -> None:
        """Clip to the device bounds (``clip < 0``) or to ``[max(b-, -clip), min(b+, clip)]``."""
        if not self.pulsed:
            if clip >= 0:
                self.weights[...] = self.xp.clip(self.weights, -clip, clip)
            return
        self._store_device_weights(periodic.clip(self._device_weights(), self.params, clip))

    def post_update_step(self) -> None:
        """Once per mini-batch (called by the optimizer): diffusion if configured, then decay."""
        if self.device.diffusion > 0:
            self.diffuse()
        if self.device.lifetime > 0:
            self.decay()

    def drift(self, dt: float) -> None:
        """Advance the power-law drift of pulsed devices by ``dt`` (units of ``drift.t_0``;
        :func:`crossbar.physics.periodic.drift`). A device whose weight changed since the last call (by more
        than ``reset_tol``) restarts its clock from its new weight; the others follow ``w = w0 max(T - t_ij, 1)^-nu``.
        """
        if not self.pulsed or self.device.drift.nu <= 0:
            return
        if not dt >= 0:
            raise ValueError(f"{self!r}: drift dt must be >= 0, got {dt}")
        cfg, g = self.device.drift, self._device_weights()
        if self.drift_state is None:
            self.drift_state = periodic.new_drift_state(g, self.xp)
        with self._op():
            xi_nu = self._draw(rng.Stream.DRIFT, 0) if cfg.nu_std > 0 else None
            xi_w = self._draw(rng.Stream.DRIFT, 1) if cfg.w_noise_std > 0 else None
        self._store_device_weights(periodic.drift(g, self.params, self.drift_state, cfg, dt, xi_nu, xi_w))

    # ---- progress outside the arrays (compound tiles: transfer pointers; none here) --------------
    def _host_state(self) -> np.ndarray:
        return np.zeros(0, np.int64)

    def _set_host_state(self, values) -> None:
        pass

    def replayed(self, count: int) -> None:
        """``count`` captured steps were replayed: host-side progress follows (the arrays advanced on the device)."""

    # ---- backend and state (crossbar.tiles.state) ----------------------------------------------
    def to(self, backend: str) -> "AnalogTile":
        """Move every array of the tile to ``backend`` ('numpy' or 'cupy'); returns the tile. Out of memory on the
        way, the tile stays whole on the host."""
        get_xp(backend)  # validates the name and that the backend is usable
        try:
            self._to(backend)
        except MemoryError as exc:
            self._to("numpy")
            raise MemoryError(f"{self!r}: out of memory moving a {self.out_size} x {self.in_size} tile to {backend} "
                              f"({len(self.params) + 1} arrays of {4 * self.out_size * self.in_size} bytes): "
                              f"{exc}") from exc
        return self

    def _to(self, backend: str) -> None:
        state.move(self, backend)
        self._derived()

    def state_dict(self) -> dict:
        """All mutable state as plain NumPy arrays (plus the config as JSON), for checkpoints."""
        return state.state_dict(self)

    def load_state_dict(self, saved: dict) -> None:
        """Restore :meth:`state_dict` output. Checks config, names and shapes before changing anything."""
        state.load_state_dict(self, saved)


# ---- input checks (shared by every tile class) -----------------------------------------------------
def vectors(tile, name: str, a, size: int):
    """Validate a batch of vectors: ``(batch, size)`` or ``(size,)`` -> float32 ``(batch, size)``."""
    xp = tile.xp
    a = to_backend(a, tile.backend) if hasattr(a, "__array__") or hasattr(a, "__cuda_array_interface__") \
        else xp.asarray(a)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != size:
        raise ValueError(f"{tile!r}: {name} must have shape (batch, {size}) or ({size},), "
                         f"got {tuple(a.shape)}")
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{tile!r}: {name} must be real numbers, got dtype {a.dtype}")
    with np.errstate(over="ignore"):  # an overflow is reported below
        a32 = xp.ascontiguousarray(a, dtype=F32)
    if tile.check_finite and not bool(xp.isfinite(a32).all()):
        if not bool(xp.isfinite(a).all()):
            raise ValueError(f"{tile!r}: {name} contains NaN or Inf")
        raise ValueError(f"{tile!r}: {name} overflows float32: its largest magnitude is "
                         f"{float(xp.abs(a).max()):.6g}, float32 holds at most {float(np.finfo(F32).max):.6g}")
    return a32


def update_inputs(tile, x, d, lr):
    """Validated ``(x, d, lr)`` of an update: float32 ``(batch, in)``, ``(batch, out)``, a finite float."""
    x = vectors(tile, "x", x, tile.in_size)
    d = vectors(tile, "d", d, tile.out_size)
    if x.shape[0] != d.shape[0]:
        raise ValueError(f"{tile!r}: x and d must have the same batch size, got {x.shape[0]} and {d.shape[0]}")
    try:
        if isinstance(lr, (str, bytes, bool)):
            raise TypeError
        lr = float(lr)
    except (TypeError, ValueError):
        raise TypeError(f"{tile!r}: lr must be a finite real number, got {lr!r}") from None
    if not np.isfinite(lr):
        raise ValueError(f"{tile!r}: lr must be finite, got {lr}")
    return x, d, lr


#: compound device config class -> the tile class that implements it (filed by the modules that define them)
TILE_CLASSES: dict = {}


def make_tile(out_size: int, in_size: int, config: TileConfig | None = None, *, seed: int = 0,
              backend: str = "numpy"):
    """The tile for ``config``: an :class:`AnalogTile`, or the tile class filed in :data:`TILE_CLASSES` for the
    device's config class or its nearest base (the Tiki-Taka family, mixed precision, unit cells). All offer the
    same interface."""
    config = TileConfig() if config is None else config
    cls = next((TILE_CLASSES[c] for c in type(config.device).__mro__ if c in TILE_CLASSES), AnalogTile)
    return cls(out_size, in_size, config, seed=seed, backend=backend)


def checked_arguments(out_size, in_size, config, seed) -> tuple:
    """``(out_size, in_size, config, seed)`` of a tile, validated (config None: the default :class:`TileConfig`)."""
    for name, v in (("out_size", out_size), ("in_size", in_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"AnalogTile: {name} must be a positive integer, got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"AnalogTile: seed must be an integer in [0, 2**64), got {seed!r}")
    config = TileConfig() if config is None else config
    if not isinstance(config, TileConfig):
        raise TypeError(f"AnalogTile: config must be a TileConfig, got {type(config).__name__}")
    return int(out_size), int(in_size), config, int(seed)


def matrix(tile, name: str, a, finite: bool = True) -> np.ndarray:
    """``a`` as a float32 NumPy array of the tile's shape ``(out, in)``; a clear error otherwise (and, with
    ``finite``, for NaN or Inf)."""
    a = np.asarray(to_numpy(a), dtype=F32)
    if a.shape != tile.shape:
        raise ValueError(f"{tile!r}: {name} must have shape {tile.shape}, got {a.shape}")
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{tile!r}: {name} contain NaN or Inf")
    return a


@contextlib.contextmanager
def out_of_memory(tile, op: str, batch: int):
    """Turn an out-of-memory error (CuPy's is a ``MemoryError``) into one naming the tile, operation and sizes."""
    try:
        yield
    except MemoryError as exc:
        raise MemoryError(f"{tile!r}: out of memory in {op} (batch {batch}, tile {tile.out_size} x "
                          f"{tile.in_size}): {exc}") from exc
