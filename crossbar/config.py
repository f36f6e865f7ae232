"""Configuration objects: frozen, keyword-only dataclasses validated at construction.

Every field is declared with :func:`param`, which holds its default, its meaning (with unit) and its
allowed range in one place. The :func:`config` decorator turns a class into a frozen dataclass, checks
every field in ``__post_init__`` (a bad value raises ``ValueError`` naming the class, the field, the
value and the allowed range), and appends a field table to the class docstring.

``to_dict``/``from_dict`` give a JSON-ready round trip (nested configs carry their class name under
``"type"``). Make variants with :meth:`Config.replace`.

Units: weights, bounds and steps are in normalised weight units (a device's conductance range mapped linearly
onto the weight it stores), MVM inputs and outputs in the units of ``W x``; spreads named ``*_dtod`` (device to
device) and ``*_std`` (cycle to cycle) are relative unless a field says otherwise.

Defaults follow the values a user of IBM's aihwkit 1.1 sees from Python (its ``UpdateParameters``,
``IOParameters`` and device dataclasses; where its C++ defaults differ, the Python ones win). The classes
here: :class:`UpdateParameters` (how an update becomes pulses, :mod:`crossbar.physics.pulses`), :class:`IOParameters`
(the non-idealities of one MVM direction, :mod:`crossbar.physics.io`), :class:`DriftParameter` (power-law drift of
pulsed devices, :mod:`crossbar.physics.devices.base`) and :class:`TileConfig` (device + forward + backward + update);
device configs live in :mod:`crossbar.physics.devices`, compound ones in :mod:`crossbar.tiles.transfer`.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers

_REGISTRY: dict[str, type] = {}


def param(default, doc: str, *, lo=None, hi=None, lo_open=False, hi_open=False, choices=None,
          integer=False, optional=False, finite=True):
    """Declare a config field.

    Args:
        default: default value (use a tuple for sequences; configs are immutable).
        doc: meaning and unit, one sentence.
        lo, hi: inclusive bounds (``lo_open``/``hi_open`` make them exclusive).
        choices: allowed values (for enums: the enum class).
        integer: the value must be an integer.
        optional: ``None`` is allowed.
        finite: reject inf/NaN (default).
    """
    meta = dict(doc=doc, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices,
                integer=integer, optional=optional, finite=finite)
    if isinstance(default, (list, dict)):
        raise TypeError("config defaults must be immutable (use a tuple)")
    if isinstance(default, Config):
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(meta) -> str:
    parts = []
    if meta["choices"] is not None:
        ch = meta["choices"]
        vals = [c.value for c in ch] if isinstance(ch, type) and issubclass(ch, enum.Enum) else list(ch)
        parts.append("one of " + ", ".join(repr(v) for v in vals))
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and hi is not None:
        parts.append(f"in {'(' if meta['lo_open'] else '['}{lo!r}, {hi!r}{')' if meta['hi_open'] else ']'}")
    elif lo is not None:
        parts.append(("> " if meta["lo_open"] else ">= ") + repr(lo))
    elif hi is not None:
        parts.append(("< " if meta["hi_open"] else "<= ") + repr(hi))
    if meta["integer"]:
        parts.insert(0, "an integer")
    if meta["optional"]:
        parts.append("or None")
    return " ".join(parts) if parts else "any value"


class Config:
    """Base of all configuration dataclasses."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            checked = self._check_field(f, value)
            if checked is not value:
                object.__setattr__(self, f.name, checked)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses extend (raise ``ValueError``)."""

    def _fail(self, name, value, allowed):
        raise ValueError(f"{type(self).__name__}.{name} = {value!r}: must be {allowed}")

    def _check_field(self, f, value):
        meta = f.metadata
        if not meta:
            return value
        if value is None:
            if meta["optional"]:
                return None
            self._fail(f.name, value, _describe(meta))
        ch = meta["choices"]
        if isinstance(ch, type) and issubclass(ch, enum.Enum):
            try:
                return ch(value.value if isinstance(value, enum.Enum) else value)
            except ValueError:
                self._fail(f.name, value, _describe(meta))
        if ch is not None:
            if value not in ch:
                self._fail(f.name, value, _describe(meta))
            return value
        if isinstance(value, Config) or isinstance(f.default, Config):
            return value
        if isinstance(f.default, bool):
            if not isinstance(value, bool):
                self._fail(f.name, value, "True or False")
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, Config) for v in value):
            return tuple(value)  # a sequence of configs (e.g. the devices of a compound)
        if isinstance(f.default, tuple) or isinstance(value, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                self._fail(f.name, value, "a sequence of numbers, each " + _describe(meta))
            value = tuple(value)
            for v in value:
                self._check_number(f.name, v, meta, whole=value)
            return value
        self._check_number(f.name, value, meta)
        return value

    def _check_number(self, name, v, meta, whole=None):
        shown = whole if whole is not None else v
        f = self.__dataclass_fields__[name]
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        default = default[0] if isinstance(default, tuple) and default else default
        if isinstance(default, Config):  # a field that holds configs, and v is not one
            if isinstance(default, DeviceConfig):
                return  # which device configs fit is the class's validate()'s to say
            self._fail(name, shown, f"of type {type(default).__name__}, got {type(v).__name__}")
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            self._fail(name, shown, f"a number: {_describe(meta)}, got {type(v).__name__}")
        if meta["finite"] and not math.isfinite(v):
            self._fail(name, shown, "finite and " + _describe(meta))
        if meta["integer"] and (not math.isfinite(v) or int(v) != v):
            self._fail(name, shown, _describe(meta))
        lo, hi = meta["lo"], meta["hi"]
        if lo is not None and (v < lo or (meta["lo_open"] and v == lo)):
            self._fail(name, shown, _describe(meta))
        if hi is not None and (v > hi or (meta["hi_open"] and v == hi)):
            self._fail(name, shown, _describe(meta))

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready dict: ``{"type": class name, field: value, ...}``, nested configs included."""
        out = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            out[f.name] = _encode(getattr(self, f.name))
        return out

    @staticmethod
    def from_dict(data: dict) -> "Config":
        """Rebuild a config written by :meth:`to_dict` (the class is named by ``data["type"]``)."""
        if not isinstance(data, dict) or "type" not in data:
            raise ValueError("a config dict needs a 'type' entry naming its class")
        cls = _REGISTRY.get(data["type"])
        if cls is None:
            raise ValueError(f"unknown config type {data['type']!r}; known: {sorted(_REGISTRY)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - {"type"}
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        kwargs = {k: _decode(v) for k, v in data.items() if k != "type"}
        return cls(**kwargs)


def _encode(v):
    if isinstance(v, Config):
        return v.to_dict()
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, tuple):
        return [_encode(x) for x in v]
    return v


