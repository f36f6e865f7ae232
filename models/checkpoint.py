"""Checkpoints as plain arrays.

A checkpoint is an uncompressed ``.npz`` (a zip of ``.npy`` files) holding named NumPy arrays and one
``__meta__`` entry: a JSON document with the format name and version, the list of array names, a SHA-256
digest of every array (name, dtype, shape and bytes) and whatever the caller adds (configs, RNG keys and
counters, epoch, metrics). Nothing is pickled: arrays of Python objects are refused on writing, and files are
read with ``allow_pickle=False``.

Writing is atomic: the file is written to a temporary file in the same directory, flushed to disk and then
renamed over the target (``os.replace``), and the directory is flushed too, so a crash leaves either the old
checkpoint or the new one (and perhaps a temporary file, which :func:`remove_stale_temp_files` clears). Reading
checks the zip structure and CRCs, the format, the names and the digest, and raises :class:`CheckpointError`
naming the file before anything is handed to the caller; :func:`load_training` also validates every state
against the model, optimizer and scheduler before changing any of them.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> save_checkpoint(path, {"w": np.ones((2, 2), np.float32)}, {"epoch": 3})
    >>> arrays, meta = load_checkpoint(path)
    >>> arrays["w"].shape, meta["epoch"]
    ((2, 2), 3)
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT = "crossbar-sim checkpoint"
VERSION = 1
_META = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint is missing, truncated, corrupt, or does not fit what it is loaded into."""


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | Path, arrays: dict[str, Any], meta: dict | None = None) -> None:
    """Write ``arrays`` and ``meta`` to ``path`` atomically.

    Args:
        path: target file (conventionally ``*.npz``); its directory must exist.
        arrays: name -> array (anything ``numpy.asarray`` takes, numeric, bool or str dtype).
        meta: JSON-serialisable dict stored alongside (must not use the keys ``format``, ``version``,
            ``names``, ``digest``).

    Raises:
        TypeError: an array has an object dtype (it would need pickle) or ``meta`` is not JSON-serialisable.
        ValueError: a name is ``__meta__`` or ``meta`` uses a reserved key.
    """
    path = Path(path)
    arrays = {str(k): np.asarray(v) for k, v in arrays.items()}
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"save_checkpoint: array {name!r} has dtype object; checkpoints hold plain arrays only")
    if _META in arrays:
        raise ValueError(f"save_checkpoint: {_META!r} is a reserved name")
    meta = dict(meta or {})
    reserved = {"format", "version", "names", "digest"} & set(meta)
    if reserved:
        raise ValueError(f"save_checkpoint: meta keys {sorted(reserved)} are reserved")
    meta.update(format=FORMAT, version=VERSION, names=sorted(arrays), digest=_digest(arrays))
    text = json.dumps(meta)  # raises TypeError for anything not JSON-serialisable
    write_atomic(path, lambda f: np.savez(f, allow_pickle=False, **arrays, **{_META: np.array(text)}))


