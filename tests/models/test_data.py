"""models.data: the shipped MNIST, and clear errors for every kind of bad IDX file."""

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from models.data import DataError, load_mnist, read_idx

MNIST_DIR = Path(__file__).parents[2] / "models" / "datasets" / "mnist"
CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


def idx_bytes(values: np.ndarray) -> bytes:
    """Encode ``values`` as IDX: header, big-endian dims, big-endian values."""
    header = (
        bytes([0, 0, CODES[values.dtype.type], values.ndim])
        + np.array(values.shape, ">u4").tobytes()
    )
    return header + values.astype(values.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_shipped_mnist_shapes_and_ranges(mnist):
    x_train, y_train, x_test, y_test = mnist
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    for y in (y_train, y_test):
        np.testing.assert_array_equal(np.unique(y), np.arange(10))
    assert y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the original order


def test_shipped_files_match_readme_md5():
    readme = (MNIST_DIR / "README.md").read_text()
    table = re.findall(r"^\| (\S+-ubyte) \| ([0-9a-f]{32}) \|$", readme, re.M)
    assert len(table) == 4
    for name, md5 in table:
        raw = gzip.decompress((MNIST_DIR / f"{name}.gz").read_bytes())
        assert hashlib.md5(raw, usedforsecurity=False).hexdigest() == md5, name


@pytest.mark.parametrize("dtype", list(CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    got = read_idx(write(tmp_path / "x-ubyte", idx_bytes(values), compress))
    assert got.dtype == dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, values)


def test_load_mnist_layout_uncompressed_and_mixed(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("t10k", 3)):
        images = rng.integers(0, 256, (n, 2, 3), dtype=np.uint8)
        write(tmp_path / f"{split}-images-idx3-ubyte", idx_bytes(images))
        labels = np.arange(n, dtype=np.uint8)
        write(tmp_path / f"{split}-labels-idx1-ubyte.gz", idx_bytes(labels), compress=True)
    x_train, y_train, x_test, y_test = load_mnist(tmp_path, image_shape=(2, 3))
    assert x_train.shape == (5, 6) and x_test.shape == (3, 6)
    np.testing.assert_array_equal(y_test, [0, 1, 2])
    images = read_idx(tmp_path / "t10k-images-idx3-ubyte")
    np.testing.assert_array_equal(x_test * 255, images.reshape(3, 6))


def test_load_mnist_errors(tmp_path):
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz nor train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    for split in ("train", "t10k"):
        write(tmp_path / f"{split}-images-idx3-ubyte", idx_bytes(np.zeros((4, 2, 2), np.uint8)))
        write(tmp_path / f"{split}-labels-idx1-ubyte", idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: labels of shape \(3,\) for the 4 images"):
        load_mnist(tmp_path, image_shape=(2, 2))


GOOD = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3))
BAD_FILES = {
    "empty": (b"", "truncated"),
    "wrong magic": (b"\x01\x00" + GOOD[2:], "not an IDX file"),
    "pickle": (b"\x80\x04\x95" + GOOD, "not an IDX file"),
    "unsupported dtype": (GOOD[:2] + b"\x0a" + GOOD[3:], "unsupported IDX dtype code 0x0A"),
    "truncated header": (GOOD[:9], "truncated: header announces 2 dimensions"),
    "truncated data": (GOOD[:-1], r"truncated: shape \(2, 3\) of uint8 needs 6 data bytes, has 5"),
    "trailing garbage": (GOOD + b"\x00", "trailing bytes"),
    "bad gzip": (b"\x1f\x8b\x08\x00garbage", "corrupt gzip"),
    "truncated gzip": (gzip.compress(GOOD)[:-6], "corrupt gzip"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_read_idx_errors_name_the_file(tmp_path, case):
    data, message = BAD_FILES[case]
    path = write(tmp_path / "bad-ubyte", data)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value) and isinstance(info.value, ValueError)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "nope")) + ".*cannot read"):
        read_idx(tmp_path / "nope")
