"""The training loop of a run: epochs of mini-batches, the running loss, checkpoints, metrics and a step budget.

:class:`Trainer` trains a model built from ``models.layers`` with an optimizer from ``models.optim`` and writes,
in its output directory, ``checkpoint.npz`` (atomically, at every epoch end and every ``checkpoint_every`` steps),
``metrics.jsonl`` (one JSON object per epoch) and, with matplotlib, ``curves.png``. A run stopped at any
checkpoint and continued from it (:meth:`Trainer.resume`) ends with exactly the weights of an uninterrupted run:
the data order of an epoch and every random draw of the tiles are named by counters that the checkpoint holds.

Failures while running (a loss or a digital parameter that is no longer finite, a file that cannot be written)
raise :class:`RunError` with a one-line message, after the last good checkpoint was kept.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from crossbar.backend import array_module, implementation
from crossbar.cli import Figure

from .autograd import Array, Tensor, no_grad
from .checkpoint import save_training, write_text_atomic
from .layers import Module, nll_loss
from .optim import LRScheduler, Optimizer

CHECKPOINT, METRICS, CURVES = "checkpoint.npz", "metrics.jsonl", "curves.png"
POINTS_PER_EPOCH = 10  # running-loss points of curves.png per epoch


class RunError(Exception):
    """A run cannot go on; the message says what happened and where (one line)."""


@contextlib.contextmanager
def writing(path: Path):
    """Turn an OSError while writing ``path`` into a :class:`RunError`; files written before stay."""
    try:
        yield
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror or exc}") from exc


def train_step(model: Module, optimizer: Optimizer, x: Array, y: Array) -> Array:
    """One SGD step on the batch ``(x [batch, 784] float32, y [batch] int)``: forward, backward, update.

    Returns the batch's mean loss as a 0-d array on the model's backend. Nothing here reads a device array on
    the host, so on CuPy the step runs without host synchronisation (as far as the tiles do).
    """
    optimizer.zero_grad()
    loss = nll_loss(model(Tensor(x)), y)
    loss.backward()
    optimizer.step()
    return loss.data


def evaluate(model: Module, x: Array, y: Array, batch: int = 1000) -> tuple[float, float]:
    """``(accuracy, mean loss)`` of ``model`` on ``(x, y)`` in eval mode, without recording a graph."""
    xp = array_module(x)
    correct = xp.zeros((), xp.int64)
    total = xp.zeros((), xp.float64)
    model.eval()
    with no_grad():
        for s in range(0, len(x), batch):
            logp = model(Tensor(x[s:s + batch]))
            correct += (logp.data.argmax(axis=1) == y[s:s + batch]).sum()
            total += nll_loss(logp, y[s:s + batch]).data * len(logp.data)
    model.train()
    return float(correct) / len(x), float(total) / len(x)



def plot_curves(history: list[dict], path: Path, points: list | None = None,
                baseline: list[dict] | None = None) -> bool:
    """Save the loss and test-accuracy curves as a PNG; False without matplotlib.

    Args:
        history: per-epoch records (``epoch``, ``train_loss``, ``test_loss``, ``test_accuracy``).
        points: ``[epoch_position, mean training loss since the previous point]`` pairs within epochs (the
            position in epochs, e.g. 1.3 = 30% into epoch 2), drawn as a line.
        baseline: per-epoch records of the digital baseline, drawn as a reference line.
    """
    if Figure is None:
        return False
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    if points:
        ax1.plot(*zip(*points), "-", lw=1, color="C0", label="training (running mean)")
    ax1.plot(epochs, [h["train_loss"] for h in history], "o", color="C0", label="training, epoch mean")
    ax1.plot(epochs, [h["test_loss"] for h in history], "s-", color="C1", label="test")
    ax1.set(xlabel="epoch", ylabel="NLL loss (nats per image)", title="loss", xlim=(0, max(epochs, default=1)))
    ax2.plot(epochs, [100 * h["test_accuracy"] for h in history], "o-", label="analog")
    if baseline:
        ax2.plot([h["epoch"] for h in baseline], [100 * h["test_accuracy"] for h in baseline], "--", color="gray",
                 label="digital baseline (same init, data, lr)")
    ax2.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy", xlim=(0, max(epochs, default=1)))
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


class Progress:
    """A tqdm bar over an epoch's images (images/s, ETA, running loss) on stderr; does nothing when disabled."""

    def __init__(self, images: int, batch: int, initial_steps: int, desc: str, enabled: bool):
        self.images, self.batch, self.enabled = images, batch, enabled
        self.last = time.perf_counter()
        self.n = min(initial_steps * batch, images)  # images done (a disabled tqdm does not count)
        self.bar = tqdm(total=images, initial=self.n, desc=desc, unit="img",
                        unit_scale=True, mininterval=2.0, file=sys.stderr, dynamic_ncols=True, disable=not enabled)

    def due(self) -> bool:
        """Whether a refresh is due (the caller then reads the running loss: one host read per refresh)."""
        return self.enabled and time.perf_counter() - self.last >= 2.0

    def update(self, steps: int, loss: float | None = None) -> None:
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.last = time.perf_counter()
        step = min(steps * self.batch, self.images - self.n)
        self.n += step
        self.bar.update(step)

    def close(self) -> None:
        self.bar.close()


