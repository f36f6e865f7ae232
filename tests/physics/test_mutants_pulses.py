"""Pulse-count behaviours that mutation testing (mutmut, ``crossbar/physics/pulses.py``) found unpinned.

Each test states its expectation from the documented semantics of ``crossbar/physics/pulses.py`` (module docstring;
Gokmen & Vlasov 2016 and aihwkit 1.1), computed here by hand, and names the mutant(s) it kills.
"""

import numpy as np
import pytest

from crossbar.physics import pulses, rng
from crossbar.config import UpdateParameters

F32 = np.float32
DETERMINISTIC = dict(update_management=False, update_bl_management=False)


def test_empty_events_are_typed_and_have_no_counts():
    # kills Events.empty mutants (wrong dtype or non-empty arrays): the empty update of a zero batch
    ev = pulses.Events.empty()
    assert [a.size for a in (ev.widx, ev.sample, ev.n, ev.up)] == [0, 0, 0, 0]
    assert (ev.widx.dtype, ev.sample.dtype, ev.n.dtype, ev.up.dtype) == (np.int64, np.int32, np.int32, np.bool_)
    c = ev.dense_counts(2, 3, 4)
    assert c.shape == (2, 3, 4) and c.dtype == np.int32 and not c.any()


def test_dense_counts_are_signed_int32():
    # weight 0 of sample 0 gets 3 up pulses, weight 5 (= row 1, column 2) of sample 1 gets 2 down pulses
    ev = pulses.Events(np.array([0, 5], np.int64), np.array([0, 1], np.int32), np.array([3, 2], np.int32),
                       np.array([True, False]))
    c = ev.dense_counts(2, 2, 3)
    want = np.zeros((2, 2, 3), np.int32)
    want[0, 0, 0], want[1, 1, 2] = -3, 2  # positive = down
    assert c.dtype == np.int32  # kills dense_counts' np.zeros(..., np.int32) -> float64
    assert np.array_equal(c, want)


def test_deterministic_counts_and_events_are_int32():
    # the Events contract (n: int32) and deterministic_counts' "(batch, out, in) int32"
    x = np.array([[1.0, -0.5, 0.25]], F32)
    d = np.array([[0.5, -1.0]], F32)
    for ptype in ("mean_count", "deterministic_implicit"):
        cfg = UpdateParameters(pulse_type=ptype, desired_bl=8, **DETERMINISTIC)
        ev = pulses.coincidences(x, d, 0.008, 0.001, cfg, rng.seed_key(0), 0)
        assert (ev.widx.dtype, ev.sample.dtype, ev.n.dtype, ev.up.dtype) == (np.int64, np.int32, np.int32,
                                                                               np.bool_), ptype
        bl = np.array([8], np.int32)
        one = np.ones(1, F32)
        c = pulses.deterministic_counts(x, d, bl, one, one, cfg, False)
        assert c.dtype == np.int32, ptype  # kills c.astype(xp.int32) -> astype(None)
        # A = B = 1: counts rint(BL p_d p_x) (implicit) with the coincidence sign; positive = down
        if ptype == "deterministic_implicit":
            assert c[0].tolist() == [[4, -2, 1], [-8, 4, -2]]


def test_mean_count_with_a_one_slot_train():
    # BL = 1, A = B = 1 (lr = dw BL): a full-scale x and d each fire their single slot, so every
    # coincidence of full-scale lines is exactly one pulse (rint(1 * 1 / 1)); kills max(BL, 1) -> max(BL, 2)
    cfg = UpdateParameters(pulse_type="mean_count", desired_bl=1, **DETERMINISTIC)
    x = np.array([[1.0, -1.0, 0.2]], F32)
    d = np.array([[1.0], [-1.0]], F32).T
    ev = pulses.coincidences(x, d, 0.001, 0.001, cfg, rng.seed_key(0), 0)
    assert ev.dense_counts(1, 2, 3)[0].tolist() == [[1, -1, 0], [-1, 1, 0]]


