"""Named device and tile presets: functions that return configs (the presets of IBM's aihwkit 1.1).

The calibrated devices restate the incumbent's presets (IBM aihwkit 1.1, ``simulator/presets/devices.py``),
which cite their measurements: ReRAM with exponential steps (Gong et al., Nat. Commun. 2018), ReRAM with
soft bounds (Gong et al. 2022), capacitor-based cells (Li et al., VLSI 2018), ECRAM (Tang et al., IEDM 2018),
metal-oxide ECRAM (Kim et al., IEDM 2019), PCM (Nandakumar et al. 2020), and the device specification
of Gokmen & Vlasov 2016 (Front. Neurosci. 10:333).

``DEVICES`` maps a command-line name (``soft-bounds``, ``reram-es``, ...) to a function returning the device;
:func:`tile_config` wraps a device into a :class:`TileConfig`, with the preset IO and update settings for the
calibrated ones. :func:`build_config` builds a training algorithm around any device (aihwkit's ``build_config``).

``PRESETS`` maps the incumbent's named configurations (aihwkit 1.1, ``simulator/presets``), in kebab-case of their
class names (``AGADEcRamMOPreset`` is ``agad-ecram-mo-preset``), to functions returning them; :func:`preset`
builds one by name. The single-device, Tiki-Taka (Gokmen & Haensch 2020), TTv2, chopped TTv2 and AGAD (Rasch et
al. 2023/2024), mixed-precision, multi-device (``VectorUnitCell``) and PCM (``OneSidedUnitCell``) presets are there;
``PENDING_PRESETS`` lists the one this version cannot build, with the reason.
"""

from __future__ import annotations

import collections
import functools

from .config import DEVICE_MODELS, BoundManagement, IOParameters, NoiseManagement, TileConfig, UpdateParameters
from .physics.devices import ConstantStepDevice, ExpStepDevice, LinearStepDevice, SoftBoundsReferenceDevice
from .tiles.transfer import (ChoppedTransferCompound, DynamicTransferCompound, MixedPrecisionCompound, TransferCompound,
                             _sub_seed)
from .tiles.unit_cell import OneSidedUnitCell, VectorUnitCell


def preset_io() -> IOParameters:
    """IO of the calibrated presets: 7-bit DAC, 9-bit ADC, out_noise 0.1, out_bound 20 (aihwkit PresetIOParameters)."""
    return IOParameters(bound_management=BoundManagement.ITERATIVE, noise_management=NoiseManagement.ABS_MAX,
                        inp_res=1 / 126, inp_sto_round=False, out_bound=20.0, out_noise=0.1, out_res=1 / 510,
                        w_noise=0.0)


def standard_io() -> IOParameters:
    """8-bit DAC and ADC, out_noise 0.04, out_bound 10 (aihwkit StandardIOParameters)."""
    return IOParameters(inp_res=1 / 254, out_res=1 / 254, out_bound=10.0, out_noise=0.04,
                        bound_management=BoundManagement.ITERATIVE, noise_management=NoiseManagement.ABS_MAX)


def preset_update(desired_bl: int = 31) -> UpdateParameters:
    """Stochastic compressed pulses with update and BL management (aihwkit PresetUpdateParameters)."""
    return UpdateParameters(desired_bl=desired_bl, update_bl_management=True, update_management=True)


def reram_es() -> ExpStepDevice:
    """ReRAM with exponential step dependence: ~1000 states, strongly asymmetric, very noisy."""
    return ExpStepDevice(dw_min=0.00135, up_down=0.259359, w_max=1, w_min=-1, a=-0.5, b=-0.5, gamma_up=5,
                         gamma_down=5, A_up=-1.18445, A_down=-0.081404, dw_min_dtod=0.2, up_down_dtod=0.05,
                         w_max_dtod=0.3, w_min_dtod=0.3, dw_min_std=5.0, write_noise_std=75.0)


