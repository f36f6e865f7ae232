"""MNIST epochs on the GPU: seconds per epoch with the training step replayed from a CUDA graph, and eager.

The incumbent's example set-up (784-256-128-10 sigmoid MLP, ConstantStep defaults, analog bias column,
AnalogSGD lr 0.05 halved every 10 epochs, batch 64) and the paper's batch 1 (lr 0.01). Usage::

    python benchmarks/bench_mnist_gpu.py [--epochs 30] [--batch1-epochs 1] [--eager-steps 200] [--json F]

Prints seconds per epoch (training only; the test-set evaluation is timed separately) and test accuracy
after every epoch. ``--eager-steps`` times that many eager steps for the comparison.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.provenance import write_raw  # noqa: E402


def train(cp, batch, lr, epochs, seed, graph=True, max_steps=None, schedule=True, log=print, algorithm="sgd",
          device="constant-step", report_epochs=None, digital_bias=False, measure=None):
    """Train the MLP; one row per epoch (``measure(model)`` adds its dict to each evaluated row)."""
    from models.data import load_mnist
    from crossbar.cuda.graph import GraphEpoch
    from models.mnist import build_mlp, epoch_order
    from models.trainer import evaluate, train_step
    from models.optim import AnalogSGD
    x_train, y_train, x_test, y_test = load_mnist()
    x_train, y_train, x_test, y_test = (cp.asarray(a) for a in (x_train, y_train, x_test, y_test))
    model = build_mlp(seed=seed, backend="cupy", algorithm=algorithm, device=device, digital_bias=digital_bias)
    opt = AnalogSGD(model, lr)
    runner = GraphEpoch(train_step, model, opt, cp, x_train, y_train, batch) if graph else None
    rows = []
    n = len(x_train)
    for epoch in range(epochs):
        if schedule:
            opt.lr = lr * 0.5 ** (epoch // 10)
        order = epoch_order(seed, epoch, n)
        steps = n // batch if max_steps is None else max_steps
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        total = cp.zeros((), cp.float32)
        if runner is not None:
            runner.start(order)
            runner.run(steps)
        else:
            order = cp.asarray(order)
            for k in range(steps):
                idx = order[k * batch:(k + 1) * batch]
                total += train_step(model, opt, x_train[idx], y_train[idx])
        cp.cuda.Device().synchronize()
        seconds = time.perf_counter() - t0
        loss = (runner.take_loss_sum() if runner is not None else float(total)) / steps
        t1 = time.perf_counter()
        if report_epochs is not None and epoch + 1 not in report_epochs:
            rows.append(dict(batch=batch, epoch=epoch + 1, train_seconds=seconds, train_loss=loss))
            continue
        acc, _ = evaluate(model, x_test, y_test)
        row = dict(batch=batch, epoch=epoch + 1, lr=opt.lr, steps=steps, train_seconds=seconds,
                   us_per_sample=seconds / (steps * batch) * 1e6, train_loss=loss, test_accuracy=acc,
                   eval_seconds=time.perf_counter() - t1, graph=runner is not None and runner.failed is None,
                   algorithm=algorithm, device=device if isinstance(device, str) else type(device).__name__,
                   **(measure(model) if measure else {}))
        log(row)
        rows.append(row)
    return rows


def main(argv=None):
    import cupy as cp
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch1-epochs", type=int, default=1)
    ap.add_argument("--eager-steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    log = lambda r: print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)  # noqa
    out = {"batch64": train(cp, 64, 0.05, args.epochs, args.seed, log=log)}
    if args.batch1_epochs:
        out["batch1"] = train(cp, 1, 0.01, args.batch1_epochs, args.seed, log=log)
    if args.eager_steps:
        out["eager64"] = train(cp, 64, 0.05, 1, args.seed, graph=False, max_steps=args.eager_steps, log=log)
        out["eager1"] = train(cp, 1, 0.01, 1, args.seed, graph=False, max_steps=args.eager_steps, log=log)
    if args.json:
        write_raw(args.json, out)


if __name__ == "__main__":
    main()