def _decode(v):
    if isinstance(v, dict) and "type" in v:
        return Config.from_dict(v)
    if isinstance(v, list):
        return tuple(_decode(x) for x in v)
    return v


def config(cls):
    """Class decorator: frozen keyword-only dataclass, registered for ``from_dict``, documented."""
    cls = dataclasses.dataclass(frozen=True, kw_only=True)(cls)
    _REGISTRY[cls.__name__] = cls
    lines = [(cls.__doc__ or "").rstrip(), "", "Fields (default; allowed):"]
    for f in dataclasses.fields(cls):
        if not f.metadata:
            continue
        if "default_doc" in f.metadata:  # a default built from a class registered later (TileConfig.device)
            lines.append(f"    {f.name} ({f.metadata['default_doc']}): {f.metadata['doc']}")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, Config):
            lines.append(f"    {f.name} ({type(default).__name__}()): {f.metadata['doc']}")
            continue
        if isinstance(default, enum.Enum):
            default = default.value
        lines.append(f"    {f.name} ({default!r}; {_describe(f.metadata)}): {f.metadata['doc']}")
    cls.__doc__ = "\n".join(lines)
    return cls


def resolution(res: float) -> float:
    """A user resolution as a fraction of the range: ``<= 0`` none (0.0), ``> 1`` a number of steps (its
    inverse), else itself. Used by the DAC/ADC (``IOParameters.inp_res``, ``out_res``) and the pulse-train
    discretisation (``UpdateParameters.res``)."""
    return 0.0 if res <= 0 else (1.0 / res if res > 1 else float(res))


class _StrEnum(str, enum.Enum):
    def __str__(self):
        return self.value


class PulseType(_StrEnum):
    """How an update becomes pulses (see :mod:`crossbar.physics.pulses`)."""

    STOCHASTIC_COMPRESSED = "stochastic_compressed"
    DETERMINISTIC_IMPLICIT = "deterministic_implicit"
    MEAN_COUNT = "mean_count"
    NONE = "none"  # floating-point update; a pulsed device is replaced by an ideal one
    NONE_WITH_DEVICE = "none_with_device"  # floating-point update, then the device's hard bounds


class NoiseManagement(_StrEnum):
    """Input scaling alpha of an MVM, per sample (see :mod:`crossbar.physics.io`)."""

    NONE = "none"
    ABS_MAX = "abs_max"
    ABS_MAX_NP_SUM = "abs_max_np_sum"
    MAX = "max"
    CONSTANT = "constant"
    AVERAGE_ABS_MAX = "average_abs_max"


class BoundManagement(_StrEnum):
    """Output saturation handling of the forward MVM: retry with halved inputs (see :mod:`crossbar.physics.io`)."""

    NONE = "none"
    ITERATIVE = "iterative"
    ITERATIVE_WORST_CASE = "iterative_worst_case"


