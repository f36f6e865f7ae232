"""The incumbent's named algorithm presets (aihwkit 1.1, simulator/presets) and build_config's keyword names.

The expected numbers are written here as literals, from the incumbent's preset classes (TikiTaka*, TTv2*,
ChoppedTTv2*, AGAD*, MixedPrecision* presets; Gokmen & Haensch 2020 for Tiki-Taka, Rasch et al. 2023/2024
for c-TTv2 and AGAD), never computed by the code under test.
"""

import dataclasses
import enum
import functools
import json

import numpy as np
import pytest

import crossbar
from crossbar import OneSidedUnitCell, VectorUnitCell, make_tile
from crossbar.config import Config, IOParameters, TileConfig, UpdateParameters
from crossbar.physics import rng
from crossbar.presets import (PENDING_PRESETS, PRESETS, build_config, preset, preset_io, preset_update,
                              ttv2_preset)
from crossbar.tiles.transfer import (ChoppedTransferCompound, DynamicTransferCompound, MixedPrecisionCompound,
                                     TransferCompound)

F32 = np.float32
DEVICES6 = ["reram-es", "reram-sb", "capacitor", "ecram", "ecram-mo", "idealized"]
EXPECTED_NAMES = ([f"{d}-preset" for d in DEVICES6 + ["gokmen-vlasov"]]
                  + [f"{a}-{d}-preset" for a in ("tiki-taka", "ttv2", "chopped-ttv2", "agad") for d in DEVICES6]
                  + [f"mixed-precision-{d}-preset" for d in DEVICES6 + ["gokmen-vlasov"]]
                  + [f"{d}{n}-preset" for n in (2, 4) for d in DEVICES6] + ["pcm-preset"])
BUFFERED = [n for n in EXPECTED_NAMES if n.startswith(("ttv2-", "chopped-ttv2-", "agad-"))]

#: preset -> {dotted field path: value}, the incumbent's numbers
PINNED = {
    "agad-ecram-mo-preset": {"device": DynamicTransferCompound, "device.fast_lr": 0.1, "device.auto_granularity": 500,
                             "device.tail_weightening": 50.0, "device.in_chop_prob": 0.005,
                             "update.desired_bl": 100},
    "agad-ecram-preset": {"device.fast_lr": 0.1, "device.auto_granularity": 750, "device.tail_weightening": 50.0,
                          "device.in_chop_prob": 0.005, "update.desired_bl": 31},
    "agad-capacitor-preset": {"device.fast_lr": 0.1, "device.auto_granularity": 1000,
                              "device.tail_weightening": 20.0, "device.in_chop_prob": 0.01, "update.desired_bl": 31},
    "agad-reram-sb-preset": {"device.fast_lr": 0.5, "device.auto_granularity": 1000, "device.tail_weightening": 5.0,
                             "device.in_chop_prob": 0.02, "update.desired_bl": 31},
    "ttv2-reram-es-preset": {"device": ChoppedTransferCompound, "device.in_chop_prob": 0.0, "device.fast_lr": 0.5,
                             "device.auto_granularity": 1000, "update.desired_bl": 31},
    "ttv2-ecram-preset": {"device.in_chop_prob": 0.0, "device.fast_lr": 0.1, "device.auto_granularity": 500,
                          "update.desired_bl": 100},
    "chopped-ttv2-ecram-preset": {"device.in_chop_prob": 0.01, "device.fast_lr": 1.0,
                                  "device.auto_granularity": 500, "update.desired_bl": 100},
    "chopped-ttv2-idealized-preset": {"device.in_chop_prob": 0.001, "device.fast_lr": 0.1,
                                      "device.auto_granularity": 500, "update.desired_bl": 100},
    "chopped-ttv2-capacitor-preset": {"device.in_chop_prob": 0.01, "device.fast_lr": 0.1,
                                      "device.auto_granularity": 1000, "update.desired_bl": 31},
    "tiki-taka-reram-sb-preset": {"device": TransferCompound, "device.transfer_every": 1.0,
                                  "device.units_in_mbatch": True, "device.transfer_update.desired_bl": 31,
                                  "device.transfer_update.update_management": True,
                                  "device.transfer_update.update_bl_management": True, "update.desired_bl": 31,
                                  "device.transfer_forward.noise_management": "none",
                                  "device.transfer_forward.bound_management": "none",
                                  "device.transfer_forward.out_noise": 0.1, "device.transfer_forward.out_bound": 20.0},
    "mixed-precision-gokmen-vlasov-preset": {"device": MixedPrecisionCompound, "device.device.dw_min": 0.0016,
                                             "update.desired_bl": 31, "forward.out_noise": 0.1},
    "ecram-mo-preset": {"device.dw_min": 2.8214e-4, "update.desired_bl": 31, "forward.inp_res": 1 / 126,
                        "backward.out_res": 1 / 510, "forward.noise_management": "abs_max",
                        "forward.bound_management": "iterative"},
}
#: every TTv2 / c-TTv2 / AGAD preset
BUFFERED_PINS = {"device.transfer_update.desired_bl": 1, "device.transfer_update.update_management": False,
                 "device.transfer_update.update_bl_management": False, "device.units_in_mbatch": False,
                 "device.auto_scale": True, "device.transfer_forward.noise_management": "none",
                 "device.transfer_forward.bound_management": "none", "device.transfer_forward.out_noise": 0.1,
                 "device.transfer_forward.out_bound": 20.0, "device.transfer_forward.inp_res": 1 / 126,
                 "forward.out_noise": 0.1, "backward.out_bound": 20.0}


