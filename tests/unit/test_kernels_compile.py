"""Every CUDA source compiles with the local nvcc (no GPU needed), so a syntax error cannot land; the update kernel
template is instantiated for every registered device model, as the GPU launcher instantiates it."""

import shutil
import subprocess
from pathlib import Path

import pytest

KERNELS = sorted((Path(__file__).resolve().parents[2] / "raw_kernels").glob("*.cu"))
NVCC = shutil.which("nvcc")


def test_there_are_kernels():
    assert {p.stem for p in KERNELS} >= {"pulses", "rng"}


def nvcc_compile(source_text: str, tmp_path):
    """Compile CUDA source text with the options crossbar/cuda/kernels.py gives NVRTC, for sm_90; the stderr."""
    from crossbar.cuda.kernels import KERNEL_DIR, OPTIONS
    path = tmp_path / "k.cu"
    path.write_text(source_text)
    cmd = [NVCC, *OPTIONS, "-arch=sm_90", f"-I{KERNEL_DIR}", "-c", str(path), "-o", str(tmp_path / "k.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stderr


def instances(step_names) -> str:
    """Host code that takes the address of the update kernel of each step function, instantiating it."""
    from crossbar.cuda.kernels import update_kernel_name
    return "\nvoid* update_kernels[] = {" + ", ".join(f"(void*)&{update_kernel_name(n)}" for n in step_names) + "};\n"


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
@pytest.mark.parametrize("source", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles(source, tmp_path):
    from crossbar.cuda.kernels import kernel_source
    from crossbar.physics.devices.base import CUDA_STEPS, STEPS
    text = kernel_source(source.stem, CUDA_STEPS.values())
    if source.stem == "pulses":
        text += instances(STEPS)
    stderr = nvcc_compile(text, tmp_path)
    assert "warning" not in stderr.lower(), stderr[-4000:]