def write_atomic(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Replace ``path`` atomically by what ``write(f)`` writes to a binary file object.

    The data go to a temporary file beside ``path`` (:func:`temp_file_for`), are flushed to disk and renamed
    over ``path``; then the directory is flushed (where the OS allows), so the rename survives a power loss.
    On any error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = temp_file_for(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # some systems (Windows) cannot open or flush a directory
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    """:func:`write_atomic` of a UTF-8 text."""
    write_atomic(path, lambda f: f.write(text.encode()))


def _temp_affixes(path: Path) -> tuple[str, str]:
    """Prefix and suffix of the temporary files for ``path``; ``mkstemp`` puts 8 random characters between."""
    return f".{path.name}.", ".tmp"


def temp_file_for(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a new temporary file ``.<name>.XXXXXXXX.tmp`` beside ``path`` (same file system, so
    ``os.replace`` is atomic), with the permissions a plain ``open`` would give (``mkstemp`` makes it owner-only)."""
    prefix, suffix = _temp_affixes(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return fd, tmp


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Delete the temporary files that :func:`temp_file_for` made for ``path`` and an interrupted write left
    behind (only plain files of that name pattern, beside ``path``); returns the paths deleted."""
    path = Path(path)
    prefix, suffix = _temp_affixes(path)
    stale = [p for p in path.parent.glob(glob.escape(prefix) + "?" * 8 + suffix) if p.is_file() and not p.is_symlink()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load_checkpoint(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`.

    Returns:
        ``(arrays, meta)``: name -> NumPy array, and the meta dict (with ``format``, ``version``, ``names``,
        ``digest``).

    Raises:
        CheckpointError: the file is missing or unreadable, is not a zip/npz, is truncated, fails a CRC,
            holds a pickled object, lacks or has a malformed ``__meta__``, has other arrays than its meta
            lists, or its digest does not match. The message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):  # also what a truncated .npz looks like: its directory is at the end
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint (not a complete .npz/zip file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = {name: npz[name] for name in npz.files}  # reads every member: CRCs are checked here
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CheckpointError(f"{path}: holds a pickled object array; refused (checkpoints hold plain "
                                  f"arrays)") from exc
        raise CheckpointError(f"{path}: corrupt checkpoint ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {exc})") from exc
    if _META not in raw:
        raise CheckpointError(f"{path}: not a crossbar-sim checkpoint (no {_META} entry)")
    try:
        meta = json.loads(str(raw.pop(_META)))
    except (json.JSONDecodeError, UnicodeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a crossbar-sim checkpoint (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{path}: corrupt checkpoint metadata")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {meta.get('version')!r}, this code reads {VERSION}")
    if meta.get("names") != sorted(raw):
        missing = sorted(set(meta.get("names") or ()) - set(raw))
        extra = sorted(set(raw) - set(meta.get("names") or ()))
        raise CheckpointError(f"{path}: arrays differ from the checkpoint's list (missing {missing}, "
                              f"unexpected {extra})")
    if meta.get("digest") != _digest(raw):
        raise CheckpointError(f"{path}: digest mismatch: the arrays were changed or damaged after writing")
    return raw, meta


# ---- a model + optimizer + scheduler round trip -----------------------------------------------------

_MODEL = "model/"


def save_training(path: str | Path, model, optimizer=None, scheduler=None, meta: dict | None = None,
                  arrays: dict[str, Any] | None = None) -> None:
    """Checkpoint a model (all parameters and tile states), optimizer and scheduler, plus ``meta``/``arrays``.

    ``meta`` may hold anything JSON-serialisable (run configuration, epoch, metrics); ``arrays`` extra arrays
    (e.g. a running loss). Optimizer and scheduler states go into the meta under ``optimizer``/``scheduler``.
    """
    meta = dict(meta or {})
    meta["optimizer"] = None if optimizer is None else optimizer.state_dict()
    meta["scheduler"] = None if scheduler is None else scheduler.state_dict()
    out = {_MODEL + k: v for k, v in model.state_dict().items()}
    for k, v in (arrays or {}).items():
        out[f"extra/{k}"] = v
    save_checkpoint(path, out, meta)


def load_training(path: str | Path, model, optimizer=None, scheduler=None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read ``path`` (:func:`load_checkpoint`) and :func:`restore_training` from it.

    Returns:
        ``(meta, extra_arrays)``.
    """
    arrays, meta = load_checkpoint(path)
    return meta, restore_training(arrays, meta, model, optimizer, scheduler, source=str(path))


def restore_training(arrays: dict[str, np.ndarray], meta: dict, model, optimizer=None, scheduler=None,
                     source: str = "checkpoint") -> dict[str, np.ndarray]:
    """Restore :func:`save_training` output (as read by :func:`load_checkpoint`) into the given objects.

    Everything is checked first (array names and shapes, tile configs, optimizer and scheduler types and
    keys); only then is anything changed.

    Returns:
        the extra arrays saved with ``arrays=``.

    Raises:
        CheckpointError: the checkpoint does not fit the model, optimizer or scheduler (nothing changed).
    """
    state = {k[len(_MODEL):]: v for k, v in arrays.items() if k.startswith(_MODEL)}
    extra = {k[len("extra/"):]: v for k, v in arrays.items() if k.startswith("extra/")}
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler)):
        if obj is None:
            continue
        saved, expected = meta.get(name), obj.state_dict()
        if not isinstance(saved, dict) or saved.get("type") != expected["type"] or set(saved) != set(expected):
            found = saved.get("type") if isinstance(saved, dict) else saved
            raise CheckpointError(f"{source}: holds {name} state of {found!r}, not {expected['type']}")
    try:
        model.load_state_dict(state)  # validates everything before assigning anything
    except ValueError as exc:
        raise CheckpointError(f"{source}: does not fit the model: {exc}") from exc
    if optimizer is not None:
        optimizer.load_state_dict(meta["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(meta["scheduler"])
    return extra
