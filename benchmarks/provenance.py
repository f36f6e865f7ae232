"""Where a benchmark number came from: date, commit, machine and command, written next to the raw rows.

Every figure in README.md and benchmarks/RESULTS.md is copied from a file that :func:`write_raw` produced.
On the lent GPU machine the checkout travels without ``.git``; pass the commit in ``CROSSBAR_COMMIT``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> str | None:
    try:
        import cupy as cp
        name = cp.cuda.runtime.getDeviceProperties(0)["name"]
        return f"{name.decode() if isinstance(name, bytes) else name}, CuPy {cp.__version__}"
    except Exception:  # no CuPy or no device: a CPU run
        return None


def stamp() -> dict:
    """The provenance of a run: UTC date, commit (``+dirty`` if the tree differs), machine and command."""
    commit = os.environ.get("CROSSBAR_COMMIT") or _git("rev-parse", "HEAD") or "unknown"
    if not os.environ.get("CROSSBAR_COMMIT") and _git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return dict(date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), commit=commit,
                machine=dict(cpu=_cpu(), logical_cpus=os.cpu_count(), gpu=_gpu(), python=platform.python_version(),
                             numpy=np.__version__, platform=platform.platform()),
                command=" ".join([Path(sys.executable).name, *sys.argv]))


def write_raw(path, payload: dict) -> None:
    """Write ``payload`` with its :func:`stamp` as indented JSON to ``path`` (directories created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(provenance=stamp(), **payload), indent=1, default=float) + "\n")
    print(f"# raw output written to {path}")