def test_mean_count_slot_counts_are_rounded_in_float32():
    # "all scalar and per-sample arithmetic is float32" (module docstring): the x-line slot count is
    # rint(float32(BL) * float32(p_x)). For BL = 5, p_x = float32(0.7) the float32 product is exactly 3.5,
    # which rounds (half to even) to 4; the same product in float64 (3.49999994) would round to 3.
    p = F32(0.7)
    assert F32(5) * p == F32(3.5) and np.rint(5.0 * np.float64(p)) == 3  # the scenario is at the tie
    cfg = UpdateParameters(pulse_type="mean_count", desired_bl=5, **DETERMINISTIC)
    x, d = np.array([[p]], F32), np.array([[1.0]], F32)  # d fires all 5 slots: count = cx * 5 / 5
    bl, one = np.array([5], np.int32), np.ones(1, F32)
    c = pulses.deterministic_counts(x, d, bl, one, one, cfg, False)
    assert c[0, 0, 0] == 4  # kills bl.astype(F32) -> astype(None) (float64 arithmetic)


def test_implicit_counts_are_capped_at_the_train_length():
    # DETERMINISTIC_IMPLICIT clips both probabilities to [0, 1] (aihwkit 1.1's implicit pulse type): with a learning rate
    # much larger than dw BL the scales A = B = sqrt(lr / (dw BL)) = 14.1 push p above 1, and no
    # coincidence may then get more than BL pulses. Kills clip(.., 0, 1) -> clip(.., 0, None) / (.., 0, 2)
    # on either line.
    cfg = UpdateParameters(pulse_type="deterministic_implicit", desired_bl=5, **DETERMINISTIC)
    x = np.array([[1.0, -0.5, 0.02]], F32)
    d = np.array([[0.8, -0.03]], F32)
    ev = pulses.coincidences(x, d, 1.0, 0.001, cfg, rng.seed_key(0), 0)
    a = np.sqrt(1.0 / (0.001 * 5))
    px, pd = np.minimum(a * np.abs(x[0]), 1), np.minimum(a * np.abs(d[0]), 1)
    want = np.rint(5 * pd[:, None] * px[None, :]) * np.sign(d[0])[:, None] * np.sign(x[0])[None, :]
    assert want.tolist() == [[5, -5, 1], [-2, 2, -1]]  # saturated lines give BL pulses
    assert ev.dense_counts(1, 2, 3)[0].tolist() == want.tolist()
    assert np.abs(ev.n).max() <= 5


# ---- stochastic compressed trains against the documented firing rule ----------------------------------