class WeightNoiseType(_StrEnum):
    """Weight (read) noise added to the MVM output (see :mod:`crossbar.physics.io`)."""

    NONE = "none"
    ADDITIVE_CONSTANT = "additive_constant"
    PCM_READ = "pcm_read"


@config
class IOParameters(Config):
    """Non-idealities of one analog MVM direction (forward ``y = W x`` or backward ``z = W^T d``).

    Inputs and outputs are in normalised units: the DAC range is ``[-inp_bound, inp_bound]`` after noise
    management scaling, the ADC range ``[-out_bound, out_bound]``. A resolution ``r`` means: ``r <= 0`` no
    quantisation, ``r > 1`` that many steps, else the step as a fraction of the full range ``2*bound``.
    """

    is_perfect: bool = param(False, "exact y = out_scale * W x, no other effect")
    inp_bound: float = param(1.0, "DAC clip level (must be 1 with noise management)", lo=0, lo_open=True)
    inp_res: float = param(1 / 126, "DAC resolution (7 bits: 1/(2**7-2))", lo=-1)
    inp_sto_round: bool = param(False, "stochastic rounding in the DAC")
    inp_noise: float = param(0.0, "std of Gaussian noise added to the DAC output (input units)", lo=0)
    inp_asymmetry: float = param(0.0, "negative inputs are scaled by (1 - inp_asymmetry)", lo=-1, hi=1)
    out_bound: float = param(12.0, "ADC clip level; <= 0 means unbounded (output units)")
    out_res: float = param(1 / 510, "ADC resolution (9 bits: 1/(2**9-2))", lo=-1)
    out_sto_round: bool = param(False, "stochastic rounding in the ADC")
    out_noise: float = param(0.06, "std of Gaussian output noise before the ADC (output units)", lo=0)
    out_noise_std: float = param(0.0, "relative device-to-device spread of out_noise per output line", lo=0)
    out_scale: float = param(1.0, "digital scale applied to the outputs", lo=0, lo_open=True)
    out_asymmetry: float = param(0.0, "negative outputs are scaled by (1 - out_asymmetry)", lo=-1, hi=1)
    noise_management: NoiseManagement = param(NoiseManagement.ABS_MAX, "input scaling alpha per sample",
                                              choices=NoiseManagement)
    nm_thres: float = param(0.0, "cap on alpha (ABS_MAX, MAX) or the constant (CONSTANT); 0 = none", lo=0)
    nm_assumed_wmax: float = param(0.6, "assumed max |w| in ABS_MAX_NP_SUM", lo=0, lo_open=True)
    nm_decay: float = param(1e-3, "EMA rate of AVERAGE_ABS_MAX", lo=0, hi=1)
    bound_management: BoundManagement = param(BoundManagement.ITERATIVE, "forward output saturation "
                                              "handling (ignored in backward)", choices=BoundManagement)
    max_bm_factor: float = param(1000, "largest input down-scaling factor of bound management", lo=1)
    max_bm_res: float = param(0.25, "bound management stops once 2**r exceeds max_bm_res / (DAC step)",
                              lo=0, lo_open=True)
    bm_test_negative_bound: bool = param(True, "bound management also tests y < -out_bound")
    w_noise: float = param(0.0, "weight read-noise std (weight units)", lo=0)
    w_noise_type: WeightNoiseType = param(WeightNoiseType.NONE, "weight noise model", choices=WeightNoiseType)
    ir_drop: float = param(0.0, "IR-drop strength (0 = off)", lo=0)
    ir_drop_g_ratio: float = param(1 / 0.35 / 5e-6, "ratio of wire to device conductance", lo=0, lo_open=True)
    out_nonlinearity: float = param(0.0, "output saturation nonlinearity strength (0 = off)", lo=0)
    out_nonlinearity_std: float = param(0.0, "relative spread of out_nonlinearity per output", lo=0)
    slope_calibration: float = param(0.0, "slope calibration of the output nonlinearity", lo=0)
    v_offset_std: float = param(0.0, "std of per-output voltage offsets (relative)", lo=0)
    v_offset_w_min: float = param(-1.0, "weight of the reference column of the offset model")
    r_series: float = param(0.0, "series resistance (relative)", lo=0)

    def validate(self):
        if self.noise_management != NoiseManagement.NONE and self.inp_bound != 1.0:
            self._fail("inp_bound", self.inp_bound, "1.0 when noise_management is not 'none'")