def field_at(cfg, path: str):
    value = functools.reduce(getattr, path.split("."), cfg)
    return value.value if isinstance(value, enum.Enum) else value


def assert_pinned(cfg, pins: dict):
    for path, want in pins.items():
        got = field_at(cfg, path)
        if isinstance(want, type):
            assert type(got) is want, f"{path}: {type(got).__name__}, want {want.__name__}"
        else:
            assert got == want, f"{path} = {got!r}, want {want!r}"


def test_registry_names_are_the_incumbents():
    assert list(PRESETS) == EXPECTED_NAMES
    assert set(PENDING_PRESETS) == {"mixed-precision-pcm-preset"}
    assert not set(PENDING_PRESETS) & set(PRESETS)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_preset_builds_validates_and_round_trips(name):
    cfg = preset(name)
    assert isinstance(cfg, TileConfig) and cfg == PRESETS[name]()
    assert cfg.replace() == cfg  # validates again
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.update = UpdateParameters()


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_preset_trains_a_small_tile_on_numpy(name):
    tile = make_tile(5, 7, preset(name), seed=3)
    before = tile.hidden_parameters()
    w0 = tile.get_weights()
    for step in range(4):
        x = rng.uniform_array(rng.seed_key(step, 1), 0, (4, 7)) * F32(2) - F32(1)
        d = rng.normal_array(rng.seed_key(step, 2), 0, (4, 5)) * F32(0.3)
        tile.update(x, d, 0.1)
    y = tile.forward(x)
    after = tile.hidden_parameters()
    assert np.isfinite(y).all() and np.isfinite(tile.get_weights()).all()
    assert all(np.isfinite(v).all() for v in after.values() if np.asarray(v).dtype.kind == "f")
    moved = [k for k in after if k.startswith("hidden_weights")]  # compounds and cells: a device moved
    if moved:
        assert any(not np.array_equal(after[k], before[k]) for k in moved)
    else:
        assert not np.array_equal(tile.get_weights(), w0)


def test_the_pcm_preset_is_a_refreshed_one_sided_pair_of_set_only_pcm_devices():
    cfg = preset("pcm-preset")
    cell = cfg.device
    assert isinstance(cell, OneSidedUnitCell)
    assert (cell.refresh_every, cell.units_in_mbatch, cell.refresh_update.desired_bl) == (1, True, 31)
    assert cell.refresh_forward == preset_io() == cfg.forward
    [pcm] = cell.unit_cell_devices
    assert (pcm.w_min, pcm.w_max, pcm.a, pcm.b, pcm.A_up, pcm.A_down, pcm.gamma_up) == (0, 2, -1, 0, -27.235, -2.235, 2.5)
    assert (pcm.dw_min, pcm.dw_min_std, pcm.dw_min_std_add, pcm.dw_min_std_slope) == (0.01, 0.6, 0.042, 0.108)
    assert (pcm.reset, pcm.reset_dtod, pcm.w_min_dtod, pcm.w_max_dtod) == (0.01, 0.02, 0, 0.1)


def test_the_multi_device_presets_pick_one_device_at_random():
    cell = preset("ecram4-preset").device
    assert isinstance(cell, VectorUnitCell) and cell.update_policy == "single_random"
    assert len(cell.unit_cell_devices) == 4 and len(set(cell.unit_cell_devices)) == 1


@pytest.mark.parametrize("name", sorted(PINNED))
def test_pinned_preset_values(name):
    assert_pinned(preset(name), PINNED[name])


@pytest.mark.parametrize("name", BUFFERED)
def test_buffered_presets_share_the_transfer_settings(name):
    assert_pinned(preset(name), BUFFERED_PINS)


@pytest.mark.parametrize("name", [n for n in EXPECTED_NAMES if "reram-sb" in n])
def test_reram_sb_transfer_presets_subtract_the_symmetry_point(name):
    dev = preset(name).device
    devices = getattr(dev, "unit_cell_devices", None)
    if devices is None:  # the single-device and mixed-precision ReRamSB presets keep the plain device
        assert not (dev.device if hasattr(dev, "device") else dev).subtract_symmetry_point
    elif isinstance(dev, VectorUnitCell):  # and so do the multi-device ones
        assert not any(d.subtract_symmetry_point for d in devices)
    else:
        assert [d.subtract_symmetry_point for d in devices] == [True, True]


