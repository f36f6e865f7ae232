"""The main job: train the 784-256-128-10 sigmoid MLP on MNIST with analog (or digital) weights.

The network and loss are those of Gokmen & Vlasov 2016 (Front. Neurosci. 10:333) as set up in the
incumbent's ``examples/03_mnist_training.py``: three fully connected layers with biases, sigmoid hidden
units, LogSoftmax and the negative log-likelihood averaged over the mini-batch; pixels scaled to [0, 1];
weights and biases initialised ``U(-1/sqrt(in), 1/sqrt(in))``. Defaults reproduce that example: ConstantStep
devices with default IO, ``AnalogSGD`` at lr 0.05 halved every 10 epochs, batch 64, 30 epochs.

    python -m models.mnist                                   # the incumbent's example set-up
    python -m models.mnist --epochs 2 --lr 0.2 --baseline    # a minute on a CPU, beside the digital network
    python -m models.mnist --digital --out runs/digital      # floating-point baseline, same init
    python -m models.mnist --batch-size 1 --lr 0.01 --schedule paper --out runs/paper   # the paper's set-up
    python -m models.mnist --epochs 1 --train-samples 6000 --out runs/quick            # a quick look
    python -m models.mnist --resume --out runs/paper         # continue a stopped run exactly

Schedules (``--schedule``): ``step:N:G`` multiplies the lr by G every N epochs (default ``step:10:0.5``);
``multistep:M1,M2,...:G`` multiplies it by G at each milestone epoch; ``paper`` is ``multistep:10,20:0.5``,
i.e. lr, lr/2, lr/4 for epochs 1-10, 11-20, 21+ (with ``--lr 0.01``: the paper's 0.01, 0.005, 0.0025);
``constant``. The schedule scales whatever ``--lr`` is given.

Reproducibility. The layer seeds derive from ``--seed`` (digital and analog runs start from the same
weights), the data order of epoch e is the argsort of Philox words named by (seed, e), and every random
draw of the tiles is named by their counters. A run stopped at any checkpoint and continued with ``--resume``
therefore ends with exactly the weights of an uninterrupted run.

``--backend auto`` (the default) runs on the GPU when CuPy and a CUDA device are usable, else on NumPy.
``--baseline`` first trains the digital network with the same initial weights, data order, lr, schedule and
epochs in ``OUT/digital`` (resumed or reused when there), prints its accuracy beside the analog one and draws it
in ``curves.png``. The training loop itself is :class:`models.trainer.Trainer`.

Output in ``--out`` (default ``runs/mnist``): ``metrics.jsonl`` (one JSON object per epoch: epoch, lr,
train_loss, test_loss, test_accuracy, seconds), ``checkpoint.npz`` (written atomically at the end of every
epoch, and every ``--checkpoint-every`` steps), ``config.json`` and, with matplotlib, ``curves.png``. An ``--out``
holding any of these is refused unless ``--resume`` (continue) or ``--overwrite`` (delete them, start afresh) is
given; temporary files left by an interrupted write are removed at start.

User errors (bad options, data or checkpoint, an unwritable ``--out``, a full disk, a diverging run) end the job
with ``python -m models.mnist: error: <what, naming the value or path>`` and exit status 2. Options, ``--out`` and
the checkpoint to resume are checked before any data is loaded or any file written; a failure while running keeps
the files written before it (the last good checkpoint).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path
from typing import NoReturn

import numpy as np

from crossbar.physics import rng
from crossbar.backend import BACKENDS, get_xp, resolve_backend
from crossbar.config import TileConfig
from crossbar.physics.devices import PulsedDevice
from crossbar.presets import ALGORITHMS, DEVICES, build_config, tile_config
from crossbar.presets import device as preset_device
from crossbar.cli import int_type, output_dir_error, seed_type

from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    remove_stale_temp_files,
    restore_training,
    write_text_atomic,
)
from .data import DataError, load_mnist
from .layers import AnalogLinear, Linear, LogSoftmax, Module, Sequential, Sigmoid
from .optim import SGD, AnalogSGD, ConstantLR, LRScheduler, MultiStepLR, Optimizer, StepLR
from .trainer import CHECKPOINT, CURVES, METRICS, RunError, Trainer, writing

SIZES = (784, 256, 128, 10)
#: key paths under the run seed (distinct from the tile keys, which derive from the layer seeds)
LAYER_PATH, SHUFFLE_PATH = 0x4C415952, 0x53485546  # "LAYR", "SHUF"
CONFIG = "config.json"
#: every file a run writes in --out
OUTPUTS = (CHECKPOINT, METRICS, CONFIG, CURVES)
#: meta entries of a checkpoint written by this job (a library save_training lacks them)
RUN_META = ("run", "epochs", "epoch", "step", "seconds", "history")
#: options that define a run: on --resume they are taken from the checkpoint and may not be changed
RUN_OPTIONS = ("device", "algorithm", "lr", "schedule", "batch_size", "seed", "digital", "digital_bias",
               "train_samples", "test_samples", "data_dir")


# ---- model, data order, one training step ---------------------------------------------------------------


def layer_seeds(seed: int, n: int = 3) -> list[int]:
    """Seeds of the ``n`` layers of a run: the 64-bit ``seed_key(seed, LAYER_PATH, i)``."""
    return [int(k[0]) | int(k[1]) << 32 for k in (rng.seed_key(seed, LAYER_PATH, i) for i in range(n))]


def build_mlp(*, digital: bool = False, device: str = "constant-step", seed: int = 0, backend: str = "numpy",
              digital_bias: bool = False, sizes: tuple[int, ...] = SIZES, algorithm: str = "sgd") -> Sequential:
    """The sigmoid MLP: Linear/AnalogLinear layers of ``sizes`` with Sigmoid between them and LogSoftmax last.

    Args:
        digital: floating-point ``Linear`` layers instead of analog tiles (the same initial weights).
        device: a :data:`crossbar.presets.DEVICES` name (its :func:`~crossbar.presets.tile_config`).
        seed: run seed (layer seeds from :func:`layer_seeds`).
        backend: 'numpy' or 'cupy'.
        digital_bias: analog layers keep their biases digital instead of as an extra tile column.
        algorithm: training algorithm of the analog layers (:data:`crossbar.presets.ALGORITHMS`: ``sgd``,
            ``tiki-taka``, ``ttv2``, ``c-ttv2``, ``agad``, ``mp``), built around the device's IO and update.
    """
    seeds = layer_seeds(seed, len(sizes) - 1)
    config = None if digital else analog_config(device, algorithm)
    layers: list[Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if digital:
            layers.append(Linear(n_in, n_out, seed=seeds[i], backend=backend))
        else:
            layers.append(AnalogLinear(n_in, n_out, config=config, seed=seeds[i], digital_bias=digital_bias,
                                       backend=backend))
        layers.append(Sigmoid() if i < len(sizes) - 2 else LogSoftmax())
    return Sequential(*layers)


def analog_config(device: str, algorithm: str = "sgd") -> TileConfig:
    """The tile config of the analog layers: the ``device`` preset trained with ``algorithm``.

    Raises:
        ValueError: ``algorithm`` is a compound (not ``sgd``) and ``device`` is not pulsed, e.g. ``ideal``.
    """
    base = tile_config(device)
    if algorithm == "sgd":
        return base
    if not isinstance(base.device, PulsedDevice):
        raise ValueError(f"algorithm {algorithm!r} needs a pulsed device; {device!r} is not one (use 'sgd' with it)")
    return build_config(algorithm, base.device, io=base.forward, update=base.update)


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the ``n`` training samples in epoch ``epoch`` (0-based): a permutation, int64 ``[n]``.

    Sort keys are Philox words named by (element // 4, epoch, 0, D2D) under ``seed_key(seed, SHUFFLE_PATH)``
    (word element % 4); ties (rare for 32-bit keys) keep index order.
    """
    key = rng.seed_key(seed, SHUFFLE_PATH)
    words = rng.philox4x32(key, np.arange((n + 3) // 4, dtype=np.uint32), epoch, 0, int(rng.Stream.D2D))
    return np.argsort(words.T.reshape(-1)[:n], kind="stable")


# ---- options ------------------------------------------------------------------------------------------------


def make_scheduler(spec: str, optimizer: Optimizer) -> LRScheduler:
    """The scheduler named by a ``--schedule`` string (see the module docstring)."""
    kind, args = parse_schedule(spec)
    if kind == "constant":
        return ConstantLR(optimizer)
    if kind == "step":
        return StepLR(optimizer, args[0], args[1])
    return MultiStepLR(optimizer, args[0], args[1])


def parse_schedule(spec: str) -> tuple[str, tuple]:
    """Parse ``constant``, ``paper``, ``step:N:G`` or ``multistep:M1,M2,...:G``; ValueError if malformed."""
    spec = spec.strip().lower()
    if spec == "constant":
        return "constant", ()
    if spec == "paper":
        return "multistep", ([10, 20], 0.5)
    parts = spec.split(":")
    try:
        if parts[0] == "step" and len(parts) == 3:
            n, g = int(parts[1]), float(parts[2])
            if n >= 1 and 0 < g < math.inf:
                return "step", (n, g)
        if parts[0] == "multistep" and len(parts) == 3:
            ms, g = [int(m) for m in parts[1].split(",")], float(parts[2])
            if ms == sorted(set(ms)) and ms[0] >= 1 and 0 < g < math.inf:
                return "multistep", (ms, g)
    except ValueError:
        pass
    raise ValueError(f"invalid schedule {spec!r}: use 'constant', 'paper', 'step:N:GAMMA' (e.g. step:10:0.5) "
                     f"or 'multistep:E1,E2,...:GAMMA' (e.g. multistep:10,20:0.5), with N, Ei >= 1 increasing "
                     f"and GAMMA > 0")


def _checked_by(check):
    """An argparse type that keeps the text once ``check(text)`` accepts it; its ValueError is the message."""
    def parse(text: str) -> str:
        try:
            check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return parse


_schedule_type = _checked_by(parse_schedule)
_device_name = _checked_by(preset_device)


_positive_int = int_type(1, None, "a positive integer")
_non_negative_int = int_type(0, None, "an integer >= 0")


def _lr(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"learning rate must be a finite number > 0, got {text}")
    return v


def make_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The command-line parser (with ``suppress_defaults``: one that reports only the options given)."""
    p = argparse.ArgumentParser(
        prog="python -m models.mnist",
        description="Train the 784-256-128-10 sigmoid MLP on MNIST with analog crossbar tiles (or digitally).",
        epilog="Example: python -m models.mnist --epochs 1 --train-samples 6000 --out runs/quick",
        argument_default=argparse.SUPPRESS if suppress_defaults else None)

    def add(*names, default=None, **kw):
        if not suppress_defaults:
            kw["default"] = default
        p.add_argument(*names, **kw)

    add("--device", default="constant-step", type=_device_name, metavar="NAME",
        help="device preset for the analog tiles (default: constant-step); one of: " + ", ".join(sorted(DEVICES)))
    add("--algorithm", default="sgd", choices=ALGORITHMS,
        help="training algorithm of the analog layers (default: sgd): " + ", ".join(ALGORITHMS))
    add("--lr", default=0.05, type=_lr, help="learning rate (default: 0.05)")
    add("--schedule", default="step:10:0.5", type=_schedule_type,
        help="lr schedule: step:N:GAMMA, multistep:E1,E2:GAMMA, paper (= multistep:10,20:0.5), constant "
             "(default: step:10:0.5)")
    add("--epochs", default=30, type=_positive_int, help="number of epochs (default: 30)")
    add("--batch-size", default=64, type=_positive_int, help="mini-batch size (default: 64)")
    add("--seed", default=0, type=seed_type, help="run seed: initial weights, device variations, noise, data order")
    add("--backend", default="auto", choices=("auto",) + BACKENDS,
        help="array backend (default: auto = cupy when CuPy and a CUDA GPU are usable, else numpy)")
    add("--digital", default=False, action="store_true", help="floating-point Linear layers (baseline)")
    add("--digital-bias", default=False, action="store_true",
        help="analog layers keep their bias digital, as aihwkit 1.1 does by default (default here: an extra "
             "analog column, the set-up of Gokmen & Vlasov 2016)")
    add("--out", default="runs/mnist", help="output directory (default: runs/mnist)")
    add("--resume", default=False, action="store_true",
        help="continue the run in --out from its checkpoint (run options are taken from it)")
    add("--overwrite", default=False, action="store_true", help="start afresh even if --out holds a run")
    add("--train-samples", default=None, type=_positive_int, help="use the first N training images only")
    add("--test-samples", default=None, type=_positive_int, help="use the first N test images only")
    add("--data-dir", default=None, help="directory of an IDX data set in MNIST's layout (default: shipped MNIST)")
    add("--checkpoint-every", default=0, type=_non_negative_int,
        help="also checkpoint every N steps within an epoch (default: 0, only at epoch ends)")
    add("--stop-after", default=0, type=_non_negative_int,
        help="checkpoint and stop after N training steps of this invocation (0: run all epochs); continue "
             "later with --resume")
    add("--baseline", default=False, action="store_true",
        help="first train the digital network with the same seed, initial weights, data order, lr, schedule and "
             "epochs (in OUT/digital, resumed or reused if there) and show its accuracy beside the analog one")
    add("--no-plot", default=False, action="store_true", help="do not write curves.png")
    add("--no-progress", default=False, action="store_true", help="no progress bar")
    add("--no-graph", default=False, action="store_true",
        help="cupy backend: run the training step eagerly instead of replaying it from a CUDA graph")
    return p


# ---- output helpers ---------------------------------------------------------------------------------


# ---- the run ---------------------------------------------------------------------------------------------

def digital_baseline(args: argparse.Namespace) -> list[dict]:
    """Train, resume or reuse the digital twin of the run ``args`` in ``OUT/digital``; returns its history."""
    sub = Path(args.out) / "digital"
    argv = ["--digital", "--out", str(sub), "--lr", repr(args.lr), "--schedule", args.schedule, "--epochs",
            str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--backend",
            args.backend, "--no-plot"]
    for flag, value in (("--train-samples", args.train_samples), ("--test-samples", args.test_samples),
                        ("--data-dir", args.data_dir)):
        argv += [flag, str(value)] if value is not None else []
    argv += ["--no-progress"] if args.no_progress else []
    argv += ["--overwrite"] if args.overwrite else ["--resume"] if (sub / CHECKPOINT).exists() else []
    print(f"digital baseline in {sub}:", flush=True)
    return run(argv)



def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """Stop with ``<prog>: error: <message>`` on stderr and exit status 2: ``parser.error`` without the usage, for
    failures while running."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def _resolve(argv: list[str] | None) -> tuple[argparse.Namespace, argparse.ArgumentParser, tuple | None]:
    """Parse and check the options before anything is loaded or written; with --resume, take the run options
    from the checkpoint. Returns ``(args, parser, (arrays, meta) of the checkpoint or None)``."""
    parser = make_parser()
    args = parser.parse_args(argv)
    given = vars(make_parser(suppress_defaults=True).parse_args(argv))
    out = Path(args.out)
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other")
    problem = output_dir_error(args.out)
    if problem:
        parser.error(f"--out {args.out}: {problem}")
    existing = [name for name in OUTPUTS if (out / name).exists()]
    for name in existing:
        if not (out / name).is_file():
            parser.error(f"{out / name} is not a regular file: a run cannot write it")
    resume = None
    if args.resume:
        resume = _read_run_checkpoint(parser, out / CHECKPOINT)
        saved = resume[1]["run"]
        for name in RUN_OPTIONS:
            if name in given and given[name] != saved[name]:
                parser.error(f"--resume: --{name.replace('_', '-')} {given[name]} differs from the checkpoint's "
                             f"{saved[name]} (run options cannot change; --epochs, --backend can)")
            setattr(args, name, saved[name])
        if "epochs" not in given:
            args.epochs = resume[1]["epochs"]
    elif existing and not args.overwrite:
        parser.error(f"{out} already holds a run ({', '.join(existing)}); use --resume to continue it, --overwrite "
                     f"to start afresh, or another --out")
    if args.digital:
        for name in ("device", "algorithm", "digital_bias", "baseline"):
            if name in given:
                parser.error(f"--{name.replace('_', '-')} sets up analog layers; --digital has none")
    else:
        try:
            analog_config(args.device, args.algorithm)
        except ValueError as exc:
            parser.error(f"--algorithm {args.algorithm} --device {args.device}: {exc}")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir}: not a directory")
    return args, parser, resume


def _read_run_checkpoint(parser: argparse.ArgumentParser, ckpt: Path) -> tuple[dict, dict]:
    """``(arrays, meta)`` of the checkpoint that --resume continues; a usage error if it is missing, damaged or
    was not written by this job."""
    if not ckpt.is_file():
        parser.error(f"--resume: no checkpoint {ckpt} to resume from")
    try:
        arrays, meta = load_checkpoint(ckpt)
    except CheckpointError as exc:
        parser.error(f"--resume: {exc}")
    saved = meta.get("run")
    missing = [k for k in RUN_META if k not in meta]
    missing += [f"run.{k}" for k in RUN_OPTIONS if isinstance(saved, dict) and k not in saved]
    missing += ["extra/loss_sum"] * ("extra/loss_sum" not in arrays)
    if missing or not isinstance(saved, dict):
        parser.error(f"--resume: {ckpt} was not written by {parser.prog}: it lacks the run metadata "
                     f"({', '.join(missing) or 'run'})")
    return arrays, meta


def run(argv: list[str] | None = None) -> list[dict]:
    """Parse ``argv``, train, and return the per-epoch metrics (see the module docstring).

    Every user error (bad options, data, checkpoints, an unwritable --out, a full disk, a diverging run) ends
    the process with a one-line message and exit status 2 (``SystemExit``), before anything is written where
    possible, else keeping the last good checkpoint.
    """
    args, parser, resume = _resolve(argv)
    args.backend, why = resolve_backend(args.backend)
    baseline = digital_baseline(args) if args.baseline else None
    try:
        xp = get_xp(args.backend)
    except RuntimeError as exc:
        parser.error(str(exc))
    model = build_mlp(digital=args.digital, device=args.device, seed=args.seed, backend=args.backend,
                      digital_bias=args.digital_bias, algorithm=args.algorithm)
    optimizer = SGD(model.parameters(), args.lr) if args.digital else AnalogSGD(model, args.lr)
    scheduler = make_scheduler(args.schedule, optimizer)
    out = Path(args.out)
    data = _load_data(args, parser, xp)
    trainer = Trainer(model, optimizer, scheduler, data, lambda epoch: xp.asarray(
                          epoch_order(args.seed, epoch, len(data[0]))),
                      batch=args.batch_size, epochs=args.epochs, out=out,
                      meta={"run": {name: getattr(args, name) for name in RUN_OPTIONS}},
                      graph=args.backend == "cupy" and not args.no_graph, checkpoint_every=args.checkpoint_every,
                      stop_after=args.stop_after, progress=not args.no_progress and sys.stdout.isatty(),
                      plot=not args.no_plot, baseline=baseline, hint=f"--lr {args.lr}")
    if resume is not None:
        arrays, meta = resume
        try:
            extra = restore_training(arrays, meta, model, optimizer, scheduler, source=str(out / CHECKPOINT))
        except CheckpointError as exc:
            parser.error(f"--resume: {exc}")
        trainer.resume(meta, float(extra["loss_sum"]))
    try:
        _start_files(args, out)  # everything is checked: from here on the run writes to --out
        trainer.write_metrics()
        print(f"{'digital' if args.digital else args.device} MLP {'-'.join(map(str, SIZES))}, {len(data[0])} "
              f"training and {len(data[2])} test images, batch {args.batch_size}, lr {args.lr} ({args.schedule}), "
              f"seed {args.seed}, backend {args.backend}" + (f" ({why})" if why else "")
              + (f"; resuming at epoch {trainer.epoch + 1} step {trainer.step0}" if resume else ""), flush=True)
        history = trainer.fit()
    except RunError as exc:
        _fail(parser, str(exc))
    if history and trainer.epoch == args.epochs:
        versus = f"; digital baseline {100 * baseline[-1]['test_accuracy']:.2f}%" if baseline else ""
        print(f"final test accuracy {100 * history[-1]['test_accuracy']:.2f}% after {history[-1]['epoch']} epochs "
              f"({sum(h['seconds'] for h in history):.0f} s){versus}; output in {out}")
    return history


def _load_data(args: argparse.Namespace, parser: argparse.ArgumentParser, xp) -> tuple:
    """The training and test images and labels of the run, cut to --train/--test-samples, on the backend."""
    try:
        x_train, y_train, x_test, y_test = load_mnist(args.data_dir)
    except DataError as exc:
        parser.error(str(exc))
    for name, n, total in (("--train-samples", args.train_samples, len(x_train)),
                           ("--test-samples", args.test_samples, len(x_test))):
        if n is not None and n > total:
            parser.error(f"{name} {n} exceeds the {total} images of the data set")
    data = (x_train[:args.train_samples], y_train[:args.train_samples], x_test[:args.test_samples],
            y_test[:args.test_samples])
    return tuple(xp.asarray(a) for a in data) if xp is not np else data


def _start_files(args: argparse.Namespace, out: Path) -> None:
    """Create --out, remove stale temporary files (and, with --overwrite, the old run's files), write config.json."""
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:
            remove_stale_temp_files(out / name)  # left by a write that was killed
            if args.overwrite:
                (out / name).unlink(missing_ok=True)  # start afresh: no file of the old run survives
    with writing(out / CONFIG):
        write_text_atomic(out / CONFIG, json.dumps({**vars(args), "sizes": SIZES}, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    try:
        run(argv)
    except KeyboardInterrupt:
        print("\ninterrupted; continue from the last checkpoint with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