def reram_sb() -> SoftBoundsReferenceDevice:
    """ReRAM with soft bounds: ~1000 states, -400% asymmetry at w = 0.75, c2c noise 375%."""
    return SoftBoundsReferenceDevice(dw_min=0.002, up_down=0, w_max=1.25, w_min=-0.75, mult_noise=False,
                                     dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3 / 1.25,
                                     w_min_dtod=0.3 / 0.75, dw_min_std=3.75, write_noise_std=56)


def capacitor() -> LinearStepDevice:
    """Capacitor cell: 400 states, slight linear step change, leakage over 1e6 mini-batches."""
    return LinearStepDevice(dw_min=0.005, up_down=0, w_max=1, w_min=-1, mult_noise=False, gamma_up=0.05,
                            gamma_down=0.05, dw_min_dtod=0.1, up_down_dtod=0.06, w_max_dtod=0.07, w_min_dtod=0.07,
                            gamma_up_dtod=0.01, gamma_down_dtod=0.01, dw_min_std=0.3, write_noise_std=0,
                            mean_bound_reference=True, lifetime=1e6, lifetime_dtod=0.3)


def ecram() -> LinearStepDevice:
    """Electro-chemical RAM (ECRAM): ~1000 states, -75% asymmetry."""
    return LinearStepDevice(dw_min=0.002, up_down=0, w_max=1.1724, w_min=-0.8276, mult_noise=True,
                            gamma_up=0.1153, gamma_down=0.5085, dw_min_dtod=0.1, up_down_dtod=0.01,
                            w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
                            dw_min_std=0.3, mean_bound_reference=True)


def ecram_mo() -> LinearStepDevice:
    """Metal-oxide ECRAM: ~7000 small, noisy steps."""
    return LinearStepDevice(dw_min=2.8214e-4, up_down=0, w_max=1.1714, w_min=-0.8286, mult_noise=True,
                            gamma_up=0.4152, gamma_down=0.7342, dw_min_dtod=0.1, up_down_dtod=0.01,
                            w_max_dtod=0.05, w_min_dtod=0.05, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
                            dw_min_std=2.0, mean_bound_reference=True)


def idealized() -> ConstantStepDevice:
    """An idealised constant-step device with 10000 states."""
    return ConstantStepDevice(dw_min=0.0002, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0, up_down_dtod=0, w_max=1,
                              w_min=-1, w_max_dtod=0.3, w_min_dtod=0.3)


def gokmen_vlasov() -> ConstantStepDevice:
    """The RPU device specification of Gokmen & Vlasov 2016 on a [-1, 1] range."""
    return ConstantStepDevice(dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0, up_down_dtod=0.01, w_max=1,
                              w_min=-1, w_max_dtod=0.3, w_min_dtod=0.3)


def pcm_like() -> ExpStepDevice:
    """A bidirectional stand-in for a PCM differential pair: the PCM preset's abrupt, saturating, very noisy
    steps on a symmetric [-1, 1] range (large up steps near -1, large down steps near +1)."""
    return ExpStepDevice(dw_min=0.01, up_down=0, w_max=1, w_min=-1, a=-1, b=-1, gamma_up=2.5, gamma_down=2.5,
                         A_up=-27.235, A_down=-2.235, dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.1,
                         w_min_dtod=0.1, dw_min_std=0.6, dw_min_std_add=0.042, dw_min_std_slope=0.108)


def pcm_device() -> ExpStepDevice:
    """A phase-change memory device (aihwkit's PCMPresetDevice): set-only, abrupt saturating steps on [0, 2], very
    noisy, reset near 0."""
    return ExpStepDevice(dw_min=0.01, up_down=0, w_max=2, w_min=0, a=-1, b=0, gamma_up=2.5, gamma_down=2.5,
                         A_up=-27.235, A_down=-2.235, dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.1,
                         w_min_dtod=0, dw_min_std=0.6, dw_min_std_add=0.042, dw_min_std_slope=0.108, write_noise_std=0,
                         reset=0.01, reset_dtod=0.02)


