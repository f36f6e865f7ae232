"""Every field of every physics config is pinned by a test, or exempt with a stated reason.

The pinning modules (``tests/physics/test_pin_*.py``) each define

* ``PINS``: ``{"Class.field": check}``, where ``check()`` raises ``AssertionError`` when the code ignores the
  field or gets its documented effect wrong by a small factor. A check compares the code with a reference
  written in the test (from the formulas, sharing no helper with the code under test) at a value of the
  field away from its default, and also asserts that the reference itself moves with the field (so the
  scenario exercises it and the check can fail);
* ``EXEMPT``: ``{"Class.field": "reason"}`` for fields that do not change the physics (seeds, counters,
  fields fixed by validation), each with its reason.

This module checks that together they cover every field of every registered config class (concrete device
subclasses count separately: a subclass can break an inherited field).
"""

import dataclasses
import importlib

import pytest

from crossbar import config as config_module

PIN_MODULES = ("test_pin_devices", "test_pin_update", "test_pin_io", "test_pin_transfer", "test_pin_unit_cells")


def _collect():
    pins, exempt = {}, {}
    for name in PIN_MODULES:
        module = importlib.import_module(name)
        for key in getattr(module, "PINS", {}):
            assert key not in pins, f"{key} pinned twice ({name})"
            pins[key] = name
        for key, reason in getattr(module, "EXEMPT", {}).items():
            assert isinstance(reason, str) and len(reason) > 10, f"{key}: exemption needs a reason"
            exempt[key] = reason
    return pins, exempt


def all_fields():
    return sorted(f"{cls.__name__}.{f.name}" for cls in config_module._REGISTRY.values()
                  for f in dataclasses.fields(cls))


def test_every_physics_field_is_pinned_or_exempt():
    pins, exempt = _collect()
    both = sorted(set(pins) & set(exempt))
    assert not both, f"pinned and exempt at once: {both}"
    missing = [k for k in all_fields() if k not in pins and k not in exempt]
    assert not missing, f"{len(missing)} config fields are neither pinned nor exempt: {missing}"
    unknown = sorted((set(pins) | set(exempt)) - set(all_fields()))
    assert not unknown, f"pins or exemptions name fields that do not exist: {unknown}"


@pytest.mark.parametrize("module", PIN_MODULES)
def test_pin_modules_exist(module):
    importlib.import_module(module)
