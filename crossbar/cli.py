"""Helpers of the command-line jobs (``python -m models.mnist``, ``python -m crossbar.pulse_response``):
argparse types whose errors name the value, and the check that an output directory can be written.

A shell, not physics: nothing in the physics or tile layers imports it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

try:  # the plot extra; without it the jobs write no plots. Figure draws without pyplot or a GUI backend
    from matplotlib.figure import Figure
except ImportError:
    Figure = None


def int_type(lo: int, hi: int | None, what: str, out_of_range: str | None = None):
    """An argparse type of the command-line jobs: an integer in ``[lo, hi)``; errors say ``expected <what>``
    (or ``out_of_range`` for an integer outside the range)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < lo or (hi is not None and v >= hi):
            raise argparse.ArgumentTypeError(f"{out_of_range or 'expected ' + what}, got {v}")
        return v
    return parse


seed_type = int_type(0, 2**64, "an integer seed", "seed must be in [0, 2**64)")


def output_dir_error(out: str | Path) -> str | None:
    """Why the command-line jobs could not write files in the directory ``out`` (made if missing), or None.

    Checks, without writing anything, that ``out`` is not an existing file and that it, or the nearest
    existing directory above it, is a writable directory.
    """
    if not str(out).strip():
        return "empty path (name a directory)"
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            return f"{out} exists and is not a directory"
        nearest = next(p for p in (out, *out.parents) if p.exists())
    except OSError as exc:
        return f"cannot access {out} ({exc.strerror or exc})"
    if not nearest.is_dir():
        return f"{nearest} is not a directory"
    if not os.access(nearest, os.W_OK | os.X_OK):
        return f"{nearest} is not writable"
    return None