def pcm() -> OneSidedUnitCell:
    """The PCM unit cell (aihwkit's PCMPresetUnitCell, Nandakumar et al. 2020): a pair of set-only PCM devices,
    ``W = g+ - g-``, refreshed after every mini-batch through the preset IO and update."""
    return OneSidedUnitCell(unit_cell_devices=(pcm_device(),), refresh_every=1, units_in_mbatch=True,
                            refresh_forward=preset_io(), refresh_update=preset_update(31))


#: command-line name -> function returning a device config: every device model under its ``cli_name`` (the live
#: registry, so a model defined later is included), then the calibrated presets
DEVICES = collections.ChainMap({
    "reram-es": reram_es,
    "reram-sb": reram_sb,
    "capacitor": capacitor,
    "ecram": ecram,
    "ecram-mo": ecram_mo,
    "idealized": idealized,
    "gokmen-vlasov": gokmen_vlasov,
    "pcm-like": pcm_like,
    "pcm": pcm,
}, DEVICE_MODELS)

#: names whose tiles use the preset IO and update settings (the calibrated devices)
CALIBRATED = ("reram-es", "reram-sb", "capacitor", "ecram", "ecram-mo", "idealized", "gokmen-vlasov", "pcm-like",
              "pcm")


def device(name: str):
    """The device config called ``name`` (see :data:`DEVICES`); a clear error lists the known names."""
    try:
        return DEVICES[name]()
    except KeyError:
        raise ValueError(f"unknown device {name!r}; choose one of: {', '.join(DEVICES)}") from None


def tile_config(name: str) -> TileConfig:
    """A :class:`TileConfig` for device ``name``: preset IO/update for calibrated devices, defaults otherwise."""
    dev = device(name)
    if name in CALIBRATED:
        return TileConfig(device=dev, forward=preset_io(), backward=preset_io(), update=preset_update())
    return TileConfig(device=dev)


# ---- training algorithms -------------------------------------------------------------------------------------

#: the training algorithms of :func:`build_config` (aihwkit's ``build_config`` names, with aliases)
ALGORITHMS = ("sgd", "tiki-taka", "ttv2", "c-ttv2", "agad", "mp")
_ALIASES = {"tt": "tiki-taka", "ttv1": "tiki-taka", "chopped-ttv2": "c-ttv2", "ttv3": "c-ttv2", "ttv4": "agad",
            "mixed-precision": "mp"}


def _without_management(io: IOParameters) -> IOParameters:
    """The IO of transfer reads: ``io`` with noise and bound management off."""
    return io.replace(noise_management="none", bound_management="none")


def _one_pulse(up: UpdateParameters, managed: bool = False) -> UpdateParameters:
    """``up`` with BL 1, update and BL management ``managed``: the transfer writes of the buffered family."""
    return up.replace(desired_bl=1, update_bl_management=managed, update_management=managed)


def _made(value):
    """``value``, or what it returns if it is a class or a function (aihwkit passes ``IOParameters`` itself, a
    preset class, or a function returning the parameters)."""
    return value() if callable(value) else value


def _either(name: str, value, alias: str, alias_value, default):
    """``value`` or the same argument under the incumbent's keyword ``alias`` (an error if both are given),
    made by :func:`_made`; ``default`` if neither is given."""
    if value is not None and alias_value is not None:
        raise TypeError(f"build_config: give {name!r} or its alias {alias!r}, not both")
    value = _made(alias_value if value is None else value)
    return default if value is None else value


def _seeded(dev, seed: int | None, k: int | None):
    """``dev`` with ``construction_seed`` set (if it has the field): ``seed`` for a single device, or for device
    ``k`` of a compound the seed a compound tile of seed ``seed`` gives its k-th sub-tile, so that the
    device-to-device draws are those of a tile built with ``seed``, whatever the tile's own seed."""
    if seed is None or not hasattr(dev, "construction_seed"):
        return dev
    return dev.replace(construction_seed=seed if k is None else _sub_seed(seed, k))


