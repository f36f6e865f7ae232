"""How far the GPU MVM is from the NumPy reference: the measurement behind the bound of the GPU MVM test.

For every IO configuration of ``tests/gpu/test_io_gpu.py`` and batches 1 to 1024, runs the same forward
and backward passes on both backends (same seed, same counters) and records the largest absolute
difference and the fraction of outputs that differ beyond float32 rounding (1e-5 relative).

Usage: ``python benchmarks/gpu_agreement.py --json RAW`` (needs CuPy and a GPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "gpu"))

from benchmarks.provenance import write_raw  # noqa: E402


def main(argv=None):
    import cupy
    from crossbar.physics import rng
    from test_io_gpu import CONFIGS, pair
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = []
    for name, cfg in CONFIGS.items():
        for batch in (1, 16, 64, 100, 130, 257, 1024):
            cpu, gpu = pair(cfg)
            x = rng.normal_array(rng.seed_key(3), 0, (batch, 70)) * np.float32(2 if name == "saturating" else 1)
            d = rng.normal_array(rng.seed_key(4), 0, (batch, 33))
            for op, a, b in (("forward", cpu.forward(x), cupy.asnumpy(gpu.forward(x))),
                             ("backward", cpu.backward(d), cupy.asnumpy(gpu.backward(d)))):
                diff = np.abs(a - b).astype(np.float64)
                rows.append(dict(config=name, batch=batch, op=op, max_abs_diff=float(diff.max()),
                                 fraction_beyond_rounding=float(np.mean(diff > 1e-5 * np.maximum(np.abs(a), 1)))))
    worst = max(rows, key=lambda r: r["max_abs_diff"])
    print(f"{len(rows)} cases; largest difference {worst['max_abs_diff']:.3g} ({worst}); "
          f"largest fraction beyond rounding {max(r['fraction_beyond_rounding'] for r in rows):.3g}")
    if args.json:
        write_raw(args.json, dict(benchmark="GPU MVM vs NumPy", rows=rows))


if __name__ == "__main__":
    main()
