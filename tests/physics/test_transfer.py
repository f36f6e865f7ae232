"""The Tiki-Taka family and mixed precision: transfers, buffers, choppers, warm-up, resume."""

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import (BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound, IOParameters,
                      MixedPrecisionCompound, TileConfig, TransferCompound, UpdateParameters, make_tile)
from crossbar.physics import rng
from crossbar.presets import ALGORITHMS, build_config

F32 = np.float32
PERFECT = IOParameters(is_perfect=True)
FP = UpdateParameters(pulse_type="none")  # floating-point writes: exact arithmetic for the bookkeeping tests


def quiet(**kw):
    """A noise-free constant-step device with far bounds and no device-to-device spread."""
    base = dict(dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max=100.0, w_min=-100.0, w_max_dtod=0.0,
                w_min_dtod=0.0, reset_std=0.0)
    return D.ConstantStepDevice(**{**base, **kw})


def inputs(seed, batch, size, scale=1.0):
    return rng.normal_array(rng.seed_key(seed), 0, (batch, size)) * F32(scale)


def test_ttv1_with_reset_is_sgd_on_c():
    # every sample: read all columns of A, write them onto C, reset A: C follows SGD with lr * transfer_lr
    cc = TransferCompound(unit_cell_devices=(quiet(), quiet()), transfer_every=1, units_in_mbatch=False,
                          n_reads_per_transfer=5, with_reset_prob=1.0, transfer_forward=PERFECT, transfer_update=FP,
                          transfer_lr=0.5, scale_transfer_lr=False)
    tile = make_tile(3, 5, TileConfig(device=cc, update=FP), seed=1)
    x, d = inputs(1, 4, 5), inputs(2, 4, 3)
    tile.update(x, d, 0.1)
    np.testing.assert_allclose(tile.get_weights(), -0.1 * 0.5 * d.T @ x, rtol=1e-5, atol=1e-7)
    assert np.abs(tile.sub[0].get_weights()).max() == 0  # A was reset after each transfer


def test_ttv1_with_reset_is_sgd_on_c_in_expectation_with_pulses():
    cc = TransferCompound(unit_cell_devices=(quiet(dw_min=0.001), quiet(dw_min=0.001)), transfer_every=1,
                          units_in_mbatch=False, n_reads_per_transfer=4, with_reset_prob=1.0,
                          transfer_forward=PERFECT, scale_transfer_lr=False)
    x, d = np.array([[0.8, -0.4, 0.2, 0.0]], F32), np.array([[0.3, -0.2]], F32)
    trials = []
    for seed in range(400):
        tile = make_tile(2, 4, TileConfig(device=cc), seed=seed)
        tile.update(x, d, 0.05)
        trials.append(tile.get_weights())
    trials = np.array(trials, np.float64)
    # two stochastic stages (A pulses, then C pulses): std of one trial <= ~2e-3; 400 trials: 1e-4; 6 sigma
    np.testing.assert_allclose(trials.mean(0), -0.05 * d.T @ x, atol=6e-4)


def test_transfer_writes_lr_t_times_the_column_in_expectation():
    cc = TransferCompound(unit_cell_devices=(quiet(), quiet()), transfer_every=1, units_in_mbatch=False,
                          transfer_forward=PERFECT, transfer_lr=2.0, scale_transfer_lr=False)
    a_col = np.array([0.005, -0.003, 0.001], F32)  # 2 a_col stays below BL dw_min = 0.031
    changes = []
    for seed in range(300):
        tile = make_tile(3, 4, TileConfig(device=cc), seed=seed)
        a = np.zeros((3, 4), F32)
        a[:, 0] = a_col
        tile.sub[0].set_weights(a)
        tile.update(np.zeros((1, 4), F32), np.zeros((1, 3), F32), 0.1)  # no pulses; one transfer of column 0
        changes.append(tile.sub[1].get_weights())
    changes = np.array(changes, np.float64)
    assert np.abs(changes[:, :, 1:]).max() == 0  # only column 0 is written
    # E = +2 a_col; one trial's std <= sqrt(E[n]) dw ~ 3e-3, 300 trials: 1.8e-4; 5 sigma is 9e-4
    np.testing.assert_allclose(changes[:, :, 0].mean(0), 2.0 * a_col, atol=1e-3)


