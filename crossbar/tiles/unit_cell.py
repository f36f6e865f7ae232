"""Unit cells: several devices at every cross-point, as in IBM's aihwkit 1.1 (``VectorUnitCell``,
``ReferenceUnitCell``, ``OneSidedUnitCell``). Each device is a sub-tile; the tile's visible weight is reduced from
theirs, and the tile offers the interface of :class:`~crossbar.tiles.tile.AnalogTile`.

* :class:`VectorUnitCell`: ``W = sum_k gamma_k W_k`` (``gamma_k = 1/n`` by default). The update policy picks the
  devices a mini-batch's update goes to: ``all``, ``single_fixed`` (device ``first_update_idx``),
  ``single_sequential`` (the next device every mini-batch, starting at ``first_update_idx``) or ``single_random``
  (a uniform pick every mini-batch, drawn from the tile's key and its update cycle). The incumbent counts its cycles
  in vector updates on the CPU and in mini-batches on the GPU; here they are mini-batches on both backends. Each
  device draws its own pulse trains (the incumbent applies one set of trains to all of them: the expected update is
  the same, the coincidence noise here is independent per device). ``set_weights(W)`` sets every device to ``W``
  (``single_fixed``: only the selected one); the periodic operations act on every device.
* :class:`ReferenceUnitCell`: two devices, ``W = W_0 - W_1``; only device 0 is updated, device 1 is a reference
  (zero unless set through :meth:`VectorUnitCellTile.set_hidden_parameters` or its sub-tile).
* :class:`OneSidedUnitCell`: a pair of devices that only ever move up, ``W = g+ - g-`` (``g+`` device 1, ``g-``
  device 0): a coincidence that raises ``W`` is an up pulse on ``g+``, one that lowers it an up pulse on ``g-``. Both
  devices share one set of pulse trains (the same key and update counter; each keeps only its sign), so their
  per-pulse noise is independent (a weight and sample pulse only one of them). Every ``refresh_every`` mini-batches
  (``units_in_mbatch``; else vector updates, rounded to the batch ends) both are read through ``refresh_forward``;
  where ``wp > wm ? (wp / w+ > upper and wm / w- > lower) : (wp / w+ > lower and wm / w- > upper)`` with ``w+-`` the
  devices' ``w_max``, both devices are reset and ``|wp - wm|`` is written onto the one that was larger with pulses
  of ``refresh_update`` (lr 1, one column per sample). ``refresh_counts`` counts the refreshed devices.
  ``set_weights(W)``: ``g+ = max(W, 0)``, ``g- = max(-W, 0)``.
"""

from __future__ import annotations

import numpy as np

from ..backend import capturing, implementation, to_numpy
from ..config import DeviceConfig, IOParameters, PulseType, TileConfig, UpdateParameters, config, param
from ..physics import rng
from ..physics.devices import ConstantStepDevice, PulsedDevice
from .tile import TILE_CLASSES, make_tile, out_of_memory, update_inputs
from .transfer import _CompoundTile, _sub_seed

F32 = np.float32
POLICIES = ("all", "single_fixed", "single_sequential", "single_random")


def _check_devices(cell, counts) -> None:
    devices = cell.unit_cell_devices
    if not isinstance(devices, tuple) or len(devices) not in counts:
        cell._fail("unit_cell_devices", devices, f"a tuple of {' or '.join(map(str, counts))} device configs")
    for dev in devices:
        if not isinstance(dev, PulsedDevice):
            cell._fail("unit_cell_devices", dev, "pulsed device configs")


@config
class VectorUnitCell(DeviceConfig):
    """Several devices per cross-point, ``W = sum_k gamma_k W_k``, updated by a policy (module docstring)."""

    unit_cell_devices: tuple = param((ConstantStepDevice(), ConstantStepDevice()), "the devices of a cross-point")
    update_policy: str = param("all", "which devices a mini-batch's update goes to", choices=POLICIES)
    first_update_idx: int = param(0, "the device of single_fixed, and the first of single_sequential", lo=0,
                                  integer=True)
    gamma_vec: tuple = param((), "the weights gamma_k of the devices in W (empty: 1/n each)")

    def validate(self):
        _check_devices(self, range(1, 65))
        if self.first_update_idx >= len(self.unit_cell_devices):
            self._fail("first_update_idx", self.first_update_idx, f"< {len(self.unit_cell_devices)}")
        if self.gamma_vec and len(self.gamma_vec) != len(self.unit_cell_devices):
            self._fail("gamma_vec", self.gamma_vec, f"{len(self.unit_cell_devices)} values (one per device)")

    def gammas(self) -> tuple:
        n = len(self.unit_cell_devices)
        return tuple(float(g) for g in self.gamma_vec) if self.gamma_vec else (1.0 / n,) * n


@config
class ReferenceUnitCell(VectorUnitCell):
    """``W = W_0 - W_1``: device 0 learns, device 1 is a fixed reference."""

    update_policy: str = param("single_fixed", "which devices a mini-batch's update goes to", choices=("single_fixed",))
    gamma_vec: tuple = param((1.0, -1.0), "the weights of the two devices in W")

    def validate(self):
        _check_devices(self, (2,))
        super().validate()


