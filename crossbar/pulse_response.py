"""Pulse response of a device model: N up pulses then N down pulses, repeated, on a few devices.

Run ``python -m crossbar.pulse_response --device soft-bounds`` (``--help`` for the options). It writes
``<out>/pulse_response_<device>.csv`` (one row per pulse: pulse number, direction, then the exact weight of
every traced device) and, with matplotlib installed (``pip install "crossbar-sim[plot]"``), a PNG with the
traces and the mean up and down step size versus the weight.

The command line, the CSV and the plot; the physics (:func:`pulse_response`, :func:`step_statistics`, re-exported
here) is in :mod:`crossbar.tiles.characterize`.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from . import presets
from .tiles.characterize import pulse_directions, pulse_response, step_statistics  # noqa: F401 (re-exported)
from .cli import Figure, int_type, output_dir_error, seed_type
from .physics.devices import PulsedDevice


def _plot(path, name, directions, trace, stats):
    fig = Figure(figsize=(11, 4))
    ax0, ax1 = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[2, 1]))
    ax0.plot(trace, lw=0.8)
    ax0.set(xlabel="pulse number", ylabel="weight", title=f"{name}: pulse response of {trace.shape[1]} devices")
    for key, color in (("up", "tab:red"), ("down", "tab:blue")):
        mean, std = np.abs(stats[f"{key}_mean"]), stats[f"{key}_std"]
        ax1.plot(stats["nodes"], mean, color=color, label=f"|{key} step|")
        ax1.fill_between(stats["nodes"], mean - std, mean + std, color=color, alpha=0.2)
    ax1.set(xlabel="weight", ylabel="step size (mean +- std)", title="step size vs weight")
    ax1.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


_positive_int = int_type(1, None, "a positive integer")

#: the largest trace (pulses + 1) x devices this job computes (4e8 bytes of float32)
MAX_TRACE_VALUES = 10**8


def main(argv=None) -> int:
    """The command line (``--help``). Bad options: usage and a one-line error, exit status 2, nothing written."""
    parser = argparse.ArgumentParser(prog="python -m crossbar.pulse_response", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="soft-bounds", help=f"one of: {', '.join(presets.DEVICES)}")
    parser.add_argument("--n-steps", type=_positive_int, default=None,
                        help="pulses per direction (default: (w_max - w_min) / granularity, at most 5000)")
    parser.add_argument("--n-loops", type=_positive_int, default=2, help="up/down cycles (default 2)")
    parser.add_argument("--n-devices", type=_positive_int, default=5, help="devices traced (default 5)")
    parser.add_argument("--seed", type=seed_type, default=0, help="tile seed, an integer in [0, 2**64) (default 0)")
    parser.add_argument("--noise-free", action="store_true", help="turn off cycle-to-cycle and write noise")
    parser.add_argument("--out", default="runs", help="output folder (default: runs)")
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")
    args = parser.parse_args(argv)
    try:
        dev = presets.device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    if not isinstance(dev, PulsedDevice):
        parser.error(f"device {args.device!r} is not pulsed: it has no pulse response")
    if args.noise_free:
        dev = dev.replace(dw_min_std=0.0, write_noise_std=0.0)
    n_steps = args.n_steps or min(max(int(round((dev.w_max - dev.w_min) / dev.granularity())), 1), 5000)
    size = (2 * n_steps * args.n_loops + 1) * args.n_devices
    if size > MAX_TRACE_VALUES:
        parser.error(f"--n-steps {n_steps} x --n-loops {args.n_loops} x --n-devices {args.n_devices}: a trace of "
                     f"{size:.3g} weights, more than the {MAX_TRACE_VALUES:.0e} this job computes")
    problem = output_dir_error(args.out)
    if problem:
        parser.error(f"--out {args.out}: {problem}")
    out = Path(args.out)
    directions = pulse_directions(n_steps, args.n_loops)
    trace = pulse_response(dev, directions, args.n_devices, args.seed)
    stats = step_statistics(trace, directions, n_nodes=min(n_steps, 50))
    csv_path = out / f"pulse_response_{args.device}.csv"
    try:
        out.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["pulse", "direction"] + [f"w{i}" for i in range(trace.shape[1])])
            writer.writerow([0, 0] + [f"{v:.7g}" for v in trace[0]])
            for k, direction in enumerate(directions):
                writer.writerow([k + 1, int(direction)] + [f"{v:.7g}" for v in trace[k + 1]])
    except OSError as exc:
        parser.exit(2, f"{parser.prog}: error: cannot write {csv_path}: {exc.strerror or exc}\n")
    print(f"{args.device}: {len(directions)} pulses on {trace.shape[1]} devices; weight range "
          f"[{trace.min():.4g}, {trace.max():.4g}]; mean |step| up {np.nanmean(np.abs(stats['up_mean'])):.3g}, "
          f"down {np.nanmean(np.abs(stats['down_mean'])):.3g}")
    print(f"wrote {csv_path}")
    if not args.no_plot and Figure is None:
        print("matplotlib is not installed: no plot (pip install 'crossbar-sim[plot]')")
    elif not args.no_plot:
        png = out / f"pulse_response_{args.device}.png"
        try:
            _plot(png, args.device, directions, trace, stats)
            print(f"wrote {png}")
        except OSError as exc:
            parser.exit(2, f"{parser.prog}: error: cannot write {png}: {exc.strerror or exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