def test_ttv2_buffer_emits_trunc_and_keeps_the_remainder():
    cc = BufferedTransferCompound(unit_cell_devices=(quiet(dw_min=0.01), quiet(dw_min=0.01)), transfer_every=1,
                                  units_in_mbatch=False, transfer_forward=PERFECT, forget_buffer=False,
                                  momentum=0.0, transfer_update=FP.replace(desired_bl=4), scale_transfer_lr=False)
    tile = make_tile(4, 2, TileConfig(device=cc), seed=3)
    a = np.zeros((4, 2), F32)
    a[:, 0] = [0.027, -0.012, 0.004, 0.5]
    tile.sub[0].set_weights(a)
    tile.state["buffer"][:, 0] = [0.0, -0.005, 0.003, 0.0]
    tile.update(np.zeros((1, 2), F32), np.zeros((1, 4), F32), 0.1)
    h = np.array([0.027, -0.017, 0.007, 0.5], np.float64)  # H + |lr_t| v with lr_t = 1, threshold 0.01
    n = np.clip(np.trunc(h / 0.01), -4, 4)
    np.testing.assert_allclose(tile.state["buffer"][:, 0], h - n * 0.01, atol=1e-6)
    np.testing.assert_allclose(tile.sub[1].get_weights()[:, 0], n * 0.01, atol=1e-6)  # step * dw_C * n


@pytest.mark.parametrize("c_in,c_out", [(False, False), (True, False), (False, True), (True, True)])
def test_chopped_visible_weight(c_in, c_out):
    cc = ChoppedTransferCompound(unit_cell_devices=(quiet(), quiet()), gamma=0.5)
    tile = make_tile(3, 4, TileConfig(device=cc), seed=2)
    a, c = inputs(1, 3, 4, 0.1), inputs(2, 3, 4, 0.1)
    tile.sub[0].set_weights(a)
    tile.sub[1].set_weights(c)
    tile.state["c_in"][:] = c_in
    tile.state["c_out"][:] = c_out
    tile._refresh()
    sign = 1 if c_in == c_out else -1
    np.testing.assert_array_equal(tile.get_weights(), F32(0.5) * (sign * a) + c)


def test_chopped_updates_flip_the_stored_sign():
    cc = ChoppedTransferCompound(unit_cell_devices=(quiet(), quiet()), transfer_every=0, in_chop_prob=0.0,
                                 transfer_forward=PERFECT)
    tile = make_tile(2, 3, TileConfig(device=cc, update=FP), seed=2)
    tile.state["c_in"][1] = True
    x, d = inputs(3, 2, 3), inputs(4, 2, 2)
    tile.update(x, d, 0.1)
    true = -F32(cc.fast_lr) * (d.T @ x)  # fast_lr is absolute (scale_fast_lr False)
    stored = true.copy()
    stored[:, 1] *= -1
    np.testing.assert_allclose(tile.sub[0].get_weights(), stored, rtol=1e-6)


def test_agad_writes_nothing_during_warm_up():
    cc = DynamicTransferCompound(unit_cell_devices=(quiet(dw_min=0.001), quiet(dw_min=0.001)),
                                 transfer_forward=PERFECT, in_chop_prob=0.5)  # period P = 2 sweeps
    tile = make_tile(3, 4, TileConfig(device=cc), seed=5)
    x, d = inputs(1, 8, 4), inputs(2, 8, 3, 0.5)
    tile.update(x, d, 0.001)  # 8 transfers = 2 sweeps of 4 columns: still warming up
    assert tile.sweeps == 2 and np.abs(tile.sub[1].get_weights()).max() == 0
    assert np.abs(tile.state["buffer"]).max() > 0  # the buffer did accumulate
    for k in range(6):
        tile.update(inputs(10 + k, 8, 4), inputs(20 + k, 8, 3, 0.5), 0.1)
    assert np.abs(tile.sub[1].get_weights()).max() > 0  # after the warm-up C is written


def test_mixed_precision_transfers_trunc_and_keeps_the_remainder():
    cc = MixedPrecisionCompound(device=quiet(dw_min=0.01), transfer_every=1)
    tile = make_tile(3, 4, TileConfig(device=cc, update=FP), seed=1)
    x, d = inputs(1, 5, 4), inputs(2, 5, 3)
    tile.update(x, d, 0.1)
    chi = 0.1 * (d.T @ x).astype(np.float64)
    n = np.trunc(chi / 0.01)
    np.testing.assert_allclose(tile.state["chi"], chi - n * 0.01, atol=1e-6)
    np.testing.assert_allclose(tile.get_weights(), -n * 0.01, atol=1e-6)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_checkpoint_resume_is_exact(algorithm):
    cfg = build_config(algorithm, "soft-bounds-reference")
    a = make_tile(5, 7, cfg, seed=3)
    for s in range(7):
        a.update(inputs(s, 4, 7), inputs(s + 50, 4, 5, 0.2), 0.1)
    state = {k: np.array(v, copy=True) for k, v in a.state_dict().items()}
    b = make_tile(5, 7, cfg, seed=99)
    b.load_state_dict(state)
    for s in range(7, 12):
        for t in (a, b):
            t.update(inputs(s, 4, 7), inputs(s + 50, 4, 5, 0.2), 0.1)
    assert np.array_equal(a.get_weights(), b.get_weights())
    assert np.array_equal(a.forward(inputs(9, 2, 7)), b.forward(inputs(9, 2, 7)))


