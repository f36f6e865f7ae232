"""Compound-tile behaviours that mutation testing (mutmut, ``crossbar/tiles/transfer.py``) found unpinned.

Each test names the mutant(s) it kills; expectations come from the documented behaviour of the compound tiles
(the seed of a tile, checkpoint contents, delegation of the device operations, validation of the configs).
"""

import numpy as np
import pytest

import crossbar.physics.devices as D
from crossbar import (AnalogTile, BufferedTransferCompound, ChoppedTransferCompound, DriftParameter,
                      DynamicTransferCompound, IOParameters, MixedPrecisionCompound, TileConfig, TransferCompound,
                      UpdateParameters, make_tile)
from crossbar.physics import rng
from crossbar.tiles.transfer import MixedPrecisionTile, TransferTile

F32 = np.float32
QUIET_IO = IOParameters(noise_management="none", bound_management="none")


def pair(**kw):
    return tuple(D.ConstantStepDevice(dw_min=0.01, w_max=1.0, w_min=-1.0, **kw) for _ in range(2))


def batch(seed, n, size, scale=0.5):
    return rng.normal_array(rng.seed_key(seed), 0, (n, size)) * F32(scale)


def train(tile, batches, n=4, lr=0.1):
    for b in range(batches):
        tile.update(batch(2 * b, n, tile.in_size), batch(2 * b + 1, n, tile.out_size), lr)
    return tile


CONFIGS = {
    "analog": TileConfig(),
    "transfer": TileConfig(device=TransferCompound(unit_cell_devices=pair(), transfer_forward=QUIET_IO)),
    "mixed precision": TileConfig(device=MixedPrecisionCompound(device=pair()[0])),
}


@pytest.mark.parametrize("kind", CONFIGS)
def test_make_tile_passes_the_seed_to_every_kind_of_tile(kind):
    # make_tile#36 (the plain tile lost its seed): make_tile(seed=s) is the tile built with seed s, and a
    # different seed gives different device-to-device parameters
    cls = {"analog": AnalogTile, "transfer": TransferTile, "mixed precision": MixedPrecisionTile}[kind]
    made, direct, other = (f(4, 3, CONFIGS[kind], seed=s) for f, s in ((make_tile, 7), (cls, 7), (make_tile, 8)))
    assert type(made) is cls
    same = [np.array_equal(v, direct.hidden_parameters()[k]) for k, v in made.hidden_parameters().items()]
    differ = [np.array_equal(v, other.hidden_parameters()[k]) for k, v in made.hidden_parameters().items()]
    assert all(same) and not all(differ)


def chain(period_in_batches: float, batch_size: int = 4):
    """A three-device TTv1 chain whose middle transfer period is ``period_in_batches`` mini-batches."""
    cc = TransferCompound(unit_cell_devices=pair() + pair()[:1], transfer_forward=QUIET_IO, units_in_mbatch=False,
                          transfer_every_vec=(1.0, period_in_batches * batch_size, 0.0), gamma=0.5)
    return make_tile(3, 5, TileConfig(device=cc), seed=1)


def test_longer_chain_transfers_at_a_whole_number_of_batches():
    # update#128 (the alignment check used vec - batch): a period of three batches is due at the end of every
    # third batch and is allowed; a period of 2.5 batches would fall inside a batch and is refused
    tile = chain(3.0)
    assert tile._period(1, 4) == 12
    before = tile.sub[2].get_weights()
    train(tile, 2)
    assert np.array_equal(tile.sub[2].get_weights(), before)  # no transfer onto the last device yet
    train(tile, 1)
    assert not np.array_equal(tile.sub[2].get_weights(), before)
    with pytest.raises(NotImplementedError, match="multiple of the batch size"):
        train(chain(2.5), 3)


def test_checkpoint_restores_each_transfer_counter():
    # _set_host_state#3 (vec restored from the sweep count): after 7 batches of 3 samples with one column read
    # per sample on 5 columns, vec = 21, sweeps = 4, slice = 1; a resumed tile continues identically
    cc = BufferedTransferCompound(unit_cell_devices=pair(), transfer_forward=QUIET_IO, units_in_mbatch=False,
                                  transfer_every=1.0)
    tile = train(make_tile(3, 5, TileConfig(device=cc), seed=4), 7, n=3)
    assert (tile.vec, tile.sweeps, tile.slices[0]) == (21, 4, 1)
    resumed = make_tile(3, 5, TileConfig(device=cc), seed=4)
    ptr = resumed.ptr
    resumed.load_state_dict(tile.state_dict())
    assert (resumed.vec, resumed.sweeps, resumed.slices) == (tile.vec, tile.sweeps, tile.slices)
    # the pointers are written in place on resuming (a captured CUDA graph holds their address)
    assert resumed.ptr is ptr and ptr.tolist() == [tile.sweeps, *tile.slices]
    x, d = batch(50, 3, 5), batch(51, 3, 3)
    tile.update(x, d, 0.1)
    resumed.update(x, d, 0.1)
    assert np.array_equal(resumed.get_weights(), tile.get_weights())