def _algorithm_cell(name: str, dev, io: IOParameters, up: UpdateParameters, seed: int | None):
    """The compound device of ``name`` (a canonical :data:`ALGORITHMS` name, not ``sgd``) and its main update."""
    devs = (_seeded(dev, seed, 0), _seeded(dev, seed, 1))
    common = dict(unit_cell_devices=devs, transfer_forward=_without_management(io))
    if name == "tiki-taka":
        return TransferCompound(transfer_update=up, units_in_mbatch=True, **common), up
    if name == "ttv2":
        return ChoppedTransferCompound(transfer_update=_one_pulse(up), in_chop_prob=0.0, units_in_mbatch=False,
                                       auto_scale=False, **common), up.replace(desired_bl=5)
    if name == "c-ttv2":
        return ChoppedTransferCompound(transfer_update=_one_pulse(up), units_in_mbatch=False, fast_lr=0.1,
                                       auto_scale=True, **common), up.replace(desired_bl=5)
    if name == "agad":  # the incumbent keeps NM/BM in this transfer IO but its engine turns them off
        return DynamicTransferCompound(transfer_update=_one_pulse(up, managed=True), auto_scale=True, fast_lr=0.1,
                                       units_in_mbatch=False, **common), up.replace(desired_bl=5)
    return MixedPrecisionCompound(device=devs[0]), up


def build_config(algorithm: str, device, io: IOParameters | None = None, update: UpdateParameters | None = None,
                 *, io_parameters=None, up_parameters=None, n_devices: int = 1,
                 construction_seed: int | None = None) -> TileConfig:
    """A tile config for training ``device`` with ``algorithm`` (as aihwkit 1.1's ``build_config``).

    Args:
        algorithm: ``sgd``, ``tiki-taka`` (TTv1), ``ttv2``, ``c-ttv2``, ``agad`` or ``mp`` (aliases: ``tt``,
            ``ttv1``, ``chopped-ttv2``, ``ttv3``, ``ttv4``, ``mixed-precision``).
        device: a pulsed device config, a :data:`DEVICES` name, or a class or function returning a device.
        io, io_parameters: forward/backward IO parameters (default ``IOParameters()``), or a class or function
            returning them; ``io_parameters`` is the incumbent's name (give one of the two).
        update, up_parameters: base update parameters (default ``UpdateParameters()``; TTv2/c-TTv2/AGAD use BL 5
            for the main update), or a class or function returning them; ``up_parameters`` as above.
        n_devices: devices per cross-point: for ``sgd`` more than one makes a :class:`VectorUnitCell` of copies
            updated one at a time at random (as the incumbent's); the incumbent ignores it for the other
            algorithms, which is refused here rather than ignored.
        construction_seed: if given, fixes the device-to-device draws: those of a tile built with this seed
            (each device's ``construction_seed``; a compound's sub-devices get the sub-seeds its tile would use).
            The incumbent's default ``0`` means "not set", which is ``None`` here.

    Returns:
        a :class:`TileConfig` (a compound device for all but ``sgd``).
    """
    name = _ALIASES.get(algorithm, algorithm)
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; choose one of: {', '.join(ALGORITHMS)}")
    if n_devices != 1 and name != "sgd":
        raise ValueError(f"n_devices={n_devices}: only 'sgd' uses several devices per cross-point (aihwkit "
                         f"ignores n_devices for {algorithm!r}); leave it at 1")
    dev = globals()["device"](device) if isinstance(device, str) else _made(device)
    io = _either("io", io, "io_parameters", io_parameters, IOParameters())
    up = _either("update", update, "up_parameters", up_parameters, UpdateParameters())
    if name == "sgd":
        dev = _seeded(dev, construction_seed, None)
        if n_devices != 1:
            dev = VectorUnitCell(unit_cell_devices=(dev,) * n_devices, update_policy="single_random")
        return TileConfig(device=dev, forward=io, backward=io, update=up)
    cell, up = _algorithm_cell(name, dev, io, up, construction_seed)
    return TileConfig(device=cell, forward=io, backward=io, update=up)