def test_build_config_and_validation():
    for algorithm, cls in (("tiki-taka", TransferCompound), ("ttv2", ChoppedTransferCompound),
                           ("c-ttv2", ChoppedTransferCompound), ("agad", DynamicTransferCompound),
                           ("mp", MixedPrecisionCompound)):
        cfg = build_config(algorithm, D.SoftBoundsReferenceDevice())
        assert type(cfg.device) is cls
    assert build_config("ttv2", "capacitor").device.in_chop_prob == 0
    assert build_config("c-ttv2", "capacitor").update.desired_bl == 5
    with pytest.raises(ValueError, match="unknown algorithm"):
        build_config("adam", "capacitor")
    with pytest.raises(ValueError, match="unit_cell_devices"):
        TransferCompound(unit_cell_devices=(quiet(),))
    with pytest.raises(ValueError, match="exactly two devices"):
        ChoppedTransferCompound(unit_cell_devices=(quiet(), quiet(), quiet()))
    with pytest.raises(ValueError, match="transfer_forward"):
        TransferCompound(transfer_forward=IOParameters(inp_noise=0.1, noise_management="none"))
    for name in ("n_x_bins", "n_d_bins"):  # one bin has no width
        with pytest.raises(ValueError, match=f"{name} = 1: must be 0 .no quantisation. or at least 2 bins"):
            MixedPrecisionCompound(**{name: 1})


@pytest.mark.parametrize("algorithm", ["buffered", "ttv2", "c-ttv2", "agad"])
@pytest.mark.parametrize("device", ["soft-bounds-reference", "reram-sb", "constant-step"])
def test_fused_transfers_equal_the_independent_reference(algorithm, device):
    # the fused path (one A update with in-batch column snapshots and chopper flips, then all transfers at
    # once) reproduces the per-sample reference of test_transfer_reference bit for bit, for each preset device
    from test_transfer_reference import run_pair
    if algorithm == "buffered":  # the TTv2 class itself: threshold theta, momentum kept after a write
        dev = build_config("sgd", device).device
        cfg = TileConfig(device=BufferedTransferCompound(unit_cell_devices=(dev, dev), transfer_every=1,
                                                         units_in_mbatch=False, forget_buffer=False,
                                                         transfer_update=UpdateParameters(desired_bl=3)))
    else:
        cfg = build_config(algorithm, device)
    if algorithm in ("c-ttv2", "agad"):
        cfg = cfg.replace(device=cfg.device.replace(in_chop_prob=0.5))  # frequent in-batch chopper flips
    # 6 x 8 samples: more than two sweeps of the 21 columns, every batch fused
    _, _, fused_batches = run_pair(cfg, 9, 21, [8] * 6, seed=4, check_each=False)
    assert fused_batches == 6


def test_chain_transfers_fall_at_batch_ends_only():
    # a third device is fed once per period of device 1; a period that would need two such transfers inside
    # one batch (interleaved with A's) is refused rather than approximated
    dev = quiet(dw_min=0.01)
    cc = TransferCompound(unit_cell_devices=(dev, dev, dev), units_in_mbatch=False, transfer_every=1)
    tile = make_tile(2, 3, TileConfig(device=cc), seed=1)  # periods 1 and 1 * 2 / 1 = 2
    tile.update(inputs(1, 2, 3), inputs(2, 2, 2), 0.1)  # one transfer of device 1, at the batch end: fine
    with pytest.raises(NotImplementedError, match="multiple of the batch size"):
        tile.update(inputs(1, 4, 3), inputs(2, 4, 2), 0.1)  # two would be due


def test_ttv1_reset_is_column_wise():
    # with_reset_prob is the probability that a read column is reset, as a whole (the incumbent's convention):
    # with reset_std 0 every device of a reset column returns to exactly its reset bias (0 here)
    cc = TransferCompound(unit_cell_devices=(quiet(dw_min=0.01), quiet(dw_min=0.01)), transfer_every=1,
                          units_in_mbatch=False, with_reset_prob=0.5, transfer_forward=PERFECT)
    tile = make_tile(6, 4, TileConfig(device=cc), seed=2)
    resets = 0
    for step in range(40):
        tile.sub[0].set_weights(np.full((6, 4), 0.3, F32))
        c = tile.slices[0]
        tile.update(np.zeros((1, 4), F32), np.zeros((1, 6), F32), 0.1)  # no pulses: one transfer of column c
        col = tile.sub[0].get_weights()[:, c]
        assert np.all(col == 0) or np.all(col == F32(0.3)), col  # all or nothing
        resets += bool(np.all(col == 0))
    # Binomial(40, 0.5): 20 +- 3.2; [8, 32] is beyond 3.7 sigma (false-failure rate < 3e-4 for the fixed seed)
    assert 8 <= resets <= 32


@pytest.mark.parametrize("field,value", [("out_chop_prob", 0.1), ("no_buffer", True)])
def test_agad_rejects_output_choppers_and_no_buffer(field, value):
    with pytest.raises(ValueError, match=field):
        DynamicTransferCompound(**{field: value})