def test_transfer_reads_use_the_line_noise_of_the_read_device():
    # _read_stored#23 (the reads drew without the tile's per-line IO state): with out_noise_std the output
    # lines of a transfer read have their own noise sigma_i, the one drawn for the fast device's forward IO
    io = QUIET_IO.replace(out_noise=0.05, out_noise_std=0.6, out_res=-1)  # no ADC steps
    cc = TransferCompound(unit_cell_devices=pair(), transfer_forward=io)
    tile = make_tile(6, 4, TileConfig(device=cc), seed=2)
    sigma = np.asarray(tile.sub[0].io_state["forward"]["out_noise_values"], np.float64)
    assert sigma.std() > 0.2 * sigma.mean()  # the lines differ
    reads = np.concatenate([tile._read(0, np.arange(4)) for _ in range(500)]).astype(np.float64)  # W = 0
    # 2000 reads per line: the std estimate is within 3.2% of sigma_i (1 sigma) -> 15% is ~5 sigma
    np.testing.assert_allclose(reads.std(axis=0), sigma, rtol=0.15)


@pytest.mark.parametrize("field,value", [("inp_noise", 0.1), ("inp_sto_round", True), ("ir_drop", 0.5),
                                         ("v_offset_std", 0.1), ("r_series", 0.1)])
def test_each_line_effect_alone_is_refused_in_transfer_reads(field, value):
    # validate#12 (one "or" became "and"): every one of the five is refused on its own
    with pytest.raises(ValueError, match="transfer_forward"):
        TransferCompound(transfer_forward=QUIET_IO.replace(**{field: value}))


def test_configs_that_would_divide_by_zero_or_show_nothing_are_refused():
    with pytest.raises(ValueError, match="gamma_vec"):
        TransferCompound(gamma_vec=(0.0, 0.0))
    with pytest.raises(ValueError, match="transfer_every"):
        ChoppedTransferCompound(auto_granularity=100.0, transfer_every=0.0)


def test_auto_granularity_scales_the_buffer_by_the_sweep_length_and_period():
    # _lr_scale: bg = buffer_granularity dw_A auto_granularity / (size |transfer_every|) (the sweep of 5 lines)
    cc = ChoppedTransferCompound(unit_cell_devices=pair(), auto_granularity=200.0, transfer_every=-2.0,
                                 buffer_granularity=1.5)
    tile = make_tile(3, 5, TileConfig(device=cc))
    bg = 1.5 * 0.01 * 200.0 / (5 * 2.0)
    assert tile._lr_scale(0.3, 0.01) == pytest.approx(0.3 / bg, rel=1e-6)


def test_set_weights_of_a_transfer_tile_puts_the_weight_on_the_last_device():
    cc = TransferCompound(unit_cell_devices=pair(), gamma=0.5, transfer_forward=QUIET_IO)
    tile = train(make_tile(3, 4, TileConfig(device=cc, update=UpdateParameters(pulse_type="none"))), 2)
    w = np.array([[0.1, -0.2, 0.3, 0.0], [0.05, 0.0, -0.1, 0.2], [0.0, 0.15, 0.0, -0.3]], F32)
    tile.set_weights(w)
    assert np.array_equal(tile.sub[0].get_weights(), np.zeros_like(w))
    np.testing.assert_array_equal(tile.sub[1].get_weights(), w)  # gamma_last = 1
    np.testing.assert_array_equal(tile.get_weights(), w)
    with pytest.raises(ValueError, match="shape"):
        tile.set_weights(w[:, :3])
    buffered = make_tile(3, 4, TileConfig(device=ChoppedTransferCompound(unit_cell_devices=pair(),
                                                                         gamma_vec=(0.5, 2.0))), seed=1)
    train(buffered, 3)
    buffered.set_weights(w)
    np.testing.assert_allclose(buffered.sub[1].get_weights(), w / 2.0, atol=1e-7)
    assert not buffered.state["buffer"].any()
    agad = make_tile(3, 4, TileConfig(device=DynamicTransferCompound(unit_cell_devices=pair(), in_chop_prob=0.5,
                                                                     fast_lr=0.05)), seed=1)
    train(agad, 4)
    assert agad.state["mean"].any() and agad.state["past_mean"].any()
    agad.set_weights(w)
    assert not (agad.state["buffer"].any() or agad.state["mean"].any() or agad.state["past_mean"].any())


@pytest.mark.parametrize("prob", [1.0, 0.5])
def test_reset_columns_of_a_compound_resets_the_fast_device_only(prob):
    # a column reset acts on A, the fast device; C keeps its weights (Gokmen & Haensch 2020, Tiki-Taka)
    dev = D.ConstantStepDevice(dw_min=0.01, w_max=1.0, w_min=-1.0, reset_std=0.0)
    tile = make_tile(3, 5, TileConfig(device=TransferCompound(unit_cell_devices=(dev, dev), gamma=0.5)), seed=2)
    w = np.full((3, 5), 0.2, F32)
    for t in tile.sub:
        t.set_weights(w)
    tile.reset_columns(3, 3, prob)  # columns 3, 4, 0 (wrapping)
    reset = tile.sub[0].get_weights() == 0
    assert not reset[:, 1:3].any() and np.array_equal(tile.sub[1].get_weights(), w)
    if prob == 1.0:
        assert reset[:, [0, 3, 4]].all()
    else:  # 9 devices each with probability 1/2: this seed resets some, not all
        assert 0 < reset[:, [0, 3, 4]].sum() < 9
    np.testing.assert_array_equal(tile.get_weights(), F32(0.5) * tile.sub[0].get_weights() + w)