# ---- the incumbent's named configurations ------------------------------------------------------------------------

#: the calibrated devices of the compound presets (aihwkit's ReRamES, ReRamSB, Capacitor, EcRam, EcRamMO, Idealized)
COMPOUND_DEVICES = ("reram-es", "reram-sb", "capacitor", "ecram", "ecram-mo", "idealized")

#: TTv2*Preset: fast_lr, auto_granularity, main update BL
_TTV2 = {"reram-es": (0.5, 1000, 31), "reram-sb": (0.5, 1000, 31), "capacitor": (0.1, 1000, 31),
         "ecram": (0.1, 500, 100), "ecram-mo": (0.1, 500, 100), "idealized": (0.1, 500, 100)}
#: ChoppedTTv2*Preset: fast_lr, auto_granularity, in_chop_prob, main update BL (EcRam keeps the default fast_lr 1)
_CHOPPED_TTV2 = {"reram-es": (0.5, 1000, 0.01, 31), "reram-sb": (0.5, 1000, 0.01, 31),
                 "capacitor": (0.1, 1000, 0.01, 31), "ecram": (1.0, 500, 0.01, 100),
                 "ecram-mo": (0.1, 500, 0.001, 100), "idealized": (0.1, 500, 0.001, 100)}
#: AGAD*Preset: fast_lr, auto_granularity, tail_weightening, in_chop_prob, main update BL
_AGAD = {"reram-es": (0.5, 1000, 5.0, 0.02, 31), "reram-sb": (0.5, 1000, 5.0, 0.02, 31),
         "capacitor": (0.1, 1000, 20.0, 0.01, 31), "ecram": (0.1, 750, 50.0, 0.005, 31),
         "ecram-mo": (0.1, 500, 50.0, 0.005, 100), "idealized": (0.1, 500, 50.0, 0.005, 100)}


def _compound_preset(cell, bl: int = 31) -> TileConfig:
    """``cell`` with the preset IO forward and backward and the preset update with BL ``bl``."""
    return TileConfig(device=cell, forward=preset_io(), backward=preset_io(), update=preset_update(bl))


def _tuned(table: dict, name: str, family: str) -> tuple:
    """The row of ``table`` for device ``name``; a clear error for a device the incumbent has no preset of."""
    if name not in table:
        raise ValueError(f"no {family} preset for device {name!r}; choose one of: {', '.join(table)}")
    return table[name]


def _pair(name: str) -> tuple:
    """The two devices of a transfer preset; the ReRamSB ones subtract their symmetry point (as aihwkit's)."""
    dev = device(name)
    dev = dev.replace(subtract_symmetry_point=True) if name == "reram-sb" else dev
    return (dev, dev)


def _buffered(cls, name: str, bl: int, **fields) -> TileConfig:
    """A TTv2/c-TTv2/AGAD preset: ``cls`` on the device pair of ``name`` with one-pulse transfer writes,
    auto-scaled fast lr, periods in vector updates, preset transfer IO without management; main update BL ``bl``."""
    cell = cls(unit_cell_devices=_pair(name), transfer_forward=_without_management(preset_io()),
               transfer_update=_one_pulse(preset_update()), units_in_mbatch=False, auto_scale=True, **fields)
    return _compound_preset(cell, bl)


def single_preset(name: str) -> TileConfig:
    """``{Device}Preset``: one calibrated device with the preset IO and update (:func:`tile_config`)."""
    return tile_config(name)


def tiki_taka_preset(name: str) -> TileConfig:
    """``TikiTaka{Device}Preset`` (Gokmen & Haensch 2020): TTv1 on two ``name`` devices, the preset update also
    for the transfer writes, transfers every mini-batch."""
    return _compound_preset(TransferCompound(unit_cell_devices=_pair(name), transfer_every=1.0,
                                             transfer_forward=_without_management(preset_io()),
                                             transfer_update=preset_update(), units_in_mbatch=True))