class Trainer:
    """Mini-batch training of ``model`` on ``(x_train, y_train)``, evaluated on ``(x_test, y_test)`` after every
    epoch, with its files in ``out``.

    Args:
        model, optimizer, scheduler: the network, its optimizer and lr schedule (stepped once per epoch).
        data: ``(x_train [n, features] float32, y_train [n] int, x_test, y_test)`` on the model's backend.
        order: ``order(epoch)`` -> the permutation of the ``n`` training indices for that epoch.
        batch: mini-batch size; epochs: epochs to train in all (a resumed run counts the done ones).
        meta: run description stored in every checkpoint (``run`` options, anything JSON-able).
        graph: replay full batches from a CUDA graph (CuPy backend).
        checkpoint_every: also checkpoint every N steps within an epoch (0: only at epoch ends).
        stop_after: checkpoint and return after N training steps of this call (0: train all epochs).
        progress: show a progress bar on stderr; plot: write curves.png after every epoch.
        baseline: per-epoch metrics of a digital baseline, drawn in curves.png.
        hint: added to a divergence message (e.g. ``"--lr 0.05"``).
    """

    def __init__(self, model: Module, optimizer: Optimizer, scheduler: LRScheduler, data: tuple,
                 order: Callable[[int], Array], *, batch: int, epochs: int, out: Path, meta: dict,
                 graph: bool = False, checkpoint_every: int = 0, stop_after: int = 0, progress: bool = False,
                 plot: bool = True, baseline: list[dict] | None = None, hint: str = ""):
        self.model, self.optimizer, self.scheduler, self.order = model, optimizer, scheduler, order
        self.x_train, self.y_train, self.x_test, self.y_test = data
        self.xp = array_module(self.x_train)
        self.batch, self.epochs, self.out, self.meta = batch, epochs, Path(out), meta
        self.checkpoint_every, self.progress, self.plot, self.baseline = checkpoint_every, progress, plot, baseline
        self.hint = f" ({hint})" if hint else ""
        self.stop_after, self.budget = stop_after, stop_after or math.inf  # training steps left for this call
        self.steps = -(-len(self.x_train) // batch)
        self.history: list[dict] = []
        self.points: list = []  # [epoch position, mean training loss since the previous point]
        self.epoch, self.step0, self.loss_sum, self.seconds0 = 0, 0, 0.0, 0.0
        # on the GPU, full batches replay one captured step (which gathers its own batch); see crossbar/cuda/graph.py
        runner = implementation("graph_epoch", "cupy")
        self.runner = runner(train_step, model, optimizer, self.xp, self.x_train, self.y_train, batch) \
            if graph else None

    def resume(self, meta: dict, loss_sum: float) -> None:
        """Continue from a checkpoint's ``meta`` (epoch, step, seconds, history, points) and running loss sum."""
        self.history, self.points = meta["history"], meta.get("points", [])
        self.epoch, self.step0 = meta["epoch"], min(meta["step"], self.steps)  # at an epoch's last step: its end
        self.loss_sum, self.seconds0 = loss_sum, meta["seconds"]

    # ---- the loop ------------------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        """Train the remaining epochs (or until the step budget is spent); returns the per-epoch metrics."""
        while self.epoch < self.epochs:
            t0 = time.perf_counter() - self.seconds0
            total = self._train_epoch(t0)
            if total is None:  # stopped within the epoch
                return self.history
            self._end_epoch(total, t0)
            if not self.budget:
                print(f"stopped after {self.stop_after} steps at the end of epoch {self.epoch}; continue with "
                      f"--resume", flush=True)
                return self.history
        return self.history

    def _train_epoch(self, t0: float) -> float | None:
        """The epoch's steps from ``step0``; returns its training loss sum, or None when the budget stopped it."""
        xp, batch, steps, runner = self.xp, self.batch, self.steps, self.runner
        order = self.order(self.epoch)
        running = xp.asarray(self.loss_sum, dtype=xp.float64)  # device accumulator: read once per refresh
        if runner is not None:
            runner.start(order, first=self.step0)
        total = (lambda: float(running) + runner.loss_sum()) if runner is not None else (lambda: float(running))
        bar = Progress(len(self.x_train), batch, self.step0, f"epoch {self.epoch + 1}/{self.epochs}", self.progress)
        step, every_point = self.step0, max(steps // POINTS_PER_EPOCH, 1)
        point_from = (step, total())  # where the current running-loss point's segment starts
        while step < steps:
            if runner is not None and step < runner.steps:
                # replay up to the next checkpoint, point or stop, at most 100 steps between progress refreshes
                every = self.checkpoint_every or steps
                chunk = int(min(runner.steps - step, every - step % every, self.budget, 100,
                                every_point - step % every_point))
                runner.run(chunk)
            else:
                chunk = 1
                running += self._eager_step(order[step * batch:(step + 1) * batch], step)
            step += chunk
            self.budget -= chunk
            bar.update(chunk, total() / step if bar.due() else None)
            if step % every_point == 0 or step == steps:
                now = total()  # one host read (a device sync on the GPU)
                mean = (now - point_from[1]) / (step - point_from[0])
                self.points.append([round(self.epoch + step / steps, 4), mean])
                point_from = (step, now)
            if step < steps and ((self.checkpoint_every and step % self.checkpoint_every == 0) or not self.budget):
                loss_total = total()
                self._check_finite("the training loss", loss_total, f"at epoch {self.epoch + 1} step {step}")
                self._checkpoint(self.epoch, step, loss_total, time.perf_counter() - t0)
            if not self.budget and step < steps:
                bar.close()
                print(f"stopped after {self.stop_after} steps at epoch {self.epoch + 1} step {step}; continue "
                      f"with --resume", flush=True)
                return None
        bar.close()
        sum_ = total()
        if runner is not None:
            runner.take_loss_sum()
        return sum_

    def _eager_step(self, idx, step: int):
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported by the caller
                return train_step(self.model, self.optimizer, self.x_train[idx], self.y_train[idx])
        except ValueError:  # an analog layer refuses NaN/Inf inputs: diverged digital parameters?
            if self._params_finite():
                raise
            self._diverged(f"a digital parameter is no longer finite at epoch {self.epoch + 1} step {step + 1}")

    def _end_epoch(self, loss_total: float, t0: float) -> None:
        """Evaluate, record, step the schedule, checkpoint, write the metrics and the plot."""
        train_loss = loss_total / self.steps
        train_seconds = time.perf_counter() - t0
        self._check_finite("the training loss", train_loss, f"in epoch {self.epoch + 1}")
        with np.errstate(over="ignore", invalid="ignore"):
            accuracy, test_loss = evaluate(self.model, self.x_test, self.y_test)
        self._check_finite("the test loss", test_loss, f"after epoch {self.epoch + 1}")
        record = {"epoch": self.epoch + 1, "lr": self.optimizer.lr, "train_loss": train_loss,
                  "test_loss": test_loss, "test_accuracy": accuracy, "seconds": round(time.perf_counter() - t0, 3),
                  "train_seconds": round(train_seconds, 3)}
        self.history.append(record)
        self.scheduler.step()
        self.epoch, self.step0, self.loss_sum, self.seconds0 = self.epoch + 1, 0, 0.0, 0.0
        self._checkpoint(self.epoch, 0, 0.0, 0.0)
        self.write_metrics()
        print(f"epoch {record['epoch']:3d}  lr {record['lr']:.5g}  train loss {train_loss:.4f}  test loss "
              f"{test_loss:.4f}  test accuracy {100 * accuracy:.2f}%  ({record['seconds']:.1f} s)", flush=True)
        if self.plot:
            with writing(self.out / CURVES):
                plot_curves(self.history, self.out / CURVES, self.points, self.baseline)

    # ---- files and checks ------------------------------------------------------------------------------------
    def write_metrics(self) -> None:
        """(Re)write metrics.jsonl from the history."""
        with writing(self.out / METRICS):
            write_text_atomic(self.out / METRICS, "".join(json.dumps(h) + "\n" for h in self.history))

    def _checkpoint(self, epoch_done: int, step: int, loss_total: float, seconds: float) -> None:
        with writing(self.out / CHECKPOINT):
            save_training(self.out / CHECKPOINT, self.model, self.optimizer, self.scheduler,
                          meta={**self.meta, "epochs": self.epochs, "epoch": epoch_done, "step": step,
                                "seconds": seconds, "history": self.history, "points": self.points},
                          arrays={"loss_sum": np.float64(loss_total)})

    def _params_finite(self) -> bool:  # the digital ones: analog weights stay within their device bounds
        return all(bool(self.xp.isfinite(p.data).all()) for p in self.model.parameters())

    def _check_finite(self, what: str, value: float, where: str) -> None:
        """Stop, before anything of a diverged state is written, if ``value`` or a parameter is not finite."""
        if not math.isfinite(value):
            self._diverged(f"{what} is {value} {where}")
        if not self._params_finite():
            self._diverged(f"a digital parameter is no longer finite {where}")

    def _diverged(self, what: str):
        ckpt = self.out / CHECKPOINT
        kept = f"{ckpt} holds the last good state" if ckpt.exists() else "nothing was checkpointed"
        raise RunError(f"training diverged: {what}{self.hint}; {kept}")
