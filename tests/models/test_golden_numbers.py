"""The numbers a refactoring must not change: SHA-256 of every array in the checkpoint of three short runs.

``python -m models.mnist --epochs 1 --train-samples 6400 --seed 3`` with sgd on constant-step, ttv2 on
soft-bounds-reference and mp on reram-sb, on the NumPy backend. The analog MVMs go through BLAS, whose
float32 sums depend on the CPU's kernels, so the hashes are compared only where a BLAS fingerprint (a hash of
fixed float32 matrix products) equals the one recorded with them; elsewhere the test skips and says so.
Re-record after an intended change of the numbers with ``python tests/models/test_golden_numbers.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).with_name("golden_checkpoints.json")
RUNS = {"sgd-constant-step": ("sgd", "constant-step"), "ttv2-soft-bounds-reference": ("ttv2", "soft-bounds-reference"),
        "mp-reram-sb": ("mp", "reram-sb")}


def blas_fingerprint() -> str:
    """SHA-256 of float32 products of the shapes the MLP uses (forward and backward of each layer)."""
    r = np.random.default_rng(7)
    h = hashlib.sha256()
    for batch, n_in, n_out in ((64, 785, 256), (64, 257, 128), (64, 129, 10), (1, 785, 256)):
        x = r.standard_normal((batch, n_in), dtype=np.float32)
        w = r.standard_normal((n_out, n_in), dtype=np.float32)
        h.update((x @ w.T).tobytes())
        h.update((x @ w.T @ w).tobytes())
    return h.hexdigest()


def checkpoint_hashes(algorithm: str, device: str, out: Path) -> dict[str, str]:
    from models import mnist
    mnist.main(["--epochs", "1", "--train-samples", "6400", "--seed", "3", "--algorithm", algorithm, "--device", device,
                "--out", str(out), "--no-progress", "--no-plot"])
    with np.load(out / mnist.CHECKPOINT, allow_pickle=False) as data:
        return {name: hashlib.sha256(np.ascontiguousarray(data[name]).tobytes()).hexdigest() for name in sorted(data)
                if data[name].dtype.kind != "U"}  # the JSON metadata string holds wall times


def recorded() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("run", sorted(RUNS))
def test_checkpoint_arrays_are_unchanged(run, tmp_path):
    golden = recorded()
    if golden["blas_fingerprint"] != blas_fingerprint():
        pytest.skip("this CPU's BLAS sums float32 products differently from the machine the hashes were recorded on")
    got = checkpoint_hashes(*RUNS[run], tmp_path / run)
    want = golden["runs"][run]
    assert got.keys() == want.keys()
    changed = [name for name in want if got[name] != want[name]]
    assert not changed, f"{run}: arrays changed: {changed}"


def test_the_hashes_see_a_one_ulp_change():
    a = np.ones(4, np.float32)
    b = a.copy()
    b[2] = np.nextafter(b[2], np.float32(2))
    assert hashlib.sha256(a.tobytes()).hexdigest() != hashlib.sha256(b.tobytes()).hexdigest()


if __name__ == "__main__":  # re-record
    import tempfile
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: checkpoint_hashes(*spec, Path(tmp) / name) for name, spec in RUNS.items()}
    GOLDEN.write_text(json.dumps(dict(blas_fingerprint=blas_fingerprint(), numpy=np.__version__, runs=runs), indent=1)
                      + "\n")
    print(f"recorded {GOLDEN}")
