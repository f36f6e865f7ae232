"""End-to-end training speed of the MNIST MLP (784-256-128-10 sigmoid, Gokmen & Vlasov 2016).

Times ``models.trainer.train_step`` (forward, backward and pulsed update of all three analog layers, plus the
loss) on real MNIST batches in the order training uses, with ConstantStep defaults (default IO and update
parameters), and reports microseconds per training sample at batch 64 (lr 0.05, the incumbent's example)
and batch 1 (lr 0.01, the paper's set-up): the median over repeats, each repeat a run of consecutive steps.
With ``--profile`` it also prints where the time goes (cProfile, by function, cumulative and own time).

Usage: ``python benchmarks/bench_mnist.py [--repeats 7] [--steps 20] [--profile] [--backend numpy|cupy]
[--json RAW]`` (``--json`` writes the rows with their provenance).
Set ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` to fix the BLAS threads; the table states the machine.

The incumbent's C++ engine (aihwkit RPUCuda on the CPU) takes 74 us (batch 64) and 577 us (batch 1) per
sample on a 2-core machine (issue 3). Targets for now: <= 150 us and <= 600 us.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.provenance import stamp, write_raw  # noqa: E402
from crossbar.backend import get_xp
from models.data import load_mnist
from models.mnist import build_mlp, epoch_order
from models.trainer import train_step
from models.optim import SGD, AnalogSGD

SETUPS = ((64, 0.05), (1, 0.01))


def blas_threads() -> str:
    return os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"


def machine() -> str:
    m = stamp()["machine"]
    return (f"{m['cpu']}, {m['logical_cpus']} logical CPUs, BLAS threads {blas_threads()}, Python {m['python']}, "
            f"NumPy {m['numpy']}")


def setup(batch: int, lr: float, digital: bool, backend: str, warmup: int):
    """A fresh model and optimizer, the data, and a batch iterator in training order (after ``warmup`` steps)."""
    x, y, _, _ = load_mnist()
    xp = get_xp(backend)
    model = build_mlp(digital=digital, seed=0, backend=backend)
    opt = SGD(model.parameters(), lr) if digital else AnalogSGD(model, lr)
    order = epoch_order(0, 0, len(x))
    x, y = xp.asarray(x), xp.asarray(y)
    batches = ((x[idx], y[idx]) for idx in (xp.asarray(order[k:k + batch]) for k in range(0, len(order), batch)))
    for _ in range(warmup):  # caches, allocator, first-call costs
        train_step(model, opt, *next(batches))
    return model, opt, batches


def time_setup(batch, lr, digital, backend, repeats, steps, sync):
    model, opt, batches = setup(batch, lr, digital, backend, warmup=3)
    per_sample = []
    for _ in range(repeats):
        work = [next(batches) for _ in range(steps)]
        sync()
        t0 = time.perf_counter()
        for xb, yb in work:
            train_step(model, opt, xb, yb)
        sync()
        per_sample.append((time.perf_counter() - t0) / (steps * batch) * 1e6)
    return statistics.median(per_sample), min(per_sample), max(per_sample)


def split_setup(batch, lr, backend, steps, sync):
    """Wall time per sample inside each AnalogTile method versus everything else (models/, NumPy glue)."""
    from crossbar.tiles.tile import AnalogTile
    model, opt, batches = setup(batch, lr, False, backend, warmup=3)
    work = [next(batches) for _ in range(steps)]
    spent = dict.fromkeys(("forward", "backward", "update", "post_update_step"), 0.0)
    originals = {name: getattr(AnalogTile, name) for name in spent}

    def timed(name, fn):
        def wrapper(self, *a, **k):
            t0 = time.perf_counter()
            try:
                return fn(self, *a, **k)
            finally:
                sync()
                spent[name] += time.perf_counter() - t0
        return wrapper

    for name, fn in originals.items():
        setattr(AnalogTile, name, timed(name, fn))
    try:
        sync()
        t0 = time.perf_counter()
        for xb, yb in work:
            train_step(model, opt, xb, yb)
        sync()
        total = time.perf_counter() - t0
    finally:
        for name, fn in originals.items():
            setattr(AnalogTile, name, fn)
    scale = 1e6 / (steps * batch)
    parts = {f"tile.{k}": v * scale for k, v in spent.items()}
    parts["models/ (autograd, activations, loss, SGD glue)"] = (total - sum(spent.values())) * scale
    return total * scale, parts


def profile_setup(batch, lr, backend, steps, top):
    model, opt, batches = setup(batch, lr, False, backend, warmup=3)
    work = [next(batches) for _ in range(steps)]
    prof = cProfile.Profile()
    prof.enable()
    for xb, yb in work:
        train_step(model, opt, xb, yb)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    total = stats.total_tt
    print(f"\n## cProfile, analog, batch {batch}, {steps} steps: {total / (steps * batch) * 1e6:.0f} us/sample "
          f"under the profiler")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    keep = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("Ordered by", "List reduced"))]
    print("\n".join(keep))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    ap.add_argument("--repeats", type=int, default=7, help="timed runs per set-up (median reported)")
    ap.add_argument("--steps", type=int, default=0, help="steps per run (default: 20 at batch 64, 200 at batch 1)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile breakdown per batch size")
    ap.add_argument("--top", type=int, default=25, help="functions shown per profile table")
    ap.add_argument("--json", default=None, help="write the raw rows and their provenance here")
    args = ap.parse_args(argv)
    sync = lambda: None
    if args.backend == "cupy":
        import cupy
        sync = cupy.cuda.Device().synchronize
    rows = []
    for batch, lr in SETUPS:
        steps = args.steps or (20 if batch > 1 else 200)
        for digital in (False, True):
            med, lo, hi = time_setup(batch, lr, digital, args.backend, args.repeats, steps, sync)
            rows.append((batch, lr, "digital (float32)" if digital else "analog ConstantStep", med, lo, hi))
    print(f"# MNIST 784-256-128-10 train_step, backend {args.backend}")
    print(f"# {machine()}; median of {args.repeats} runs; {time.strftime('%Y-%m-%d')}")
    print("| batch | lr | layers | us/sample (median) | min | max |")
    print("|---|---|---|---|---|---|")
    for batch, lr, kind, med, lo, hi in rows:
        print(f"| {batch} | {lr} | {kind} | {med:.1f} | {lo:.1f} | {hi:.1f} |")
    print("\n## Where the time goes (wall time per sample, us; analog ConstantStep)")
    print("| batch | total | tile.forward | tile.backward | tile.update | tile.post_update_step | models/ and glue |")
    print("|---" * 7 + "|")
    split = []
    for batch, lr in SETUPS:
        total, parts = split_setup(batch, lr, args.backend, args.steps or (20 if batch > 1 else 200), sync)
        print(f"| {batch} | {total:.1f} | " + " | ".join(f"{v:.1f}" for v in parts.values()) + " |")
        split.append(dict(batch=batch, total=total, **parts))
    if args.json:
        keys = ("batch", "lr", "layers", "us_per_sample", "us_min", "us_max")
        write_raw(args.json, dict(benchmark="MNIST train_step", backend=args.backend, repeats=args.repeats,
                                  blas_threads=blas_threads(),
                                  rows=[dict(zip(keys, r)) for r in rows], split=split))
    if args.profile:
        for batch, lr in SETUPS:
            profile_setup(batch, lr, args.backend, args.steps or (20 if batch > 1 else 200), args.top)


if __name__ == "__main__":
    main()
