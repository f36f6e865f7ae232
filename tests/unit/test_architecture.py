"""The import contracts of ``pyproject.toml`` ([tool.importlinter]): the layers of ``crossbar`` (an upward import
fails here) and a library that never imports the ``models`` package."""

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)  # the packages are analysed from the checkout
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0
