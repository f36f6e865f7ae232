"""GPU pulsed update against the NumPy reference: identical pulse counts, weights to a few ulp."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import crossbar.physics.devices as D
from crossbar import AnalogTile, TileConfig, UpdateParameters
from crossbar.physics import rng

pytestmark = pytest.mark.gpu
F32 = np.float32

DEVICES = {
    "constant": D.ConstantStepDevice(count_pulses=True),
    "constant_noisy": D.ConstantStepDevice(count_pulses=True, dw_min_std=0.6),  # per pulse, not summed
    "linear": D.LinearStepDevice(count_pulses=True, gamma_up=0.3, gamma_down=0.1, write_noise_std=0.5),
    "soft_bounds": D.SoftBoundsDevice(count_pulses=True),
    "soft_bounds_additive": D.SoftBoundsDevice(count_pulses=True, mult_noise=False),
    "sb_reference": D.SoftBoundsReferenceDevice(count_pulses=True, reference_std=0.05, subtract_symmetry_point=True,
                                                write_noise_std=0.3),
    "exp": D.ExpStepDevice(count_pulses=True),
    "exp_complex": D.ExpStepDevice(count_pulses=True, dw_min_std_add=0.01, dw_min_std_slope=0.1),
    "pow": D.PowStepDevice(count_pulses=True, pow_gamma=1.5),
    "pow_reference": D.PowStepReferenceDevice(count_pulses=True, reference_std=0.02),
    "piecewise": D.PiecewiseStepDevice(count_pulses=True, piecewise_up=(0.5, 1.0, 1.5, 1.0),
                                       piecewise_down=(1.5, 1.0, 0.5, 0.7)),
}
# exp and pow use expf/powf, which may differ from NumPy's float32 exp/power by an ulp or two per pulse
TRANSCENDENTAL = {"exp", "exp_complex", "pow", "pow_reference"}


def pair(dev, out_size, in_size, seed, update=UpdateParameters()):
    cfg = TileConfig(device=dev.replace(dw_min=0.01), update=update)
    cpu = AnalogTile(out_size, in_size, cfg, seed=seed)
    w0 = rng.uniform_array(rng.seed_key(seed), 0, (out_size, in_size)) * F32(0.8) - F32(0.4)
    cpu.set_weights(w0)
    gpu = AnalogTile(out_size, in_size, cfg, seed=seed)
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cupy")
    return cpu, gpu


def batch_inputs(seed, batch, in_size, out_size):
    x = rng.normal_array(rng.seed_key(seed, 1), 0, (batch, in_size))
    x[:, ::3] = 0  # sparse inputs, like MNIST
    d = rng.normal_array(rng.seed_key(seed, 2), 0, (batch, out_size)) * F32(0.3)
    return x, d


def assert_tiles_agree(cpu, gpu, name):
    import cupy
    for k in ("up", "down"):
        assert np.array_equal(cpu.pulse_counts[k], cupy.asnumpy(gpu.pulse_counts[k])), f"{name}: pulse counts {k}"
    a, b = cpu.get_weights(), gpu.get_weights()
    if name in TRANSCENDENTAL:
        # a few ulp per pulse of the step size, accumulated over at most a few hundred pulses
        assert np.abs(a - b).max() <= 1e-5, f"{name}: max diff {np.abs(a - b).max()}"
    else:
        assert np.array_equal(a, b), f"{name}: {np.count_nonzero(a != b)} weights differ, max {np.abs(a - b).max()}"
    for k, v in cpu.hidden_parameters().items():
        np.testing.assert_allclose(gpu.hidden_parameters()[k], v, rtol=0, atol=1e-5 if name in TRANSCENDENTAL else 0)
    assert cpu.counters == gpu.counters


@pytest.mark.parametrize("name", list(DEVICES))
@pytest.mark.parametrize("batch", [1, 13])
@pytest.mark.parametrize("lr", [0.05, -0.3])
def test_gpu_update_matches_numpy(name, batch, lr):
    cpu, gpu = pair(DEVICES[name], 17, 45, seed=3)
    for step in range(3):
        x, d = batch_inputs(step, batch, 45, 17)
        cpu.update(x, d, lr)
        gpu.update(x, d, lr)
    assert cpu.pulse_counts["up"].sum() + cpu.pulse_counts["down"].sum() > 0
    assert_tiles_agree(cpu, gpu, name)


@pytest.mark.parametrize("batch", [64, 100, 257, 1024])  # above 32 at BL <= 31: the 32-sample chunk path
@pytest.mark.parametrize("bl", [31, 5])
@pytest.mark.parametrize("name", ["constant", "constant_noisy", "soft_bounds", "sb_reference", "exp", "piecewise"])
def test_gpu_update_chunked_batches_match_numpy(name, bl, batch):
    upd = UpdateParameters(desired_bl=bl)
    cpu, gpu = pair(DEVICES[name], 19, 37, seed=11, update=upd)
    for step in range(2):
        x, d = batch_inputs(step + 20, batch, 37, 19)
        cpu.update(x, d, 0.05)
        gpu.update(x, d, 0.05)
    assert cpu.pulse_counts["up"].sum() > batch and cpu.pulse_counts["down"].sum() > batch
    assert_tiles_agree(cpu, gpu, name)


@pytest.mark.parametrize("ptype", ["mean_count", "deterministic_implicit"])
@pytest.mark.parametrize("name", ["constant", "soft_bounds", "linear"])
def test_gpu_deterministic_pulse_types(ptype, name):
    upd = UpdateParameters(pulse_type=ptype, desired_bl=10, x_res_implicit=0.1 if ptype != "mean_count" else 0)
    cpu, gpu = pair(DEVICES[name], 9, 21, seed=5, update=upd)
    for step in range(2):
        x, d = batch_inputs(step + 7, 6, 21, 9)
        cpu.update(x, d, 0.2)
        gpu.update(x, d, 0.2)
    assert_tiles_agree(cpu, gpu, name)


@settings(max_examples=15, deadline=None)
@given(out_size=st.integers(1, 40), in_size=st.integers(1, 70), batch=st.integers(1, 20),
       seed=st.integers(0, 2**31), name=st.sampled_from(sorted(DEVICES)),
       bl=st.sampled_from([1, 7, 31, 40, 100]), ublm=st.booleans(), res=st.sampled_from([0.0, 0.05]))
def test_gpu_update_matches_numpy_random_shapes(out_size, in_size, batch, seed, name, bl, ublm, res):
    upd = UpdateParameters(desired_bl=bl, update_bl_management=ublm, res=res, sto_round=res > 0)
    cpu, gpu = pair(DEVICES[name], out_size, in_size, seed, update=upd)
    x, d = batch_inputs(seed, batch, in_size, out_size)
    cpu.update(x, d, 0.1)
    gpu.update(x, d, 0.1)
    assert_tiles_agree(cpu, gpu, name)


def test_gpu_philox_and_normals_are_bit_identical():
    import cupy
    from crossbar.cuda import kernels as _cuda
    c0 = np.arange(100_000, dtype=np.uint32)
    key = rng.seed_key(12)
    words = _cuda.philox_words(key, cupy.asarray(c0), 7, 3, rng.Stream.OUT_NOISE)
    assert np.array_equal(cupy.asnumpy(words), rng.philox4x32(key, c0, 7, 3, rng.Stream.OUT_NOISE))
    normals = _cuda.philox_normals(key, cupy.asarray(c0), 7, 3, rng.Stream.OUT_NOISE)
    assert np.array_equal(cupy.asnumpy(normals), rng.normal(key, rng.Stream.OUT_NOISE, c0, 7, 3))


def test_kat_vectors_on_gpu():
    import cupy
    from crossbar.cuda import kernels as _cuda
    out = _cuda.philox_words((0xA4093822, 0x299F31D0), cupy.asarray([0x243F6A88], dtype=np.uint32), 0x85A308D3,
                             0x13198A2E, 0x03707344)
    assert cupy.asnumpy(out).ravel().tolist() == [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]
