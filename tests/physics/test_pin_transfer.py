"""Every field of the compound configs (Tiki-Taka family, mixed precision) pinned against the references.

For each field of ``TransferCompound``, ``BufferedTransferCompound``, ``ChoppedTransferCompound``,
``DynamicTransferCompound`` and ``MixedPrecisionCompound`` (each class counts separately: a subclass can
break an inherited field), a check

* sets the field away from its default in a scenario where it acts (a small tile trained for a few batches
  with every feature of the class switched on at moderate values),
* asserts that the code (fused and sequential paths) equals the sequential reference of
  ``test_transfer_reference`` bit for bit (weights, sub-tiles, buffers, choppers, running means, counters),
* asserts that the reference's result differs from the reference at the field's default, and, for a
  continuous field, from the reference with the field changed by 10% (so code that ignores the field or
  gets it wrong by a small factor fails the check).

Fields that do not change the physics, or that validation fixes, are in ``EXEMPT`` with the reason.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import (BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound, IOParameters,
                      MixedPrecisionCompound, TileConfig, TransferCompound, UpdateParameters)
from test_transfer_reference import NOISY_IO, quiet_pair, run_pair, run_reference

CLASSES = (TransferCompound, BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound,
           MixedPrecisionCompound)
OTHER_DEVICES = (D.SoftBoundsDevice(dw_min=0.015, w_max=1.0, w_min=-1.0),
                 D.ConstantStepDevice(dw_min=0.03, w_max=1.0, w_min=-1.0))
OTHER_IO = NOISY_IO.replace(out_noise=0.05, w_noise_type="pcm_read", w_noise=0.01)

# ---- the base scenario of each class: (fields, out_size, in_size, batch sizes, lr) ---------------------
COMMON = dict(unit_cell_devices=quiet_pair(), transfer_forward=NOISY_IO)
BASE = {
    TransferCompound: (dict(COMMON, units_in_mbatch=False, transfer_every=2.0), 5, 7, [8] * 4, 0.1),
    BufferedTransferCompound: (dict(COMMON, units_in_mbatch=False, momentum=0.2), 5, 9, [8] * 4, 0.1),
    ChoppedTransferCompound: (dict(COMMON, in_chop_prob=0.5, fast_lr=0.02, transfer_lr=0.3), 5, 9, [8] * 5, 0.1),
    DynamicTransferCompound: (dict(COMMON, in_chop_prob=0.5, fast_lr=0.02, transfer_lr=0.3), 5, 8, [8] * 6, 0.1),
    MixedPrecisionCompound: (dict(device=quiet_pair()[0]), 5, 7, [8] * 4, 0.125),
}

#: field -> scenarios ``(value away from the default, other fields set with it)``; a class-specific entry
#: ``"Class.field"`` takes precedence
SCENARIOS = {
    "unit_cell_devices": [(OTHER_DEVICES, {})],
    "gamma": [(0.3, {})],
    "gamma_vec": [((0.2, 0.9), {})],
    "transfer_every": [(0.5, dict(units_in_mbatch=True)), (3.0, {})],
    "transfer_every_vec": [((3.0, 0.0), {})],
    "units_in_mbatch": [(False, dict(transfer_every=0.5)), (True, dict(transfer_every=0.5))],
    "n_reads_per_transfer": [(3, {})],
    "transfer_columns": [(False, {})],
    "with_reset_prob": [(0.5, {}), (0.5, dict(n_reads_per_transfer=2))],
    "random_selection": [(True, {})],
    "fast_lr": [(0.3, {})],
    "transfer_lr": [(2.5, {})],
    "ChoppedTransferCompound.transfer_lr": [(0.5, {})],  # the base's 0.3: buffer increments well below 1
    "DynamicTransferCompound.transfer_lr": [(0.5, {})],
    "transfer_lr_vec": [((2.5, 1.0), {})],
    "scale_transfer_lr": [(False, {})],
    "scale_fast_lr": [(False, {}), (True, {})],
    "transfer_forward": [(OTHER_IO, {})],
    "transfer_update": [(UpdateParameters(desired_bl=3, update_bl_management=False, update_management=False), {})],
    "thres_scale": [(0.6, {})],
    "step": [(0.6, {})],  # a write of BL 1 carries one pulse at most: step > 1 cannot show
    "momentum": [(0.4, {}), (0.4, dict(forget_buffer=False))],
    "forget_buffer": [(False, {})],
    "in_chop_prob": [(0.3, {})],
    "in_chop_random": [(False, {}), (True, {})],
    "out_chop_prob": [(0.4, {})],
    "buffer_granularity": [(0.5, {})],
    "auto_granularity": [(20.0, {})],
    "no_buffer": [(True, dict(transfer_lr=1.0))],
    "auto_scale": [(True, {})],
    "auto_momentum": [(0.5, dict(auto_scale=True))],
    # (transfer_lr 0.03: buffer increments well below 1, so lambda_A in the buffer scale is visible)
    "correct_gradient_magnitudes": [(True, dict(transfer_lr=0.03)),
                                    (True, dict(auto_scale=True, fast_lr=0.3, transfer_lr=0.03))],
    "tail_weightening": [(0.5, {})],
    "buffer_cap": [(0.3, dict(forget_buffer=False, transfer_lr=1.0))],
    "experimental_correct_accumulation": [(True, {})],
    # mixed precision
    "device": [(OTHER_DEVICES[1], {})],
    "MixedPrecisionCompound.transfer_every": [(2, {})],
    "MixedPrecisionCompound.transfer_lr": [(0.5, {})],
    "n_rows_per_transfer": [(2, {})],
    "random_row": [(True, dict(n_rows_per_transfer=2))],
    "granularity": [(0.015, {})],
    "n_x_bins": [(8, {})],
    "n_d_bins": [(4, {})],
    "stoc_round_x": [(False, dict(n_x_bins=8))],
    "stoc_round_d": [(False, dict(n_d_bins=8))],
}

#: continuous fields whose 10% change the scenario cannot show, with the reason
NO_FACTOR = {
    "transfer_every": "an integer number of vector updates: 0.5 -> ceil(4.4) = 5 is shown, 3 -> round(3.3) = 3 not",
    "in_chop_prob": "random flips: a 10% change of the probability moves few of the ~40 flip decisions",
    "with_reset_prob": "one reset decision per transfer: a 10% change moves few of them",
    "step": "with BL 1 a write is one pulse with probability step: a 10% change moves few of the write decisions",
}

EXEMPT = {}
for _cls in CLASSES[:4]:
    EXEMPT[f"{_cls.__name__}.no_self_transfer"] = ("no physics: the last device never transfers to itself (the "
                                                   "incumbent skips a self-transfer), so its period is unused")
for _cls in CLASSES[1:4]:
    for _name in ("n_reads_per_transfer", "random_selection", "with_reset_prob"):
        EXEMPT[f"{_cls.__name__}.{_name}"] = ("fixed by validation for the buffered family: one line per transfer, "
                                              "in order, no reset")
for _cls in CLASSES[2:4]:
    EXEMPT[f"{_cls.__name__}.thres_scale"] = ("not used by the chopped family: its buffer is dimensionless with "
                                              "threshold 1 (thres_scale is TTv2's threshold)")
for _name in ("out_chop_prob", "no_buffer"):
    EXEMPT[f"DynamicTransferCompound.{_name}"] = ("fixed by validation: AGAD has no output choppers and always "
                                                  "accumulates in its buffer")


def _default(cls, name):
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _config(cls, fields):
    return TileConfig(device=cls(**{**BASE[cls][0], **fields}), update=UpdateParameters(desired_bl=10))


def _observe(cls, fields):
    _, out_size, in_size, batches, lr = BASE[cls]
    return run_reference(_config(cls, fields), out_size, in_size, batches, lr=lr,
                         dyadic=cls is MixedPrecisionCompound).observe()


def _differs(a, b):
    return any(not np.array_equal(a[k], b[k]) for k in a)


def _check(cls, name, value, extra):
    def check():
        _, out_size, in_size, batches, lr = BASE[cls]
        fields = {**extra, name: value}
        mp = cls is MixedPrecisionCompound
        for fused in ((True,) if mp else (True, False)):  # code == reference, both paths
            run_pair(_config(cls, fields), out_size, in_size, batches, lr=lr, fused=fused, dyadic=mp,
                     check_each=False)
        at_value = _observe(cls, fields)
        default = _default(cls, name)
        assert _differs(at_value, _observe(cls, {**extra, name: default})), \
            f"{cls.__name__}.{name}: the scenario does not depend on the field ({value!r} vs default {default!r})"
        if isinstance(value, float) and not isinstance(value, bool) and name not in NO_FACTOR:
            assert _differs(at_value, _observe(cls, {**extra, name: value * 1.1})), \
                f"{cls.__name__}.{name}: a 10% change of the field does not show"
    return check


def _checks(cls, name):
    scenarios = SCENARIOS.get(f"{cls.__name__}.{name}", SCENARIOS.get(name))
    assert scenarios, f"no scenario for {cls.__name__}.{name}"
    out = []
    for value, extra in scenarios:
        if value == _default(cls, name):
            continue  # a scenario for another class's default (e.g. scale_fast_lr True/False)
        try:
            _config(cls, {**extra, name: value})
        except ValueError:
            continue  # not a valid combination for this class
        out.append(_check(cls, name, value, extra))
    assert out, f"no valid scenario for {cls.__name__}.{name}"
    return out


PINS = {}
for _cls in CLASSES:
    for _f in dataclasses.fields(_cls):
        _key = f"{_cls.__name__}.{_f.name}"
        if _key not in EXEMPT:
            _list = _checks(_cls, _f.name)

            def _all(checks=tuple(_list)):
                for c in checks:
                    c()
            PINS[_key] = _all


@pytest.mark.parametrize("key", sorted(PINS))
def test_pin(key):
    PINS[key]()


def test_every_compound_field_is_pinned_or_exempt():
    keys = {f"{c.__name__}.{f.name}" for c in CLASSES for f in dataclasses.fields(c)}
    assert keys == set(PINS) | set(EXEMPT) and not set(PINS) & set(EXEMPT)


def test_io_of_transfer_reads_rejects_what_a_one_line_read_cannot_do():
    # transfer_forward: inputs of a read are one-hot, so input noise, stochastic DAC rounding and line effects
    # are rejected rather than silently ignored
    with pytest.raises(ValueError, match="transfer_forward"):
        TransferCompound(transfer_forward=IOParameters(inp_noise=0.1))
