"""GPU MVMs (fused kernel and cuBLAS reference path) against the NumPy reference; GPU error handling."""

import numpy as np
import pytest

from crossbar import AnalogTile, IOParameters, TileConfig
from crossbar.physics import rng

pytestmark = pytest.mark.gpu
F32 = np.float32

CONFIGS = {
    "default": IOParameters(),
    "perfect": IOParameters(is_perfect=True, out_scale=2.0),
    "nm_none_no_bm": IOParameters(noise_management="none", bound_management="none", inp_bound=2.0),
    "nm_max_sto": IOParameters(noise_management="max", inp_sto_round=True, out_sto_round=True),
    "nm_constant": IOParameters(noise_management="constant", nm_thres=2.0),
    "w_noise_add": IOParameters(w_noise=0.02, w_noise_type="additive_constant", inp_noise=0.01),
    "w_noise_pcm": IOParameters(w_noise=0.02, w_noise_type="pcm_read", inp_asymmetry=0.1, out_asymmetry=0.05),
    "saturating": IOParameters(out_bound=1.0),  # forces bound-management rounds
    "reference_path": IOParameters(out_noise_std=0.2, ir_drop=0.5),  # not in the fused kernel: cuBLAS path
}


def pair(cfg, out_size=33, in_size=70, seed=2):
    tcfg = TileConfig(forward=cfg, backward=cfg)
    cpu = AnalogTile(out_size, in_size, tcfg, seed=seed)
    cpu.set_weights(rng.uniform_array(rng.seed_key(seed), 0, (out_size, in_size)) * F32(0.6) - F32(0.3))
    gpu = AnalogTile(out_size, in_size, tcfg, seed=seed)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cupy")


def close_enough(a, b, cfg, x):
    """GPU ``b`` against NumPy ``a``. The sums run in another order than BLAS, so they agree to float32
    rounding, except that an output on an ADC rounding edge may land one ADC level away: at most one level
    (2 out_bound out_res, at the sample's input scale max|x| times the bound-management factor, at most 2**4
    in these tests), in at most one output or 0.1% of them. Measured on an H200 over these configurations
    and batches 1 to 1024: the largest difference was one level (0.106, stochastic rounding, batch 1024), in
    at most 0.003% of the outputs (``benchmarks/gpu_agreement.py``)."""
    diff = np.abs(a - b).astype(np.float64)
    rounding = 1e-5 * np.maximum(np.abs(a), 1)
    level = 2 * cfg.out_bound * cfg.out_res if cfg.out_res > 0 and not cfg.is_perfect else 0.0
    scale = np.abs(x).max(axis=1, keepdims=True) * 2 ** 4
    assert (diff <= rounding + level * scale).all(), diff.max()
    assert np.sum(diff > rounding) <= max(1, 0.001 * diff.size), np.mean(diff > rounding)
    return float(diff.max())


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("batch", [1, 16, 64, 100, 130, 257, 1024])  # >= 130: one block per sample
def test_gpu_mvm_matches_numpy(name, batch):
    import cupy
    cfg = CONFIGS[name]
    cpu, gpu = pair(cfg)
    x = rng.normal_array(rng.seed_key(3), 0, (batch, 70)) * F32(2 if name == "saturating" else 1)
    d = rng.normal_array(rng.seed_key(4), 0, (batch, 33))
    for _ in range(2):  # second call: advanced counters name fresh noise on both backends
        yc, yg = cpu.forward(x), cupy.asnumpy(gpu.forward(x))
        close_enough(yc, yg, cfg, x)
        zc, zg = cpu.backward(d), cupy.asnumpy(gpu.backward(d))
        close_enough(zc, zg, cfg, d)
    assert cpu.counters == gpu.counters
    assert isinstance(gpu.counter_array, cupy.ndarray)  # one copy, in device memory, read by the kernels


@pytest.mark.parametrize("name", ["default", "nm_max_sto", "w_noise_add", "saturating"])
def test_gpu_large_tile_path_matches_numpy(name, monkeypatch):
    import cupy
    from crossbar.cuda import kernels as _cuda
    monkeypatch.setattr(_cuda, "FUSED_MAX_MACS", 0)  # force the DAC / cuBLAS / ADC path
    cfg = CONFIGS[name]
    cpu, gpu = pair(cfg)
    x = rng.normal_array(rng.seed_key(5), 0, (9, 70)) * F32(2 if name == "saturating" else 1)
    close_enough(cpu.forward(x), cupy.asnumpy(gpu.forward(x)), cfg, x)
    d = rng.normal_array(rng.seed_key(6), 0, (9, 33))
    close_enough(cpu.backward(d), cupy.asnumpy(gpu.backward(d)), cfg, d)


def test_fused_kernel_choice_is_a_pure_function_of_shapes():
    from crossbar.cuda import kernels as _cuda
    cfg = IOParameters()
    assert _cuda.use_fused_mvm(cfg, 785, 256, 64) and _cuda.use_fused_mvm(cfg, 785, 256, 1)
    assert not _cuda.use_fused_mvm(cfg, 4096, 4096, 1024)
    assert not _cuda.use_fused_mvm(IOParameters(ir_drop=1.0), 785, 256, 64)


def test_gpu_out_of_memory_names_the_tile():
    import cupy
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    tile = AnalogTile(512, 512, seed=1)
    before = tile.get_weights()
    pool.set_limit(size=2 * 1024 * 1024)  # 2 MiB: too little for the tile's parameters
    try:
        with pytest.raises(MemoryError, match=r"AnalogTile\(512, 512.*out of memory moving"):
            tile.to("cupy")
    finally:
        pool.set_limit(size=0)
    assert tile.backend == "numpy" and np.array_equal(tile.get_weights(), before)


def test_bad_launch_gives_a_clear_error():
    from crossbar.cuda import kernels as _cuda
    import cupy
    with pytest.raises(ValueError, match="expected dtype float32"):
        _cuda.check("x", cupy.zeros(3, cupy.float64), np.float32)
    with pytest.raises(RuntimeError, match="CUDA error in bad launch"):
        c0, out = cupy.zeros(1, cupy.uint32), cupy.zeros((4, 1), cupy.uint32)
        args = (c0, np.int64(1), np.uint32(0), np.uint32(0), np.uint32(0), np.uint32(1), np.uint32(2), np.int32(0), out)
        _cuda.launch(_cuda.kernel("rng", "philox_words"), (1,), (4096,), args, "bad launch")
