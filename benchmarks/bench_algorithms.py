"""The algorithm table: MNIST (784-256-128-10 sigmoid, batch 64, lr 0.05 halved every 10 epochs) on the GPU
for each training algorithm and device; test accuracy after selected epochs and seconds per epoch.

Usage: ``python benchmarks/bench_algorithms.py --device soft-bounds-reference --epochs 30 --json F``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.provenance import write_raw  # noqa: E402


def main(argv=None):
    import cupy as cp
    from bench_mnist_gpu import train
    from crossbar.config import Config
    from crossbar.presets import ALGORITHMS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", action="append", default=None)
    ap.add_argument("--device-config", action="append", default=None,
                    help="a device config JSON (e.g. the fitted.json of python -m crossbar.fit); repeatable")
    ap.add_argument("--algorithm", action="append", default=None)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--report", default="1,2,5,10,20,30")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--eager", action="store_true", help="no CUDA graphs")
    ap.add_argument("--digital-bias", action="store_true", help="digital biases instead of analog bias columns")
    args = ap.parse_args(argv)
    report = {int(e) for e in args.report.split(",")}
    results = []
    devices = [(name, name) for name in args.device or ([] if args.device_config else ["soft-bounds-reference"])]
    devices += [(Path(p).stem, Config.from_dict(json.loads(Path(p).read_text()))) for p in args.device_config or []]
    for label, device in devices:
        for algorithm in args.algorithm or ALGORITHMS:
            t0 = time.perf_counter()
            rows = train(cp, 64, 0.05, args.epochs, args.seed, algorithm=algorithm, device=device,
                         report_epochs=report, log=lambda r: None, graph=not args.eager,
                         digital_bias=args.digital_bias)
            acc = {r["epoch"]: r["test_accuracy"] for r in rows if "test_accuracy" in r}
            secs = sorted(r["train_seconds"] for r in rows[1:]) or [rows[0]["train_seconds"]]
            res = dict(device=label, algorithm=algorithm, digital_bias=args.digital_bias, accuracy=acc,
                       seconds_per_epoch=secs[len(secs) // 2],
                       first_epoch_seconds=rows[0]["train_seconds"], graph=rows[-1].get("graph"),
                       wall=time.perf_counter() - t0)
            print(json.dumps(res), flush=True)
            results.append(res)
            if args.json:  # after every run, so a time limit keeps what finished
                write_raw(args.json, dict(benchmark="bench_algorithms", epochs=args.epochs, runs=results))
    cols = sorted(report)
    print("\n| device | algorithm | " + " | ".join(f"acc@{e}" for e in cols) + " | s/epoch (GPU) | graph |")
    print("|---|---|" + "---|" * (len(cols) + 2))
    for r in results:
        accs = " | ".join(f"{100 * r['accuracy'][e]:.2f}" if e in r["accuracy"] else "" for e in cols)
        print(f"| {r['device']} | {r['algorithm']} | {accs} | {r['seconds_per_epoch']:.2f} | {r['graph']} |")


if __name__ == "__main__":
    main()