def test_set_weights_of_a_mixed_precision_tile_clears_the_accumulator():
    tile = train(make_tile(3, 4, CONFIGS["mixed precision"], seed=2), 1)
    assert tile.state["chi"].any()
    w = np.full((3, 4), 0.25, F32)
    tile.set_weights(w)
    np.testing.assert_array_equal(tile.get_weights(), w)
    assert not tile.state["chi"].any()


@pytest.mark.parametrize("op,args", [("drift", (10.0,)), ("clip_weights", (0.05,)), ("decay", (0.5,)),
                                     ("diffuse", ())])
def test_device_operations_of_a_compound_act_on_every_device(op, args):
    # _CompoundTile.drift/clip_weights were reached by no test: each device of the compound changes exactly
    # as the same operation on a lone tile with its configuration, and the visible weight follows
    dev = D.ConstantStepDevice(dw_min=0.01, w_max=1.0, w_min=-1.0, lifetime=20.0, diffusion=0.01,
                               drift=DriftParameter(nu=0.1))
    cc = TransferCompound(unit_cell_devices=(dev, dev), gamma=0.5, transfer_forward=QUIET_IO)
    tile = make_tile(3, 4, TileConfig(device=cc), seed=3)
    w = np.linspace(-0.3, 0.3, 12, dtype=F32).reshape(3, 4)
    for t in tile.sub:
        t.set_weights(w)
        t.drift(0.0)  # the drift clock starts from these weights
    lone = [AnalogTile(3, 4, t.config, seed=0) for t in tile.sub]
    for t, ref in zip(tile.sub, lone):
        ref.load_state_dict(t.state_dict())
    getattr(tile, op)(*args)
    for t, ref in zip(tile.sub, lone):
        getattr(ref, op)(*args)
        assert not np.array_equal(ref.get_weights(), w)
        np.testing.assert_array_equal(t.get_weights(), ref.get_weights())
    np.testing.assert_array_equal(tile.get_weights(), F32(0.5) * lone[0].get_weights() + lone[1].get_weights())


@pytest.mark.parametrize("kind", CONFIGS)
def test_make_tile_passes_the_backend_to_every_kind_of_tile(kind):
    # make_tile#37 (the plain tile was built on the default backend): an unknown backend is refused by every kind
    with pytest.raises(ValueError, match="backend"):
        make_tile(2, 3, CONFIGS[kind], backend="numpyy")


def test_visible_weights_of_a_compound_are_updated_in_place():
    # _refresh#31: a captured CUDA graph holds the address of the visible weights, so every refresh writes into
    # the same array
    cc = TransferCompound(unit_cell_devices=pair(), gamma=0.5, transfer_forward=QUIET_IO)
    tile = make_tile(3, 4, TileConfig(device=cc), seed=1)
    weights = tile.weights
    train(tile, 2)
    assert tile.weights is weights and np.array_equal(weights, tile.get_weights()) and weights.any()


def auto_scaled(seed=1):
    cc = ChoppedTransferCompound(unit_cell_devices=pair(), auto_scale=True, fast_lr=0.5, auto_momentum=0.5)
    return make_tile(3, 4, TileConfig(device=cc), seed=seed)


def test_auto_scale_running_maxima_skip_zero_batches_and_scale_small_inputs():
    # _fast_lr#43 (a zero batch pulled the running maxima toward 0) and #59 (a factor of 0 unless max|x| > 1):
    # the first batch sets m_x = mean_b max|x_b|, m_d likewise; the device factor is 1 / (m_x m_d); an all-zero
    # batch changes nothing
    tile = auto_scaled()
    x = np.array([[0.2, -0.4, 0.1, 0.0], [0.3, 0.0, -0.1, 0.1]], F32)
    d = np.array([[0.05, -0.1, 0.0], [0.0, 0.2, -0.1]], F32)
    lr_a, scale = tile._fast_lr(0.1, x, d)
    m_x, m_d = (0.4 + 0.3) / 2, (0.1 + 0.2) / 2
    assert float(tile.state["m_x"]) == pytest.approx(m_x) and float(tile.state["m_d"]) == pytest.approx(m_d)
    assert float(scale) == pytest.approx(1 / (m_x * m_d), rel=1e-6)
    tile._fast_lr(0.1, np.zeros_like(x), np.zeros_like(d))
    assert float(tile.state["m_x"]) == pytest.approx(m_x) and float(tile.state["m_d"]) == pytest.approx(m_d)
