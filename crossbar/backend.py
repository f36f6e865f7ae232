"""Which array module a computation runs on, and moving arrays between host and device.

The physics is written once against an array namespace ``xp`` (``numpy`` or ``cupy``). Objects that
own state (tiles) are told their backend at construction; free functions infer it from their array
arguments. CuPy is imported lazily, so this module costs nothing on a machine without a GPU.
"""

from __future__ import annotations

import functools
import types

import numpy as np

BACKENDS = ("numpy", "cupy")


@functools.cache
def _cupy() -> types.ModuleType:
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "backend 'cupy' needs CuPy: pip install 'crossbar-sim[cuda13]' (or [cuda12])"
        ) from exc
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(f"backend 'cupy': CuPy is installed but no CUDA device is usable ({exc})") from exc
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and at least one CUDA device is visible."""
    try:
        _cupy()
    except RuntimeError:
        return False
    return True


#: ``(operation, backend) -> function``: implementations that a backend's module registers when it is imported (the
#: GPU launchers in ``crossbar.cuda.kernels``), so the physics layers call them without importing the layer above
_IMPLEMENTATIONS: dict = {}


def register(operation: str, backend: str):
    """Decorator: file the function as ``operation`` on ``backend`` (see :func:`implementation`)."""
    def file(fn):
        _IMPLEMENTATIONS[(operation, backend)] = fn
        return fn
    return file


def implementation(operation: str, backend: str):
    """The function registered for ``operation`` on ``backend``; a clear error if there is none."""
    try:
        return _IMPLEMENTATIONS[(operation, backend)]
    except KeyError:
        raise RuntimeError(f"no {backend} implementation of {operation!r} is registered (is crossbar imported?)") \
            from None


def resolve_backend(backend: str) -> tuple[str, str]:
    """``(name, why)``: 'auto' becomes 'cupy' when CuPy and a CUDA device are usable, else 'numpy'; other
    names are returned as they are (``why`` is then empty)."""
    if backend != "auto":
        return backend, ""
    try:
        _cupy()
    except RuntimeError as exc:
        return "numpy", "auto: " + ("CuPy is not installed" if isinstance(exc.__cause__, ImportError)
                                    else "no usable CUDA device")
    return "cupy", "auto: CuPy and a CUDA device found"


def get_xp(backend: str) -> types.ModuleType:
    """Return the array module for ``backend`` ('numpy' or 'cupy')."""
    if backend == "numpy":
        return np
    if backend == "cupy":
        return _cupy()
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def capturing(backend: str) -> bool:
    """True while a CUDA graph is being captured on ``backend``'s current stream (never on 'numpy')."""
    return backend == "cupy" and _cupy().cuda.get_current_stream().is_capturing()


def backend_of(array) -> str:
    """Name of the backend that holds ``array`` ('numpy' for anything that is not a CuPy array)."""
    return "cupy" if type(array).__module__.startswith("cupy") else "numpy"


def array_module(*arrays) -> types.ModuleType:
    """The array module of the given arrays (``cupy`` if any is a CuPy array, else ``numpy``)."""
    return get_xp("cupy") if any(backend_of(a) == "cupy" for a in arrays) else np


def to_numpy(array) -> np.ndarray:
    """Copy ``array`` to the host (no copy for a NumPy array)."""
    return array.get() if backend_of(array) == "cupy" else np.asarray(array)


def to_backend(array, backend: str):
    """Return ``array`` on ``backend``, copying between host and device only when needed."""
    if backend_of(array) == backend:
        return array
    return get_xp(backend).asarray(to_numpy(array))