def ttv2_preset(name: str) -> TileConfig:
    """``TTv2{Device}Preset``: the chopped compound without choppers (:data:`_TTV2` holds the tuned values)."""
    fast_lr, granularity, bl = _tuned(_TTV2, name, "TTv2")
    return _buffered(ChoppedTransferCompound, name, bl, in_chop_prob=0.0, fast_lr=fast_lr,
                     auto_granularity=granularity)


def chopped_ttv2_preset(name: str) -> TileConfig:
    """``ChoppedTTv2{Device}Preset`` (c-TTv2, Rasch et al. 2023/2024; tuned values in :data:`_CHOPPED_TTV2`)."""
    fast_lr, granularity, chop, bl = _tuned(_CHOPPED_TTV2, name, "chopped-TTv2")
    return _buffered(ChoppedTransferCompound, name, bl, in_chop_prob=chop, fast_lr=fast_lr,
                     auto_granularity=granularity)


def agad_preset(name: str) -> TileConfig:
    """``AGAD{Device}Preset`` (AGAD, Rasch et al. 2023/2024; tuned values in :data:`_AGAD`)."""
    fast_lr, granularity, tail, chop, bl = _tuned(_AGAD, name, "AGAD")
    return _buffered(DynamicTransferCompound, name, bl, fast_lr=fast_lr, auto_granularity=granularity,
                     tail_weightening=tail, in_chop_prob=chop)


def vector_preset(name: str, n: int) -> TileConfig:
    """``{Device}{n}Preset``: ``n`` copies of the device per cross-point, one updated at a time at random."""
    return _compound_preset(VectorUnitCell(unit_cell_devices=(device(name),) * n, update_policy="single_random"))


def mixed_precision_preset(name: str) -> TileConfig:
    """``MixedPrecision{Device}Preset`` (Nandakumar et al. 2020): a digital accumulator written to one device."""
    return _compound_preset(MixedPrecisionCompound(device=device(name)))


#: preset family (the kebab-case of aihwkit's class-name prefix) -> (function of a device name, its devices)
_FAMILIES = {
    "": (single_preset, COMPOUND_DEVICES + ("gokmen-vlasov",)),
    "tiki-taka-": (tiki_taka_preset, COMPOUND_DEVICES),
    "ttv2-": (ttv2_preset, COMPOUND_DEVICES),
    "chopped-ttv2-": (chopped_ttv2_preset, COMPOUND_DEVICES),
    "agad-": (agad_preset, COMPOUND_DEVICES),
    "mixed-precision-": (mixed_precision_preset, COMPOUND_DEVICES + ("gokmen-vlasov",)),
}

#: preset name (kebab-case of aihwkit's class name: ``AGADEcRamMOPreset`` is ``agad-ecram-mo-preset``) -> function
#: returning its :class:`TileConfig`
PRESETS = {f"{prefix}{dev}-preset": functools.partial(fn, dev)
           for prefix, (fn, devs) in _FAMILIES.items() for dev in devs}
PRESETS.update({f"{dev}{n}-preset": functools.partial(vector_preset, dev, n) for n in (2, 4) for dev in COMPOUND_DEVICES})
PRESETS["pcm-preset"] = functools.partial(single_preset, "pcm")

#: the incumbent's presets this version cannot build yet -> why
PENDING_PRESETS = {"mixed-precision-pcm-preset": "mixed precision writes one pulsed device; the PCM preset is a "
                                                 "one-sided pair of them, which its rows cannot be written to yet"}


def preset(name: str) -> TileConfig:
    """The :class:`TileConfig` of the named preset (see :data:`PRESETS`); a clear error for the pending ones
    (:data:`PENDING_PRESETS`, with the reason) and for unknown names (listing the known ones)."""
    if name in PENDING_PRESETS:
        raise NotImplementedError(f"preset {name!r} {PENDING_PRESETS[name]}")
    if name not in PRESETS:
        pending = "; ".join(f"{k} ({v})" for k, v in PENDING_PRESETS.items())
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}. Not yet available: "
                         f"{pending}")
    return PRESETS[name]()
