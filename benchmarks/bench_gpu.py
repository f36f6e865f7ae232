"""GPU benchmarks: the pulsed-update kernel and the IO-managed MVM on a 4096 x 4096 tile.

Usage: ``python benchmarks/bench_gpu.py [--quick] [--json RAW]``. Times are medians (with the fastest and
slowest repeat) of CUDA-event timed repeats after a warm-up call (which compiles or loads the kernels).
Prints Markdown tables; ``--json`` writes the rows with their provenance (date, commit, machine, command).

Update workloads (BL = 31, update management on):
  * ``mnist-like``: x in [0, 1] with 19% non-zero lines (MNIST's pixel density), d ~ N(0, 1e-3), lr 0.05:
    few pulses, BL mostly 1.
  * ``dense``: x, d ~ U(-1, 1), lr 1: every sample saturates BL = 31 and most weights see coincidences.

``pulses_per_weight_sample`` is the mean number of pulses per (weight, sample): an upper bound on the
fraction of weight-samples that carry any pulse (the others cost the kernel one AND of empty trains).

MVM cases (default IO: abs-max noise management, 7-bit DAC, 9-bit ADC with out_bound 12, out noise 0.06,
iterative bound management): weights U(-0.1, 0.1) (no output saturates, bound management never triggers)
and U(-0.5, 0.5) (most samples saturate the ADC and bound management redoes them at a smaller input
scale). ``bm_fraction`` is the fraction of samples whose ideal output exceeds out_bound after noise
management, i.e. that trigger at least one bound-management round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.provenance import write_raw  # noqa: E402


def timed_ms(fn, repeats, cp):
    """``(median, min, max)`` milliseconds of ``repeats`` CUDA-event timed calls after one warm-up call."""
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
    return float(np.median(times)), float(np.min(times)), float(np.max(times))


def workload(cp, kind: str, batch: int, size: int):
    """``(x, d, lr)`` of the update workloads (module docstring), on the device."""
    from crossbar.physics import rng
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
    from crossbar.physics.devices import ConstantStepDevice, SoftBoundsDevice
    rows = []
    for dev_name, dev in (("ConstantStep", ConstantStepDevice(dw_min_std=0.3)), ("SoftBounds", SoftBoundsDevice())):
        # building a 4096 x 4096 tile draws 16.7M device parameters per field on the host: do it once
        tile = AnalogTile(size, size, TileConfig(device=dev), seed=1, backend="cupy")
        counting = AnalogTile(size, size, TileConfig(device=dev.replace(count_pulses=True)), seed=1, backend="cupy")
        for kind in ("mnist-like", "dense"):
            for batch in batches:
                x, d, lr = workload(cp, kind, batch, size)
                reps = repeats if batch < 1024 else max(repeats // 2, 3)
                ms, lo, hi = timed_ms(lambda: tile.update(x, d, lr), reps, cp)
                for k in ("up", "down"):
                    counting.pulse_counts[k][...] = 0
                counting.update(x, d, lr)
                total = counting.pulse_counts["up"] + counting.pulse_counts["down"]
                pulses, touched = float(total.sum()), float(cp.count_nonzero(total))
                ws = size * size * batch / (ms * 1e-3)
                row = dict(device=dev_name, workload=kind, batch=batch, ms=ms, ms_min=lo, ms_max=hi,
                           weight_samples_per_s=ws, pulses_per_s=pulses / (ms * 1e-3),
                           pulses_per_sample=pulses / batch, pulses_per_weight_sample=pulses / (batch * size**2),
                           touched_fraction=touched / size**2)
                print(row, flush=True)
                rows.append(row)
        tile = counting = None  # free the 4096 x 4096 tiles before the next device
        cp.get_default_memory_pool().free_all_blocks()
    return rows


def mvm_rows(cp, size, batch, repeats):
    from crossbar import AnalogTile, TileConfig
    from crossbar.physics import rng
    rows = []
    x = cp.asarray(rng.uniform_array(rng.seed_key(2), 0, (batch, size)) * 2 - 1)
    u = rng.uniform_array(rng.seed_key(1), 0, (size, size))
    for w_max in (0.1, 0.5):
        tile = AnalogTile(size, size, TileConfig(), seed=1, backend="cupy")
        tile.set_weights(u * np.float32(2 * w_max) - np.float32(w_max))
        w = tile.weights
        bare = timed_ms(lambda: cp.matmul(x, w.T), repeats, cp)
        for op, fn, y, io in (("forward", tile.forward, x @ w.T, tile.config.forward),
                              ("backward", tile.backward, x @ w, tile.config.backward)):
            scaled = cp.abs(y).max(axis=1) / cp.abs(x).max(axis=1)  # the output after abs-max noise management
            ms = timed_ms(lambda: fn(x), repeats, cp)
            rows.append(dict(op=op, weights=f"U(-{w_max}, {w_max})", bm_fraction=float((scaled > io.out_bound).mean()),
                             ms=ms[0], ms_min=ms[1], ms_max=ms[2], bare_ms=bare[0], bare_ms_min=bare[1],
                             bare_ms_max=bare[2], ratio=ms[0] / bare[0]))
        tile = w = None
        cp.get_default_memory_pool().free_all_blocks()
    return rows


def main(argv=None):
    import cupy as cp
    from crossbar.cuda import kernels as _cuda
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
    print("\n| device | workload | batch | ms (min-max) | weight-samples/s | pulses/s | pulses/weight-sample |")
    print("|---|---|---|---|---|---|---|")
    for r in upd:
        print(f"| {r['device']} | {r['workload']} | {r['batch']} | {r['ms']:.3f} ({r['ms_min']:.3f}-{r['ms_max']:.3f})"
              f" | {r['weight_samples_per_s']:.3g} | {r['pulses_per_s']:.3g} | {r['pulses_per_weight_sample']:.3g} |")
    print("\n| 4096x4096, batch 1024 | weights | samples triggering BM | ms | bare matmul ms | ratio |")
    print("|---|---|---|---|---|---|")
    for r in mvm:
        print(f"| {r['op']} | {r['weights']} | {r['bm_fraction']:.2f} | {r['ms']:.3f} | {r['bare_ms']:.3f} "
              f"| {r['ratio']:.2f}x |")
    print(f"\n(total {time.perf_counter() - t0:.1f} s)")
    if args.json:
        write_raw(args.json, dict(benchmark="bench_gpu", gpu=gpu, repeats=repeats, update=upd, mvm=mvm,
                                  compile_seconds=_cuda.COMPILE_SECONDS))


if __name__ == "__main__":
    main()