@config
class OneSidedUnitCell(DeviceConfig):
    """A pair of devices that only move up, ``W = g+ - g-``, with refresh (module docstring)."""

    unit_cell_devices: tuple = param((ConstantStepDevice(),), "the device of both sides, or (g-, g+)")
    refresh_every: int = param(0, "mini-batches (units_in_mbatch) or vector updates between refreshes; 0 = never",
                               lo=0, integer=True)
    units_in_mbatch: bool = param(True, "refresh_every counts mini-batches")
    refresh_upper_thres: float = param(0.75, "refresh criterion: upper fraction of w_max", lo=0, hi=1)
    refresh_lower_thres: float = param(0.25, "refresh criterion: lower fraction of w_max", lo=0, hi=1)
    refresh_forward: IOParameters = param(IOParameters(), "IO of the refresh reads")
    refresh_update: UpdateParameters = param(UpdateParameters(), "update settings of the refresh writes")
    copy_inverted: bool = param(False, "device 1 as the mirror of device 0 (not implemented: must be False)")

    def validate(self):
        _check_devices(self, (1, 2))
        if self.copy_inverted:
            self._fail("copy_inverted", True, "False (a mirrored device 1 is not implemented)")

    def devices(self) -> tuple:
        """``(g-, g+)``."""
        d = self.unit_cell_devices
        return (d[0], d[-1])


class _UnitCellTile(_CompoundTile):
    """Sub-tiles made from the cell's devices (forward IO ``io``), the host-side cycle count, the visible weight."""

    def _init_cell(self, devices, io: IOParameters, seeds, construction) -> None:
        if self.config.update.pulse_type in (PulseType.NONE, PulseType.NONE_WITH_DEVICE):
            raise ValueError(f"{self!r}: unit cells need a pulsed update (pulse_type {self.config.update.pulse_type})")
        self.sub = [make_tile(self.out_size, self.in_size,
                              TileConfig(device=dev if c is None else dev.replace(construction_seed=c), forward=io,
                                         backward=io, update=self.config.update), seed=s)
                    for dev, s, c in zip(devices, seeds, construction)]
        for t in self.sub:
            t.check_finite = False  # the cell validates its inputs once
        self.state, self.cycles = {}, 0

    def _refresh(self) -> None:
        w = sum(F32(g) * t.weights for g, t in zip(self.gam, self.sub))
        if type(self.weights) is type(w):
            self.weights[...] = w  # in place: a captured CUDA graph holds the address of the visible weights
        else:
            self.weights = w

    def replayed(self, count: int) -> None:
        self.cycles += count

    def reset_columns(self, start: int = 0, n: int = 1, prob: float = 1.0, *, mask=None) -> None:
        if mask is not None:
            raise NotImplementedError(f"{self!r}: element-wise resets of a unit cell")
        self._each("reset_columns", start, n, prob)  # (each device draws its own selection)


class VectorUnitCellTile(_UnitCellTile):
    """A :class:`VectorUnitCell` (or :class:`ReferenceUnitCell`) tile."""

    def __init__(self, out_size, in_size, config: TileConfig, *, seed: int = 0, backend: str = "numpy"):
        super().__init__(out_size, in_size, config, seed=seed)
        cc = self.cc = config.device
        n = len(cc.unit_cell_devices)
        self._init_cell(cc.unit_cell_devices, IOParameters(is_perfect=True), [_sub_seed(seed, k) for k in range(n)],
                        [None] * n)
        self.gam = cc.gammas()
        self._refresh()
        if backend != "numpy":
            self.to(backend)

    def _targets(self) -> list:
        """The devices this mini-batch's update goes to (advances the cycle)."""
        cc, n = self.cc, len(self.sub)
        if cc.update_policy == "all":
            return list(range(n))
        if cc.update_policy != "single_fixed" and capturing(self.backend):
            # the pick is made on the host: a replay would repeat the captured one
            raise RuntimeError(f"{self!r}: update policy {cc.update_policy!r} cannot be captured in a CUDA graph")
        if cc.update_policy == "single_sequential":
            return [(cc.first_update_idx + self.cycles) % n]
        if cc.update_policy == "single_random":
            u = float(rng.uniform(self.key, rng.Stream.UNIT_CELL, self.cycles)[0])
            return [min(int(u * n), n - 1)]
        return [cc.first_update_idx]

    def update(self, x, d, lr: float):
        """``W -= lr d^T x`` on the devices the policy picks."""
        x, d, lr = update_inputs(self, x, d, lr)
        for k in self._targets():
            self.sub[k].update(x, d, lr)
        self.cycles += 1
        self._advance("update", x.shape[0])
        self._refresh()

    def set_weights(self, weights) -> None:
        """Every device (``single_fixed``: the selected one) to ``weights``."""
        fixed = self.cc.update_policy == "single_fixed"
        for k, t in enumerate(self.sub):
            if not fixed or k == self.cc.first_update_idx:
                t.set_weights(weights)
        self._refresh()

    def _host_state(self) -> np.ndarray:
        return np.array([self.cycles], np.int64)

    def _set_host_state(self, values) -> None:
        self.cycles = int(values[0])


