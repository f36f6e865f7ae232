"""A new device model is one Python module: defining the class (with a ``cli_name``) and registering its step
function with its CUDA twin given as text is all it takes for ``crossbar.presets``, ``--device`` of the jobs, a CPU
tile, the nvcc compile check and the GPU update kernel (instantiated from the registry) to use it."""

import numpy as np
import pytest

import crossbar.config as cfg
import crossbar.physics.devices as D
import crossbar.physics.devices.base as base
from crossbar import AnalogTile, TileConfig, presets
from crossbar.physics.devices.base import PulsedDevice, clip_to_bounds, register_step, signed_step
from models import mnist

from test_kernels_compile import NVCC, instances, nvcc_compile

TOY_CUDA = """
struct toy_half_step : no_summing {
  __device__ static float step(float w, bool up, const ElementParams& p, float, const float*) {
    return clip_bounds(w + 0.5f * signed_step(up, p), p);
  }
};
"""


@pytest.fixture
def toy_device():
    """A toy model defined as a user would in a module of their own: half a constant step per pulse."""
    registries = (cfg.DEVICE_MODELS, base.STEPS, base.CUDA_STEPS, cfg._REGISTRY)
    saved = [dict(r) for r in registries]

    @register_step(cuda=TOY_CUDA)
    def toy_half_step(w, up, p, xi, c):
        return clip_to_bounds(w + np.float32(0.5) * signed_step(up, p), p)

    @cfg.config
    class ToyHalfStepDevice(PulsedDevice):
        """Half a step of ``dw_min`` per pulse, without noise."""

        cli_name = "toy-half-step"
        step_name = "toy_half_step"

    yield ToyHalfStepDevice
    for registry, before in zip(registries, saved):
        registry.clear()
        registry.update(before)


def test_a_defined_device_model_is_known_everywhere(toy_device):
    assert cfg.DEVICE_MODELS["toy-half-step"] is toy_device
    assert isinstance(presets.device("toy-half-step"), toy_device)
    assert "toy-half-step" in mnist.make_parser().format_help()
    args = mnist.make_parser().parse_args(["--device", "toy-half-step"])
    assert args.device == "toy-half-step"
    assert toy_device not in D.PULSED_DEVICES  # the snapshot taken at import stays the shipped models


def toy_tile(toy_device, backend="numpy"):
    dev = toy_device(dw_min=0.01, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                     count_pulses=True)
    tile = AnalogTile(3, 4, TileConfig(device=dev), seed=1, backend=backend)
    x = np.array([[0.5, -0.2, 0.0, 0.9], [0.1, 0.7, -0.4, 0.2]], np.float32)
    d = np.array([[0.3, -0.6, 0.1], [-0.2, 0.4, 0.5]], np.float32)
    tile.update(x, d, 0.1)
    return tile


def test_a_defined_device_model_trains_a_tile(toy_device):
    tile = toy_tile(toy_device)
    net = tile.pulse_counts["up"] - tile.pulse_counts["down"]
    assert np.abs(net).max() > 0
    np.testing.assert_allclose(tile.get_weights(), 0.5 * 0.01 * net, atol=1e-7)


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed")
def test_a_defined_device_models_cuda_twin_is_compiled_into_the_update_kernel(toy_device, tmp_path):
    from crossbar.cuda.kernels import kernel_source
    assert "toy_half_step" in base.STEPS and base.CUDA_STEPS["toy_half_step"] == TOY_CUDA
    nvcc_compile(kernel_source("pulses", base.CUDA_STEPS.values()) + instances(base.STEPS), tmp_path)


@pytest.mark.gpu
def test_a_defined_device_model_runs_on_the_gpu(toy_device):
    # the same pulses and weights as the CPU tile: the kernel template was instantiated for the toy struct
    import cupy
    cpu, gpu = toy_tile(toy_device), toy_tile(toy_device, "cupy")
    for k in ("up", "down"):
        assert np.array_equal(cpu.pulse_counts[k], cupy.asnumpy(gpu.pulse_counts[k]))
    assert np.array_equal(cpu.get_weights(), gpu.get_weights())


def test_two_models_cannot_share_a_name(toy_device):
    with pytest.raises(ValueError, match="'toy-half-step' of .*Other is taken by .*ToyHalfStepDevice"):
        class Other(PulsedDevice):
            cli_name = "toy-half-step"


def test_every_step_function_has_a_gpu_test_case():
    # the GPU update test (tests/gpu/test_update_gpu.py, skipped without a GPU) compares each device kernel with
    # the NumPy reference; a model whose step function it does not cover fails here, on the CPU
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "gpu" / "test_update_gpu.py"
    spec = importlib.util.spec_from_file_location("gpu_update_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    covered = {dev.step_name for dev in module.DEVICES.values()}
    assert covered >= {cls.step_name for cls in D.PULSED_DEVICES}


def test_the_cuda_twins_name_the_constants_as_the_python_models_do():
    # each struct's enum Const names c[...] as the Python model's scalars() names them, in the same order (up to the
    # first array constant: after it the offsets depend on its length)
    import re
    from crossbar.cuda.kernels import KERNEL_DIR
    source = (KERNEL_DIR / "devices.cuh").read_text()
    enums = {name: [v.strip() for v in body.split(",")]
             for name, body in re.findall(r"struct (\w+)[^{]*\{\s*(?://[^\n]*\n\s*)?enum Const \{([^}]*)\}", source)}
    for cls in D.PULSED_DEVICES:
        keys, values = list(cls().scalars()), list(cls().scalars().values())
        first_array = next((i for i, v in enumerate(values) if np.ndim(v)), len(keys) - 1)
        assert enums[cls.step_name] == keys[:first_array + 1], cls.__name__
