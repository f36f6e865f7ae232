"""The main job's tests run on NumPy, also on a GPU machine (where ``--backend auto`` would pick CuPy):
their expectations (golden checkpoint hashes, timings of tiny runs) are the CPU's; tests/gpu covers the GPU."""

import pytest

from models import mnist


@pytest.fixture(autouse=True)
def numpy_for_auto(monkeypatch):
    monkeypatch.setattr(mnist, "resolve_backend", lambda name: ("numpy", "auto: tests") if name == "auto" else
                        (name, ""))
