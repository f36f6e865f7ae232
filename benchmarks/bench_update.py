"""Benchmark ``AnalogTile.update`` for MNIST's first layer (256 x 785) on the NumPy reference (or CuPy).

x: real MNIST rows (with a bias input of 1). d: the first-layer output gradients of the 784-256-128-10
sigmoid MLP (Gokmen & Vlasov 2016) at its standard random initialisation, for a cross-entropy loss averaged
over the batch, exactly as training produces them; lr 0.05 at batch 64 and 0.01 at batch 1 (the two MNIST
set-ups). A "dense" row scales d up 30x so that most samples reach the full BL = 31: the worst case.

Usage: ``python benchmarks/bench_update.py [--backend numpy|cupy] [--repeats 20] [--json RAW]``. Prints a
Markdown table (median over repeats, microseconds per sample) and the pulse statistics of the workload; with
``--json`` also writes the rows, each repeat's time and the provenance (date, commit, machine, command).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.provenance import stamp, write_raw  # noqa: E402
from crossbar import AnalogTile, TileConfig
from crossbar.physics import pulses
from crossbar.physics.devices import ConstantStepDevice, SoftBoundsDevice
from models.data import load_mnist

F32 = np.float32


def first_layer_gradients(x, y, seed=0):
    """d = dL/dy1 of a freshly initialised 784-256-128-10 sigmoid MLP (mean cross-entropy over the batch)."""
    r = np.random.default_rng(seed)  # benchmark inputs only; the simulator never uses np.random
    ws = [r.uniform(-1, 1, (o, i)) / np.sqrt(i) for i, o in ((785, 256), (257, 128), (129, 10))]
    h1 = 1 / (1 + np.exp(-(x @ ws[0].T)))
    h1b = np.hstack([h1, np.ones((len(x), 1))])
    h2 = 1 / (1 + np.exp(-(h1b @ ws[1].T)))
    h2b = np.hstack([h2, np.ones((len(x), 1))])
    logits = h2b @ ws[2].T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d3 = (p - np.eye(10)[y]) / len(x)
    d2 = (d3 @ ws[2])[:, :128] * h2 * (1 - h2)
    d1 = (d2 @ ws[1])[:, :256] * h1 * (1 - h1)
    return d1.astype(F32)


def time_updates(tile, xs, ds, lr, batch, repeats, sync):
    """Microseconds per sample of each timed update (the first call only warms up)."""
    times = []
    for k in range(repeats + 1):
        sl = slice(k * batch, (k + 1) * batch)
        sync()
        t0 = time.perf_counter()
        tile.update(xs[sl], ds[sl], lr)
        sync()
        if k:  # the first call warms caches (and compiles kernels on the GPU)
            times.append((time.perf_counter() - t0) / batch * 1e6)
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default=None, help="write the raw rows and their provenance here")
    args = ap.parse_args(argv)
    sync = lambda: None  # noqa: E731
    if args.backend == "cupy":
        import cupy
        sync = cupy.cuda.Device().synchronize
    x_train, y_train, _, _ = load_mnist()
    n = 64 * (args.repeats + 1)
    xs = np.hstack([x_train[:n], np.ones((n, 1), F32)])
    rows = []
    for batch, lr in ((64, 0.05), (1, 0.01)):
        d = np.concatenate([first_layer_gradients(xs[k:k + batch], y_train[k:k + batch])
                            for k in range(0, n, batch)])
        for label, scale in (("MNIST", 1.0), ("dense", 30.0)):
            ds = d * F32(scale)
            cfg = TileConfig()
            ev = pulses.coincidences(xs[:batch], ds[:batch], lr, 0.001, cfg.update, np.zeros(2, np.uint32), 0)
            for dev in (ConstantStepDevice(), SoftBoundsDevice()):
                tile = AnalogTile(256, 785, TileConfig(device=dev), seed=1, backend=args.backend)
                us = time_updates(tile, xs, ds, lr, batch, args.repeats, sync)
                rows.append(dict(device=type(dev).__name__.replace("Device", ""), batch=batch, d=label,
                                 pulses_per_sample=float(ev.n.sum() / batch), us_per_sample=float(np.median(us)),
                                 us_min=float(np.min(us)), us_max=float(np.max(us)), us_repeats=us))
    print(f"# tile.update, 256x785, backend {args.backend}, {stamp()['machine']['cpu']}, median of {args.repeats}")
    print("| device | batch | d | pulses/sample | us/sample (median) | min | max |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['device']} | {r['batch']} | {r['d']} | {r['pulses_per_sample']:.0f} | {r['us_per_sample']:.1f} "
              f"| {r['us_min']:.1f} | {r['us_max']:.1f} |")
    if args.json:
        write_raw(args.json, dict(benchmark="tile.update 256x785", backend=args.backend, repeats=args.repeats,
                                  rows=rows))


if __name__ == "__main__":
    main()
