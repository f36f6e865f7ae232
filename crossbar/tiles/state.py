"""A tile's state as data: the plain arrays of an :class:`~crossbar.tiles.tile.AnalogTile` and the functions that
build, move, save and restore them.

The state is ``weights`` (float32 ``(out, in)``), ``param_stack`` (float32 ``(n, out, in)``: the per-device hidden
parameters, one row each, in the order the kernels read them), ``io_state`` (per direction: the drawn per-line
parameters), ``counter_array`` (uint64 ``(4,)``: the counters that name every random draw) and, where used,
``pulse_counts`` and ``drift_state``. A checkpoint is this state as NumPy arrays plus the config as JSON.
"""

from __future__ import annotations

import json

import numpy as np

from ..backend import to_backend, to_numpy
from ..config import Config
from ..physics import rng

F32 = np.float32


def stack_parameters(params: dict, device) -> tuple[dict, np.ndarray]:
    """``(rows, stack)``: the hidden parameters ``params`` (``{name: (out, in) array}``) as one float32
    ``(n, out, in)`` stack, bounds and step sizes first, then the device's own names (the kernels' order)."""
    names = [k for k in ("max_bound", "min_bound", "dwmin_up", "dwmin_down") if k in params]
    names += [k for k in getattr(device, "extra_names", ()) if k not in names]
    rows = {k: r for r, k in enumerate(names + [k for k in params if k not in names])}
    shape = next(iter(params.values())).shape if params else (0, 0)
    stack = np.zeros((len(rows),) + tuple(shape), F32)
    for k, r in rows.items():
        stack[r] = params[k]
    return rows, stack


def move(tile, backend: str) -> None:
    """Move every array of ``tile`` to ``backend`` (CuPy copies to the device, NumPy to the host)."""
    to = lambda a: to_backend(a, backend)  # noqa: E731
    tile.weights, tile.param_stack, tile.counter_array = to(tile.weights), to(tile.param_stack), to(tile.counter_array)
    tile.io_state = {d: {k: to(v) if hasattr(v, "shape") and v.ndim else v for k, v in s.items()}
                     for d, s in tile.io_state.items()}
    if tile.pulse_counts is not None:
        tile.pulse_counts = {k: to(v) for k, v in tile.pulse_counts.items()}
    if tile.drift_state is not None:  # its clock T stays a host float64
        tile.drift_state = {k: (v if k == "T" else to(v)) for k, v in tile.drift_state.items()}
    tile.backend = backend


def state_dict(tile) -> dict:
    """The state of a plain tile as NumPy arrays: ``weights``, ``counters`` (int64 ``(4,)``), ``seed``, ``config``
    (JSON), ``params/<name>``, ``io/<direction>/<name>`` (an unset scalar as an empty array), ``pulse_counts/up|down``
    and ``drift/<name>`` where used."""
    state = {"weights": to_numpy(tile.weights).copy(),
             "counters": to_numpy(tile.counter_array).astype(np.int64),
             "seed": np.array(tile.seed, dtype=np.uint64),
             "config": np.array(json.dumps(tile.config.to_dict()))}
    state.update({f"params/{k}": to_numpy(v).copy() for k, v in tile.params.items()})
    for direction, s in tile.io_state.items():
        state.update({f"io/{direction}/{k}": np.zeros(0, F32) if v is None else np.array(to_numpy(v), copy=True)
                      for k, v in s.items()})
    state.update({f"pulse_counts/{k}": to_numpy(v).copy() for k, v in (tile.pulse_counts or {}).items()})
    state.update({f"drift/{k}": to_numpy(v).copy() for k, v in (tile.drift_state or {}).items()})
    return state


def check_state(tile, state: dict) -> None:
    """Raise ``ValueError`` unless ``state`` holds the arrays of :func:`state_dict` for ``tile``: the same config,
    names and shapes (the drift arrays may be absent)."""
    if Config.from_dict(json.loads(str(state["config"]))) != tile.config:
        raise ValueError(f"{tile!r}: checkpoint config differs from the tile's config")
    mine = state_dict(tile)
    expected, have = set(mine), set(state)
    optional = {k for k in have | expected if k.startswith("drift/")}
    if (have - optional) != (expected - optional):
        raise ValueError(f"{tile!r}: checkpoint arrays differ: missing {sorted(expected - have - optional)}, "
                         f"unexpected {sorted(have - expected - optional)}")
    for k in sorted(have - {"config", "seed"} - optional):
        if np.shape(state[k]) != np.shape(mine[k]):
            raise ValueError(f"{tile!r}: checkpoint array {k!r} has shape {np.shape(state[k])}")


def load_state_dict(tile, state: dict) -> None:
    """Restore :func:`state_dict` output into ``tile`` on its backend, after :func:`check_state`."""
    check_state(tile, state)
    to = lambda a: to_backend(np.array(a), tile.backend)  # noqa: E731
    tile.seed = int(state["seed"])
    tile.key = rng.seed_key(tile.seed, 0)
    tile.counter_array = to(np.asarray(state["counters"]).astype(np.uint64))
    tile.weights = to(np.asarray(state["weights"], F32))
    for k in tile.params:  # in place: the entries are views of the stack
        tile.params[k][...] = to(np.asarray(state[f"params/{k}"], F32))
    for direction, s in tile.io_state.items():
        for k in s:
            v = np.asarray(state[f"io/{direction}/{k}"])
            s[k] = None if v.size == 0 or v.dtype == object and v.item() is None else \
                (to(v) if v.ndim else v[()])  # a scalar keeps its dtype (float32)
    if tile.pulse_counts is not None:
        tile.pulse_counts = {k: to(state[f"pulse_counts/{k}"]) for k in tile.pulse_counts}
    drift = {k.split("/", 1)[1]: np.array(v) for k, v in state.items() if k.startswith("drift/")}
    tile.drift_state = {k: (v if k == "T" else to(v)) for k, v in drift.items()} if drift else None
