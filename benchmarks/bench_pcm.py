"""The PCM preset (a refreshed one-sided pair of set-only PCM devices) against ConstantStep, SGD on MNIST on the GPU:
test accuracy and refreshes per epoch (784-256-128-10 sigmoid, batch 64, lr 0.05 halved every 10 epochs).

Usage: ``python benchmarks/bench_pcm.py [--epochs 10] [--json F]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.provenance import write_raw  # noqa: E402


def refreshes(model) -> dict:
    """Refreshed cross-points so far, summed over the analog layers (0 for devices without refresh)."""
    return {"refreshes": sum(getattr(layer.tile, "refresh_counts", 0) for layer in model.analog_layers())}


def main(argv=None):
    import cupy as cp
    from bench_mnist_gpu import train
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    log = lambda r: print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)  # noqa
    out = {device: train(cp, 64, 0.05, args.epochs, args.seed, device=device, log=log, measure=refreshes)
           for device in ("pcm", "constant-step")}
    if args.json:
        write_raw(args.json, dict(benchmark="bench_pcm", epochs=args.epochs, runs=out))


if __name__ == "__main__":
    main()
