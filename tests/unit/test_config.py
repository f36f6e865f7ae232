"""Config validation: every constrained field rejects a bad value by name; JSON round trips."""

import dataclasses
import json

import pytest

import crossbar  # noqa: F401  (registers every config class)
from crossbar.config import _REGISTRY, Config, IOParameters, TileConfig, UpdateParameters
from crossbar.physics.devices import PULSED_DEVICES, SoftBoundsPmaxDevice


def _bad_values(meta):
    """Values that break one constraint of a field (empty if the field has none we can break)."""
    bad = []
    if meta.get("choices") is not None:
        bad.append("no-such-choice")
    if meta.get("lo") is not None:
        bad.append(meta["lo"] - 1.5)
    if meta.get("hi") is not None:
        bad.append(meta["hi"] + 1.5)
    if meta.get("integer"):
        bad.append(2.5)
    if meta.get("finite"):
        bad.append(float("nan"))
    return bad


CASES = [(cls, f.name, v) for cls in _REGISTRY.values() for f in dataclasses.fields(cls)
         if f.metadata for v in _bad_values(f.metadata)
         if not isinstance(f.default, (bool, Config)) and f.default is not dataclasses.MISSING
         and not (cls is SoftBoundsPmaxDevice and f.name in ("w_min", "w_max", "dw_min", "up_down"))]


@pytest.mark.parametrize("cls,name,value", CASES, ids=[f"{c.__name__}.{n}={v!r}" for c, n, v in CASES])
def test_bad_value_is_rejected_by_name(cls, name, value):
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{name} = "):
        cls(**{name: value})


def test_enough_constraints_are_checked():
    assert len(CASES) > 150  # guards against the test silently collecting nothing


@pytest.mark.parametrize("cls", list(_REGISTRY.values()), ids=lambda c: c.__name__)
def test_defaults_build_and_round_trip_through_json(cls):
    cfg = cls()
    again = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and type(again) is cls


def test_enums_accept_strings_and_nested_round_trip():
    io = IOParameters(noise_management="max", bound_management="none")
    assert io.noise_management.value == "max"
    tile = TileConfig(device=PULSED_DEVICES[3](dw_min_std=0.1), forward=io,
                      update=UpdateParameters(desired_bl=7))
    d = json.loads(json.dumps(tile.to_dict()))
    assert Config.from_dict(d) == tile
    assert d["forward"]["noise_management"] == "max"


def test_cross_field_and_type_errors():
    with pytest.raises(ValueError, match="inp_bound"):
        IOParameters(inp_bound=2.0)  # must be 1 with noise management
    IOParameters(inp_bound=2.0, noise_management="none")
    with pytest.raises(ValueError, match="write_noise_std"):
        crossbar.ConstantStepDevice(write_noise_std=1.0)  # no write-noise model
    with pytest.raises(ValueError, match="desired_bl"):
        UpdateParameters(desired_bl=True)
    with pytest.raises(ValueError, match="device"):
        TileConfig(device=IOParameters())
    with pytest.raises(ValueError, match="piecewise_down"):
        crossbar.PiecewiseStepDevice(piecewise_up=(1, 2), piecewise_down=(1,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        IOParameters().out_noise = 0.0


def test_from_dict_errors_are_clear():
    with pytest.raises(ValueError, match="type"):
        Config.from_dict({"out_noise": 0.1})
    with pytest.raises(ValueError, match="unknown config type"):
        Config.from_dict({"type": "Nope"})
    with pytest.raises(ValueError, match="unknown fields"):
        Config.from_dict({"type": "IOParameters", "out_nois": 0.1})


def test_docstrings_list_every_field():
    for cls in _REGISTRY.values():
        for f in dataclasses.fields(cls):
            if f.metadata:
                assert f"    {f.name} (" in cls.__doc__, (cls.__name__, f.name)


def test_pmax_mapping():
    dev = SoftBoundsPmaxDevice(p_max=1000, alpha=0.0005, range_min=-1, range_max=1)
    span = 2 / (1 - 2.718281828459045 ** -0.5)
    assert dev.w_min == -1 and dev.w_max == pytest.approx(-1 + span)
    assert dev.dw_min == pytest.approx(span * 0.0005)
    assert dev.up_down == pytest.approx(1 - 2 / span)