class OneSidedTile(_UnitCellTile):
    """A :class:`OneSidedUnitCell` tile: ``sub[0]`` is ``g-``, ``sub[1]`` is ``g+``."""

    def __init__(self, out_size, in_size, config: TileConfig, *, seed: int = 0, backend: str = "numpy"):
        super().__init__(out_size, in_size, config, seed=seed)
        cc = self.cc = config.device
        devices = cc.devices()
        construction = [d.construction_seed if d.construction_seed is not None else _sub_seed(seed, k)
                        for k, d in enumerate(devices)]
        shared = _sub_seed(seed, 0)  # one runtime key: both devices see the same pulse trains
        self._init_cell(devices, cc.refresh_forward, [shared, shared], construction)
        for name in ("forward", "backward", "ops"):  # but their reads and resets draw apart
            self.sub[0]._advance(name, 2**31)
        self.gam = (-1.0, 1.0)
        self.vec = 0
        self.state = {"refresh_counts": np.zeros((), np.int64)}
        self._refresh()
        if backend != "numpy":
            self.to(backend)

    @property
    def refresh_counts(self) -> int:
        """Devices refreshed so far (each refresh of a cross-point counts once)."""
        return int(self.state["refresh_counts"])

    def _pulse(self, x, d, lr: float, cfg: UpdateParameters, targets) -> None:
        """Pulsed updates with ``cfg`` of the ``(sub-tile, only)`` targets from the shared trains; both devices'
        update counters advance alike, so the trains stay shared."""
        for t, only in targets:
            with out_of_memory(t, "update", x.shape[0]):
                implementation("pulsed_update", t.backend)(t.weights, t.param_stack, x, d, lr,
                                                           t.update_plan._replace(cfg=cfg), t.key, t._counter("update"),
                                                           t.pulse_counts, None, only)
        for t in self.sub:
            t._advance("update", x.shape[0])

    def update(self, x, d, lr: float):
        """Up pulses on ``g+`` where ``W`` rises, on ``g-`` where it falls; then the refresh when due."""
        x, d, lr = update_inputs(self, x, d, lr)
        batch, cc = x.shape[0], self.cc
        self._pulse(x, d, lr, self.config.update, [(self.sub[1], 1), (self.sub[0], 2)])
        self._advance("update", batch)
        self._batch = batch
        period = cc.refresh_every * (batch if cc.units_in_mbatch else 1)
        if period and (self.vec + batch) // period > self.vec // period:
            if period != batch and capturing(self.backend):
                raise RuntimeError(f"{self!r}: a refresh every {cc.refresh_every} batches cannot be captured in a "
                                   "CUDA graph (refresh_every = 1 with units_in_mbatch can)")
            self.refresh()
        self.vec += batch
        self._refresh()

    def refresh(self) -> None:
        """Read both devices, and reset and rewrite the cross-points the criterion selects (module docstring)."""
        cc, xp = self.cc, self.xp
        eye = xp.eye(self.in_size, dtype=F32)
        wm, wp = (t.forward(eye).T for t in self.sub)
        top_m, top_p = (abs(dev.w_max) for dev in cc.devices())
        up, low = F32(cc.refresh_upper_thres), F32(cc.refresh_lower_thres)
        sel = xp.where(wp > wm, (wp / F32(top_p) > up) & (wm / F32(top_m) > low),
                       (wp / F32(top_p) > low) & (wm / F32(top_m) > up))
        for t in self.sub:
            t.reset_columns(mask=sel)
        diff = xp.where(sel, wp - wm, F32(0))
        self._pulse(eye, -xp.maximum(diff, F32(0)).T, 1.0, cc.refresh_update, [(self.sub[1], 0)])
        self._pulse(eye, -xp.maximum(-diff, F32(0)).T, 1.0, cc.refresh_update, [(self.sub[0], 0)])
        self.state["refresh_counts"] += sel.sum()
        self._refresh()

    def set_weights(self, weights) -> None:
        """``g+ = max(W, 0)``, ``g- = max(-W, 0)``."""
        w = np.asarray(to_numpy(weights), dtype=F32)
        self.sub[1].set_weights(np.maximum(w, F32(0)))
        self.sub[0].set_weights(np.maximum(-w, F32(0)))
        self._refresh()

    def replayed(self, count: int) -> None:
        self.vec += count * self._batch

    def _host_state(self) -> np.ndarray:
        return np.array([self.vec], np.int64)

    def _set_host_state(self, values) -> None:
        self.vec = int(values[0])


TILE_CLASSES.update({VectorUnitCell: VectorUnitCellTile, OneSidedUnitCell: OneSidedTile})
