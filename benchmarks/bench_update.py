"""Benchmark ``AnalogTile.update`` for MNIST's first layer (256 x 785) on the NumPy reference (or CuPy).

x: real MNIST rows (with a bias input of 1). d: the first-layer output gradients of the 784-256-128-10
sigmoid MLP (Gokmen & Vlasov 2016) at its standard random initialisation, for a cross-entropy loss averaged
over the batch, exactly as training produces them; lr 0.05 at batch 64 and 0.01 at batch 1 (the two MNIST
set-ups). A "dense" row scales d up 30x so that most samples reach the full BL = 31: the worst case.

Usage: ``python benchmarks/bench_update.py [--backend numpy|cupy] [--repeats 20]``. Prints a Markdown table
(median over repeats, microseconds per sample) and the pulse statistics of the workload.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from crossbar import AnalogTile, TileConfig, pulses
from crossbar.devices import ConstantStepDevice, SoftBoundsDevice
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
    times = []
    for k in range(repeats + 1):
        sl = slice(k * batch, (k + 1) * batch)
        sync()
        t0 = time.perf_counter()
        tile.update(xs[sl], ds[sl], lr)
        sync()
        if k:  # the first call warms caches (and compiles kernels on the GPU)
            times.append(time.perf_counter() - t0)
    return np.median(times) / batch * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    ap.add_argument("--repeats", type=int, default=20)
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
                rows.append((type(dev).__name__.replace("Device", ""), batch, label, ev.n.sum() / batch, us))
    print(f"# tile.update, 256x785, backend {args.backend}, {platform.processor() or platform.machine()}, "
          f"median of {args.repeats}")
    print("| device | batch | d | pulses/sample | us/sample |")
    print("|---|---|---|---|---|")
    for dev, batch, label, pulses_per, us in rows:
        print(f"| {dev} | {batch} | {label} | {pulses_per:.0f} | {us:.1f} |")


if __name__ == "__main__":
    main()
