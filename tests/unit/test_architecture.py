"""The import contracts of ``pyproject.toml`` ([tool.importlinter]): the layers of ``crossbar`` (an upward import
fails here) and a library that never imports the ``models`` package."""

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)  # the packages are analysed from the checkout
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


def test_the_gpu_launchers_register_what_the_physics_layer_calls():
    # rng draws on CuPy arrays through the backend registry, not by importing the launchers (a layer above it)
    import crossbar.cuda.kernels as gpu
    from crossbar.backend import implementation
    assert implementation("philox_arrays", "cupy") is gpu.philox_arrays
    assert implementation("random_rows", "cupy") is gpu.random_rows
    with pytest.raises(RuntimeError, match="no cupy implementation of 'nothing'"):
        implementation("nothing", "cupy")
