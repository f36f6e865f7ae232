"""Philox4x32-10 against the Random123 known-answer vectors, and the float transforms."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from crossbar.physics import rng

KAT = [  # (counter, key, output) from Random123's kat_vectors (philox4x32, 10 rounds)
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_known_answer_vectors(counter, key, expected):
    out = rng.philox4x32(key, *counter)
    assert out.dtype == np.uint32
    assert tuple(int(v) for v in out.ravel()) == expected


def test_vectorised_equals_scalar_calls_across_chunks():
    key = rng.seed_key(7)
    c0 = np.arange(rng._CHUNK * 2 + 5, dtype=np.uint32)  # spans several internal chunks
    vec = rng.philox4x32(key, c0, 3, 9, 4)
    for i in (0, 1, rng._CHUNK - 1, rng._CHUNK, len(c0) - 1):
        assert (rng.philox4x32(key, int(c0[i]), 3, 9, 4).ravel() == vec[:, i]).all()


@given(st.permutations(list(range(40))))
def test_keyed_draws_do_not_depend_on_order(perm):
    key = rng.seed_key(11, 2)
    c0 = np.arange(40, dtype=np.uint32)
    ref = rng.normal(key, rng.Stream.PULSE_NOISE, c0, 5, 1)
    perm = np.array(perm)
    shuffled = rng.normal(key, rng.Stream.PULSE_NOISE, c0[perm], 5, 1)
    assert (shuffled == ref[:, perm]).all()


def test_uniform_mapping_is_exact_and_in_range():
    words = np.array([0, 255, 256, 0xFFFFFFFF], np.uint32)
    u = rng.uniform_from_words(words)
    assert u.dtype == np.float32
    assert u.tolist() == [0.0, 0.0, 2.0**-24, 1 - 2.0**-24]


def test_uniform_moments_and_chi_square():
    u = rng.uniform_array(rng.seed_key(3), rng.Stream.OUT_NOISE, (400_000,)).astype(np.float64)
    # mean of n uniforms has std 1/sqrt(12 n) = 4.6e-4: a 6-sigma bound fails with p < 2e-9
    assert abs(u.mean() - 0.5) < 6 * (1 / np.sqrt(12 * u.size))
    counts = np.bincount((u * 50).astype(int), minlength=50)
    chi2 = ((counts - u.size / 50) ** 2 / (u.size / 50)).sum()
    assert chi2 < 110  # 49 dof: P(chi2 > 110) ~ 1e-6


def test_normal_moments():
    z = rng.normal_array(rng.seed_key(4), rng.Stream.PULSE_NOISE, (1_000_000,)).astype(np.float64)
    n = z.size
    # standard errors: mean 1/sqrt(n) = 1e-3, var sqrt(2/n) = 1.4e-3, skew sqrt(6/n), kurt sqrt(24/n); 6 sigma
    assert abs(z.mean()) < 6e-3
    assert abs(z.var() - 1) < 6 * np.sqrt(2 / n)
    assert abs((z**3).mean()) < 6 * np.sqrt(6 / n)
    assert abs((z**4).mean() - 3) < 6 * np.sqrt(96 / n)
    assert np.abs(z).max() <= np.sqrt(2 * 24 * np.log(2)) + 1e-5  # Box-Muller on 24-bit uniforms
    # the tail fraction beyond 3 sigma is 0.27%: binomial std 5e-5
    assert abs((np.abs(z) > 3).mean() - 0.0026998) < 6 * np.sqrt(0.0027 / n)


def test_log_and_sincos_accuracy():
    u = ((np.arange(1, 2**20, 7, dtype=np.uint32) << 4) + 1).astype(np.float32) * np.float32(2.0**-24)
    exact = np.log(u.astype(np.float64))
    assert np.max(np.abs(rng._log_f32(u) - exact) / np.maximum(np.abs(exact), 1e-3)) < 3e-7
    t = np.arange(2**16, dtype=np.float32) / np.float32(2**16)
    c, s = rng._sincos_2pi_f32(t)
    assert np.abs(c - np.cos(2 * np.pi * t.astype(np.float64))).max() < 2e-7
    assert np.abs(s - np.sin(2 * np.pi * t.astype(np.float64))).max() < 2e-7


def test_normal1_is_first_normal():
    key, c0 = rng.seed_key(9), np.arange(1000, dtype=np.uint32)
    assert (rng.normal1(key, 5, c0, 2, 3) == rng.normal(key, 5, c0, 2, 3)[0]).all()


def test_normal_word_selects_one_normal():
    key, c0 = rng.seed_key(9), np.arange(1000, dtype=np.uint32)
    word = c0 % 4
    full = rng.normal(key, 5, c0, 2, 3)
    assert (rng.normal_word(key, 5, c0, 2, 3, word) == full[word, np.arange(1000)]).all()


def test_rows_are_named_by_sample():
    key = rng.seed_key(5)
    a = rng.normal_rows(key, rng.Stream.OUT_NOISE, 6, 9, sample0=100)
    b = rng.normal_rows(key, rng.Stream.OUT_NOISE, 2, 9, sample0=103)
    assert (a[3:5] == b).all()
    assert not np.array_equal(a[0], a[1])


def test_seed_key_paths_differ_and_validate():
    assert not np.array_equal(rng.seed_key(1, 0), rng.seed_key(1, 1))
    assert not np.array_equal(rng.seed_key(1), rng.seed_key(2))
    assert rng.seed_key(2**40 + 5).tolist() == [5, 2**8]
    with pytest.raises(ValueError, match="seed"):
        rng.seed_key(-1)


def test_no_module_other_than_rng_uses_numpy_random():
    import pathlib
    import re
    root = pathlib.Path(rng.__file__).parents[1]
    offenders = [str(p) for folder in ("crossbar", "models") for p in (root / folder).rglob("*.py")
                 if p.name != "rng.py" and re.search(r"\b(np|numpy|cupy|cp)\.random\b", p.read_text())]
    assert offenders == []