def test_build_config_accepts_the_incumbents_keywords():
    positional = build_config("c-ttv2", "capacitor", preset_io(), preset_update())
    assert build_config("c-ttv2", "capacitor", io_parameters=preset_io(), up_parameters=preset_update()) == positional
    assert build_config("c-ttv2", "capacitor", io_parameters=preset_io, up_parameters=preset_update) == positional
    assert positional.forward.out_noise == 0.1 and positional.update.desired_bl == 5
    assert build_config("sgd", "capacitor", io_parameters=IOParameters) == build_config("sgd", "capacitor")
    assert build_config("agad", "ecram", n_devices=1) == build_config("agad", "ecram")
    with pytest.raises(TypeError, match="io_parameters"):
        build_config("sgd", "capacitor", preset_io(), io_parameters=preset_io())
    with pytest.raises(TypeError, match="up_parameters"):
        build_config("sgd", "capacitor", update=preset_update(), up_parameters=preset_update())


def test_build_config_n_devices():
    cell = build_config("sgd", "capacitor", n_devices=3).device
    assert isinstance(cell, VectorUnitCell) and cell.update_policy == "single_random"
    assert cell.unit_cell_devices == (crossbar.presets.capacitor(),) * 3
    with pytest.raises(ValueError, match="only 'sgd'"):
        build_config("tiki-taka", "capacitor", n_devices=2)


def test_construction_seed_fixes_the_device_to_device_draws():
    assert build_config("sgd", "capacitor", construction_seed=7).device.construction_seed == 7
    assert build_config("mp", "capacitor", construction_seed=7).device.device.construction_seed is not None
    for algorithm in ("sgd", "tiki-taka", "agad", "mp"):
        seeded = build_config(algorithm, "ecram", construction_seed=7)
        a = make_tile(4, 6, seeded, seed=1).hidden_parameters()
        b = make_tile(4, 6, seeded, seed=2).hidden_parameters()
        c = make_tile(4, 6, build_config(algorithm, "ecram"), seed=7).hidden_parameters()  # as a tile of seed 7
        assert a.keys() == b.keys() == c.keys()
        for k in a:
            assert np.array_equal(a[k], b[k]) and np.array_equal(a[k], c[k]), f"{algorithm}: {k}"
    devs = build_config("tiki-taka", "ecram", construction_seed=7).device.unit_cell_devices
    assert devs[0].construction_seed != devs[1].construction_seed  # A and C are different arrays


def test_errors_name_the_known_and_the_pending_presets():
    with pytest.raises(ValueError, match="agad-ecram-mo-preset") as err:
        preset("agad-ecram-nope-preset")
    assert "mixed-precision-pcm-preset" in str(err.value)
    with pytest.raises(NotImplementedError, match="one-sided pair"):
        preset("mixed-precision-pcm-preset")
    with pytest.raises(ValueError, match="no TTv2 preset for device 'soft-bounds'"):
        ttv2_preset("soft-bounds")
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_config("adam", "capacitor")


def gpu_inputs(step: int, batch: int, in_size: int, out_size: int):
    """Dyadic inputs (exact sums in any order) with equal per-sample maxima (max|x| = 1, max|d| = 0.5), so the
    auto-scaled fast lr and the mixed-precision accumulator are the same on both backends."""
    x = np.clip(np.rint(rng.normal_array(rng.seed_key(step, 1), 0, (batch, in_size)) * 8), -8, 8).astype(F32) / 8
    d = np.clip(np.rint(rng.normal_array(rng.seed_key(step, 2), 0, (batch, out_size)) * 5), -8, 8).astype(F32) / 16
    b = np.arange(batch)
    x[b, b % in_size] = np.where(b % 2 == 0, F32(1), F32(-1))
    d[b, b % out_size] = np.where(b % 3 == 0, F32(-0.5), F32(0.5))
    return x, d


@pytest.mark.gpu
@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_preset_trains_the_same_on_cupy(name):
    cfg = preset(name)
    cpu = make_tile(5, 9, cfg, seed=4)
    gpu = make_tile(5, 9, cfg, seed=4, backend="cupy")
    for step in range(5):
        x, d = gpu_inputs(step, 8, 9, 5)
        cpu.update(x, d, 0.125)
        gpu.update(x, d, 0.125)
    atol = 1e-5 if "reram-es" in name or "pcm" in name else 0  # ExpStep: expf may differ from NumPy by an ulp
    np.testing.assert_allclose(crossbar.backend.to_numpy(gpu.get_weights()), cpu.get_weights(), rtol=0, atol=atol)
    hidden = gpu.hidden_parameters()
    for k, v in cpu.hidden_parameters().items():
        np.testing.assert_allclose(crossbar.backend.to_numpy(hidden[k]), v, rtol=0, atol=atol, err_msg=k)