@config
class UpdateParameters(Config):
    """How ``update(x, d, lr)`` is turned into pulses (the model: :mod:`crossbar.physics.pulses`)."""

    desired_bl: int = param(31, "pulse-train length BL (the maximum when update_bl_management is on)",
                            lo=1, hi=1024, integer=True)
    fixed_bl: bool = param(True, "BL fixed to desired_bl (False: BL = ceil(lr / dw_min) if larger)")
    update_bl_management: bool = param(True, "BL chosen per sample from max|x| and max|d| (forces UM)")
    update_management: bool = param(True, "rebalance the x and d pulse probabilities per sample")
    um_grad_scale: float = param(1.0, "factor on max|d| inside update management", lo=0, lo_open=True)
    pulse_type: PulseType = param(PulseType.STOCHASTIC_COMPRESSED, "pulse scheme", choices=PulseType)
    res: float = param(0.0, "discretisation of the pulse probability (<= 0 none; > 1 number of steps)")
    sto_round: bool = param(False, "stochastic rounding of that discretisation")
    x_res_implicit: float = param(0.0, "x quantisation for deterministic_implicit")
    d_res_implicit: float = param(0.0, "d quantisation for deterministic_implicit")

    @property
    def um_on(self) -> bool:
        """Update management is on (``update_bl_management`` forces it)."""
        return self.update_management or self.update_bl_management


@config
class DriftParameter(Config):
    """Power-law drift of pulsed devices between updates, ``w = w0 (t/t0)^-nu`` (the full rule:
    :mod:`crossbar.physics.devices.base`, :meth:`crossbar.tiles.tile.AnalogTile.drift`)."""

    nu: float = param(0.0, "mean drift exponent (0 = off)", lo=0)
    nu_dtod: float = param(0.0, "relative device-to-device spread of nu", lo=0)
    nu_std: float = param(0.0, "relative cycle-to-cycle spread of nu per call", lo=0)
    wg_ratio: float = param(1.0, "weight-to-conductance ratio", lo=0, lo_open=True)
    g_offset: float = param(0.0, "conductance offset")
    w_offset: float = param(0.0, "weight offset")
    nu_k: float = param(0.0, "conductance dependence of nu")
    log_g0: float = param(0.0, "log reference conductance of that dependence")
    t_0: float = param(1.0, "reference time (same unit as dt)", lo=0, lo_open=True)
    reset_tol: float = param(1e-7, "a weight that moved more than this was updated (restarts its clock)",
                             lo=0)
    w_noise_std: float = param(0.0, "additive noise std per drift call (weight units)", lo=0)


#: command-line name -> device model class, filled as the classes are defined (see :class:`DeviceConfig`)
DEVICE_MODELS: dict = {}


class DeviceConfig(Config):
    """Base of what sits at each cross-point of a tile: a device model (``crossbar.physics.devices``) or a compound of
    several devices (``crossbar.tiles.transfer``). :class:`TileConfig` accepts any subclass.

    A class that sets ``cli_name`` in its own body is registered in :data:`DEVICE_MODELS` when it is defined:
    ``--device NAME`` of the command-line jobs and ``crossbar.presets.DEVICES`` then know it with no other edit.
    """

    cli_name = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("cli_name")
        if not name:
            return
        taken = DEVICE_MODELS.get(name)
        if taken is not None and (taken.__module__, taken.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"device name {name!r} of {cls.__qualname__} is taken by {taken.__qualname__}")
        DEVICE_MODELS[name] = cls


#: the device of a default :class:`TileConfig`, by its registered class name (the device modules define it;
#: naming it keeps this module free of imports from the layers above)
DEFAULT_DEVICE = "ConstantStepDevice"


def _default_device():
    return _REGISTRY[DEFAULT_DEVICE]()


@config
class TileConfig(Config):
    """Everything that defines one analog tile: its device, its two MVM directions and its update."""

    device: DeviceConfig = dataclasses.field(default_factory=_default_device, metadata=dict(
        doc="device model (a PulsedDevice subclass or IdealDevice) or a compound", default_doc=f"{DEFAULT_DEVICE}()",
        lo=None, hi=None, lo_open=False, hi_open=False, choices=None, integer=False, optional=False, finite=True))
    forward: IOParameters = param(IOParameters(), "non-idealities of the forward MVM y = W x")
    backward: IOParameters = param(IOParameters(), "non-idealities of the backward MVM z = W^T d "
                                   "(bound management is not used there)")
    update: UpdateParameters = param(UpdateParameters(), "pulsed update parameters")

    def validate(self):
        if not isinstance(self.device, DeviceConfig):
            self._fail("device", self.device, f"a device config (a PulsedDevice, IdealDevice or a compound from "
                       f"crossbar.tiles.transfer), got {type(self.device).__name__}")
        for name, cls in (("forward", IOParameters), ("backward", IOParameters), ("update", UpdateParameters)):
            value = getattr(self, name)
            if not isinstance(value, cls):
                self._fail(name, value, f"of type {cls.__name__}, got {type(value).__name__}")
