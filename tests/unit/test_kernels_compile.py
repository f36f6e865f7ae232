"""Every CUDA source compiles with the local nvcc (no GPU needed), so a syntax error cannot land."""

import shutil
import subprocess
from pathlib import Path

import pytest

KERNELS = sorted((Path(__file__).resolve().parents[2] / "raw_kernels").glob("*.cu"))
NVCC = shutil.which("nvcc")


def test_there_are_kernels():
    assert {p.stem for p in KERNELS} >= {"pulses", "rng"}


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("source", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles(source, tmp_path):
    # the same options crossbar/cuda/kernels.py gives NVRTC, for the architecture the project targets
    from crossbar.cuda.kernels import OPTIONS
    cmd = [NVCC, *OPTIONS, "-arch=sm_90", f"-I{source.parent}", "-c", str(source), "-o", str(tmp_path / "k.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "warning" not in proc.stderr.lower(), proc.stderr[-4000:]