def _fired(key, stream, p, bl, s):
    """Slot ``k < bl`` of line ``l`` fires iff ``U(l, s, k // 4, stream)[k % 4] < p[l]`` (module docstring)."""
    nblk = max((bl + 3) // 4, 1)
    u = rng.uniform(key, stream, np.arange(p.size, dtype=np.uint32)[:, None], s & 0xFFFFFFFF,
                    np.arange(nblk, dtype=np.uint32)[None, :])  # (4, lines, blocks)
    u = np.moveaxis(u, 0, -1).reshape(p.size, 4 * nblk)[:, :bl]
    return u < p[:, None], u


def _reference_counts(p_x, p_d, bl, key, sample0):
    rows = []
    for b in range(p_x.shape[0]):
        s = sample0 + b
        fx, _ = _fired(key, rng.Stream.X_BITS, p_x[b], int(bl[b]), s)
        fd, _ = _fired(key, rng.Stream.D_BITS, p_d[b], int(bl[b]), s)
        n = fd.astype(np.int64) @ fx.T.astype(np.int64)  # (out, in): coincident slots
        rows += [(b, i, j, n[i, j]) for i, j in zip(*np.nonzero(n))]
    return rows


def test_stochastic_counts_follow_the_firing_rule_slot_by_slot():
    # train lengths on both sides of the 4-slot Philox block and of the 32-slot word, a sample with BL = 0
    # (no update) and one whose lines never fire (the last one), a wrapping sample number
    key, sample0 = rng.seed_key(21, 3), 2**32 - 3
    bl = np.array([1, 4, 5, 31, 32, 33, 70, 0, 100, 9], np.int32)
    batch, n_in, n_out = bl.size, 5, 3
    p_x = rng.uniform_array(rng.seed_key(22), 0, (batch, n_in)).astype(F32)
    p_d = rng.uniform_array(rng.seed_key(22), 1, (batch, n_out)).astype(F32)
    p_x[:, 1] = 0  # a silent input line
    p_x[2, 3], p_d[8], p_x[0, 0], p_d[0, 0], p_d[3] = 1.0, 1.0, 1.0, 1.0, 1.0  # always-firing lines
    p_x[-1] = 0
    # a threshold exactly at a drawn uniform: that slot must not fire (strict "<"; all d lines fire there)
    _, u = _fired(key, rng.Stream.X_BITS, p_x[3], int(bl[3]), sample0 + 3)
    p_x[3, 0] = u[0, 2]
    b, i, j, n = pulses.stochastic_counts(p_x, p_d, bl, key, sample0)
    assert n.dtype == np.int32 and (n > 0).all()
    assert list(zip(b.tolist(), i.tolist(), j.tolist(), n.tolist())) == _reference_counts(p_x, p_d, bl, key, sample0)
    assert n.max() > 32 and set(b.tolist()) >= {0, 5, 6, 8}  # long trains and one-slot trains both fired


def test_no_firing_line_gives_no_events():
    bl = np.array([8, 8], np.int32)
    b, i, j, n = pulses.stochastic_counts(np.zeros((2, 3), F32), np.ones((2, 2), F32), bl, rng.seed_key(1), 0)
    assert b.size == i.size == j.size == n.size == 0


def test_resolution_maps_user_values_to_steps():
    # "<= 0 none (returns 0), > 1 a number of steps, else itself"
    cases = {-0.5: 0.0, 0.0: 0.0, 0.1: 0.1, 1.0: 1.0, 2.0: 0.5, 10.0: 0.1}
    assert {r: pulses.resolution(r) for r in cases} == pytest.approx(cases)


def test_zero_learning_rate_gives_typed_zero_trains():
    x_max, d_max = np.array([1.0, 0.5, 2.0], F32), np.array([0.3, 1.0, 1.0], F32)
    bl, sd, sx = pulses.update_management(x_max, d_max, 0.0, 0.001, UpdateParameters())
    assert (bl.dtype, sd.dtype, sx.dtype) == (np.int32, np.float32, np.float32)
    assert bl.shape == sd.shape == sx.shape == (3,) and not (bl.any() or sd.any() or sx.any())


def test_unfixed_train_length_is_desired_bl_unless_lr_needs_more():
    # fixed_bl False: BL = ceil(lr / dw) if that is larger than desired_bl, else desired_bl; A = B =
    # sqrt(lr / (dw BL)) without update management
    cfg = UpdateParameters(fixed_bl=False, update_bl_management=False, update_management=False, desired_bl=31)
    one = np.ones(2, F32)
    for lr, want_bl in ((0.01, 31), (0.1, 100)):
        bl, sd, sx = pulses.update_management(one, one, lr, 0.001, cfg)
        assert bl.tolist() == [want_bl] * 2, lr
        np.testing.assert_allclose(sd * sx, lr / (0.001 * want_bl), rtol=1e-6)


def test_probabilities_without_input_or_output_lines():
    # an empty x (or d) side: no coincidence is possible, so no train and no probability
    cfg = UpdateParameters()
    for n_in, n_out in ((0, 3), (4, 0)):
        x, d = np.ones((2, n_in), F32), np.ones((2, n_out), F32)
        p_x, p_d, bl = pulses.probabilities(x, d, 0.1, 0.001, cfg, rng.seed_key(0), 0)
        assert p_x.shape == (2, n_in) and p_d.shape == (2, n_out) and bl.tolist() == [0, 0]


def test_stochastic_probability_rounding_through_coincidences():
    # res 0.25 with stochastic rounding: the pulse probabilities are multiples of 0.25 whose mean is the
    # unrounded probability; coincidences must draw that rounding with the tile key and sample numbers
    cfg = UpdateParameters(res=0.25, sto_round=True, update_management=False, update_bl_management=False,
                           desired_bl=4)
    x = np.full((4000, 1), 0.3, F32)
    d = np.full((4000, 1), 1.0, F32)
    p_x, _, _ = pulses.probabilities(x, d, 0.004, 0.001, cfg, rng.seed_key(6), 10)
    assert set(np.unique(p_x).tolist()) == {0.25, 0.5}
    assert abs(p_x.mean() - 0.3) < 0.01  # 5 sigma: sd of the mean is 0.25 * 0.4 / sqrt(4000) = 0.0016
    ev = pulses.coincidences(x, d, 0.004, 0.001, cfg, rng.seed_key(6), 10)
    # each sample: BL = 4 slots, d always fires, x fires with p in {0.25, 0.5}: mean count 4 * 0.3
    counts = np.zeros(4000)
    counts[ev.sample] = ev.n
    assert abs(counts.mean() - 1.2) < 0.06 and ev.n.max() <= 4


def test_two_word_trains_and_a_silent_last_sample():
    # the longest train needs exactly two 32-slot words; the last sample's d lines never fire
    key, sample0 = rng.seed_key(23, 3), 5
    bl = np.array([40, 7, 33, 12], np.int32)
    p_x = rng.uniform_array(rng.seed_key(24), 0, (4, 3)).astype(F32)
    p_d = rng.uniform_array(rng.seed_key(24), 1, (4, 2)).astype(F32)
    p_d[-1] = 0
    b, i, j, n = pulses.stochastic_counts(p_x, p_d, bl, key, sample0)
    assert list(zip(b.tolist(), i.tolist(), j.tolist(), n.tolist())) == _reference_counts(p_x, p_d, bl, key, sample0)
    assert n.max() > 4 and 3 not in b.tolist()


def test_empty_batch_has_no_counts():
    b, i, j, n = pulses.stochastic_counts(np.zeros((0, 3), F32), np.zeros((0, 2), F32), np.zeros(0, np.int32),
                                          rng.seed_key(1), 0)
    assert b.size == i.size == j.size == n.size == 0


def test_update_management_scales_are_float32_and_zero_for_dead_samples():
    # a sample without input (or without gradient) gets no train and zero scales, not NaN
    x_max, d_max = np.array([1.0, 0.0, 0.7], F32), np.array([0.5, 1.0, 0.0], F32)
    for cfg in (UpdateParameters(), UpdateParameters(update_bl_management=False)):
        bl, sd, sx = pulses.update_management(x_max, d_max, 0.1, 0.001, cfg)
        assert (bl.dtype, sd.dtype, sx.dtype) == (np.int32, np.float32, np.float32)
        assert bl[1:].tolist() == [0, 0] and sd[1:].tolist() == [0, 0] and sx[1:].tolist() == [0, 0]
        assert bl[0] > 0 and sd[0] > 0 and sx[0] > 0


def test_learning_rate_exactly_at_dw_times_bl_keeps_the_desired_length():
    # fixed_bl False and lr == dw BL (in float32): the desired BL already carries lr, so BL stays 3, even
    # though float32 lr / dw = 3.0000002 would round up to 4
    dw = F32(0.007)
    lr = float(dw * F32(3))
    assert np.ceil(F32(lr) / dw) == 4  # the scenario sits on the tie
    cfg = UpdateParameters(fixed_bl=False, update_bl_management=False, update_management=False, desired_bl=3)
    bl, _, _ = pulses.update_management(np.ones(1, F32), np.ones(1, F32), lr, float(dw), cfg)
    assert bl.tolist() == [3]
