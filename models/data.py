"""IDX files and the MNIST data set that ships with the package.

IDX (LeCun et al., http://yann.lecun.com/exdb/mnist/) is a header followed by raw values:

    bytes 0-1   0x0000
    byte  2     dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
                0x0E float64 (all multi-byte values big-endian)
    byte  3     ndim
    then        ndim big-endian uint32 dimensions, then prod(dims) values in C order.

Files may be gzip-compressed (recognised by content, not by name). Nothing is unpickled.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
_MNIST_DIR = Path(__file__).parent / "datasets" / "mnist"
_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file."""


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Args:
        path: The file.

    Returns:
        The values, shape [*dims] from the header, in native byte order.

    Raises:
        DataError: If the file is missing, is not valid gzip, has a wrong magic number or an
            unknown dtype code, or holds fewer or more bytes than its header promises.

    Example:
        >>> import gzip, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "x.gz")
        >>> with gzip.open(path, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6)))
        >>> read_idx(path)
        array([[0, 1, 2],
               [3, 4, 5]], dtype=uint8)
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt gzip data ({exc})") from exc

    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, shorter than the 4-byte IDX magic")
    if raw[:2] != b"\x00\x00":
        raise DataError(f"{path}: not an IDX file (magic starts with {raw[:2].hex()}, not 0000)")
    code, ndim = raw[2], raw[3]
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _DTYPES)
        raise DataError(f"{path}: unsupported IDX dtype code 0x{code:02X} (known: {known})")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DataError(f"{path}: truncated: header announces {ndim} dimensions, file ends first")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    dtype = np.dtype(_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    actual = len(raw) - offset
    if actual != expected:
        problem = "truncated" if actual < expected else "trailing bytes"
        raise DataError(
            f"{path}: {problem}: shape {dims} of {dtype.name} "
            f"needs {expected} data bytes, has {actual}"
        )
    values = np.frombuffer(raw, dtype, math.prod(dims), offset=offset).reshape(dims)
    return values.astype(dtype.newbyteorder("="))  # native order; also a writable copy


def load_mnist(
    data_dir: str | Path | None = None,
    *,
    image_shape: tuple[int, int] | None = (28, 28),
    n_classes: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST, or any data set in its four-file IDX layout (e.g. Fashion-MNIST).

    Args:
        data_dir: Directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or with a
            ``.gz`` suffix. None means the copy shipped in ``models/datasets/mnist/``.
        image_shape: ``(rows, cols)`` every image must have (None: any).
        n_classes: labels must be integers in ``0 .. n_classes - 1``.

    Returns:
        ``(x_train, y_train, x_test, y_test)`` as NumPy arrays: images float32 in [0, 1],
        shape [n, rows * cols] ([60000, 784] and [10000, 784] for MNIST); labels int64, [n].

    Raises:
        DataError: If a file is missing or malformed, images are not uint8 [n, rows, cols] of
            ``image_shape``, a split holds no images, labels are not integers in range, or the
            numbers of images and labels differ. The message names the file.
    """
    data_dir = _MNIST_DIR if data_dir is None else Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: no such data directory")
    paths = [_find(data_dir, name) for name in _MNIST_FILES]
    train_x, train_y, test_x, test_y = (read_idx(path) for path in paths)
    return (
        *_images_and_labels(paths[0], train_x, paths[1], train_y, image_shape, n_classes),
        *_images_and_labels(paths[2], test_x, paths[3], test_y, image_shape, n_classes),
    )


def _find(data_dir: Path, name: str) -> Path:
    for candidate in (data_dir / f"{name}.gz", data_dir / name):
        if candidate.is_file():
            return candidate
    raise DataError(f"{data_dir}: neither {name}.gz nor {name} found")


def _images_and_labels(
    images_path: Path,
    images: np.ndarray,
    labels_path: Path,
    labels: np.ndarray,
    image_shape: tuple[int, int] | None,
    n_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Check one split (naming the offending file) and convert it: float32 ``[n, rows * cols]``, int64 ``[n]``."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(
            f"{images_path}: images must be uint8 [n, rows, cols], got {images.dtype} {images.shape}"
        )
    if image_shape is not None and images.shape[1:] != tuple(image_shape):
        rows, cols = image_shape
        raise DataError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]} (shape {images.shape}), "
            f"expected {rows}x{cols}"
        )
    if len(images) == 0:
        raise DataError(f"{images_path}: holds no images")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_path}: labels of shape {labels.shape} for the {len(images)} images of {images_path}"
        )
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: labels must be integers, got {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        raise DataError(
            f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is outside 0..{n_classes - 1} "
            f"({bad.size} such labels)"
        )
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return x, labels.astype(np.int64)
