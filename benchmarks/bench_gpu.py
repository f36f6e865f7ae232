"""GPU benchmarks: the pulsed-update kernel and the IO-managed MVM on a 4096 x 4096 tile.

Usage: ``python benchmarks/bench_gpu.py [--quick] [--json out.json]``. Times are medians of CUDA-event timed
repeats after a warm-up call (which compiles or loads the kernels). Prints Markdown tables with the
fraction of the roofline (see benchmarks/RESULTS.md for how the roofline is counted).

Update workloads (BL = 31, update management on):
  * ``mnist-like``: x in [0, 1] with 19% non-zero lines (MNIST's pixel density), d ~ N(0, 1e-3), lr 0.05:
    few pulses, BL mostly 1.
  * ``dense``: x, d ~ U(-1, 1), lr 1: every sample saturates BL = 31 and most weights see coincidences.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def median_ms(fn, repeats, cp):
    fn()  # warm-up: compiles or loads kernels, fills caches
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def workload(cp, kind: str, batch: int, size: int):
    """``(x, d, lr)`` of the update workloads (module docstring), on the device."""
    from crossbar import rng
    u = cp.asarray(rng.uniform_array(rng.seed_key(3), 0, (batch, size)))
    if kind == "mnist-like":
        keep = cp.asarray(rng.uniform_array(rng.seed_key(4), 0, (batch, size))) < 0.19
        x = cp.where(keep, u, 0).astype(cp.float32)
        d = cp.asarray(rng.normal_array(rng.seed_key(5), 0, (batch, size))) * np.float32(1e-3)
        return x, d, 0.05
    x = (u * 2 - 1).astype(cp.float32)
    d = (cp.asarray(rng.uniform_array(rng.seed_key(6), 0, (batch, size))) * 2 - 1).astype(cp.float32)
    return x, d, 1.0


def update_rows(cp, size, batches, repeats):
    from crossbar import AnalogTile, TileConfig
    from crossbar.devices import ConstantStepDevice, SoftBoundsDevice
    rows = []
    for dev_name, dev in (("ConstantStep", ConstantStepDevice(dw_min_std=0.3)), ("SoftBounds", SoftBoundsDevice())):
        # building a 4096 x 4096 tile draws 16.7M device parameters per field on the host: do it once
        tile = AnalogTile(size, size, TileConfig(device=dev), seed=1, backend="cupy")
        counting = AnalogTile(size, size, TileConfig(device=dev.replace(count_pulses=True)), seed=1, backend="cupy")
        for kind in ("mnist-like", "dense"):
            for batch in batches:
                x, d, lr = workload(cp, kind, batch, size)
                ms = median_ms(lambda: tile.update(x, d, lr), repeats if batch < 1024 else max(repeats // 2, 3), cp)
                for k in ("up", "down"):
                    counting.pulse_counts[k][...] = 0
                counting.update(x, d, lr)
                total = counting.pulse_counts["up"] + counting.pulse_counts["down"]
                pulses, touched = float(total.sum()), float(cp.count_nonzero(total))
                ws = size * size * batch / (ms * 1e-3)
                row = dict(device=dev_name, workload=kind, batch=batch, ms=ms, weight_samples_per_s=ws,
                           pulses_per_s=pulses / (ms * 1e-3), pulses_per_sample=pulses / batch,
                           touched_fraction=touched / size**2)
                print(row, flush=True)
                rows.append(row)
        tile = counting = None  # free the 4096 x 4096 tiles before the next device
        cp.get_default_memory_pool().free_all_blocks()
    return rows


def mvm_rows(cp, size, batch, repeats):
    from crossbar import AnalogTile, TileConfig, rng
    tile = AnalogTile(size, size, TileConfig(), seed=1, backend="cupy")
    tile.set_weights(rng.uniform_array(rng.seed_key(1), 0, (size, size)) * np.float32(0.2) - np.float32(0.1))
    x = cp.asarray(rng.uniform_array(rng.seed_key(2), 0, (batch, size)) * 2 - 1)
    w = tile.weights
    bare = median_ms(lambda: cp.matmul(x, w.T), repeats, cp)
    fwd = median_ms(lambda: tile.forward(x), repeats, cp)
    bwd = median_ms(lambda: tile.backward(x), repeats, cp)
    return [dict(op="bare cupy.matmul", ms=bare, ratio=1.0), dict(op="forward (default IO)", ms=fwd, ratio=fwd / bare),
            dict(op="backward (default IO)", ms=bwd, ratio=bwd / bare)]


def main(argv=None):
    import cupy as cp
    from crossbar import _cuda
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else 20
    props = cp.cuda.runtime.getDeviceProperties(0)
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    t0 = time.perf_counter()
    upd = update_rows(cp, 4096, (1, 64, 1024), repeats)
    mvm = mvm_rows(cp, 4096, 1024, repeats)
    print(f"# GPU: {gpu}, CuPy {cp.__version__}, {time.strftime('%Y-%m-%d')}; compile/load seconds: "
          f"{ {k: round(v, 3) for k, v in _cuda.COMPILE_SECONDS.items()} }")
    print("\n| device | workload | batch | ms | weight-samples/s | pulses/s | pulses/sample | weights touched |")
    print("|---|---|---|---|---|---|---|---|")
    for r in upd:
        print(f"| {r['device']} | {r['workload']} | {r['batch']} | {r['ms']:.3f} | {r['weight_samples_per_s']:.3g} | "
              f"{r['pulses_per_s']:.3g} | {r['pulses_per_sample']:.3g} | {r['touched_fraction']:.2f} |")
    print("\n| 4096x4096, batch 1024 | ms | vs bare matmul |\n|---|---|---|")
    for r in mvm:
        print(f"| {r['op']} | {r['ms']:.3f} | {r['ratio']:.2f}x |")
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(gpu=gpu, update=upd, mvm=mvm, compile=_cuda.COMPILE_SECONDS), fh, indent=1)


if __name__ == "__main__":
    main()
