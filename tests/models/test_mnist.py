"""The main job (models.mnist): a smoke run on the shipped MNIST, exact resume, and the command line."""

import json

import numpy as np
import pytest

from models import mnist
from models.checkpoint import load_checkpoint
from models.data import load_mnist
from models.mnist import build_mlp, epoch_order, layer_seeds, parse_schedule
from models.trainer import Progress, evaluate, plot_curves, train_step
from models.optim import AnalogSGD


@pytest.fixture(scope="module")
def data():
    return load_mnist()


def test_smoke_run_lowers_the_loss_and_beats_chance(data):
    # 1,000 training images, one epoch of the analog 784-256-128-10 sigmoid MLP (ConstantStep, default IO),
    # batch 1; held-out: 500 test images. Chance is 10% accuracy and a loss of ln 10 = 2.30.
    x_train, y_train, x_test, y_test = data
    model = build_mlp(seed=0)
    opt = AnalogSGD(model, 0.2)
    acc0, loss0 = evaluate(model, x_test[:500], y_test[:500])
    order = epoch_order(0, 0, 1000)
    losses = np.array([float(train_step(model, opt, x_train[i:i + 1], y_train[i:i + 1])) for i in order])
    acc1, loss1 = evaluate(model, x_test[:500], y_test[:500])
    assert losses[-200:].mean() < 0.8 * losses[:200].mean()
    assert loss1 < 0.7 * loss0 and loss0 > 2.2
    assert acc1 > 0.3 > acc0  # measured: about 0.6


def test_data_order_and_seeds():
    a = epoch_order(0, 0, 1000)
    assert np.array_equal(np.sort(a), np.arange(1000))
    assert np.array_equal(a, epoch_order(0, 0, 1000))
    assert not np.array_equal(a, epoch_order(0, 1, 1000)) and not np.array_equal(a, epoch_order(1, 0, 1000))
    assert len(set(layer_seeds(0))) == 3 and layer_seeds(0) != layer_seeds(1)
    # digital and analog runs of one seed start from the same weights
    digital, analog = build_mlp(digital=True, seed=3), build_mlp(seed=3, device="ideal")
    w, b = analog[2].get_weights()
    assert np.array_equal(w, digital[2].weight.data) and np.array_equal(b, digital[2].bias.data)


def test_schedule_strings():
    assert parse_schedule("step:10:0.5") == ("step", (10, 0.5))
    assert parse_schedule("paper") == ("multistep", ([10, 20], 0.5))
    assert parse_schedule("multistep:5,8:0.1") == ("multistep", ([5, 8], 0.1))
    assert parse_schedule("constant") == ("constant", ())
    for bad in ("step:0:0.5", "step:10", "multistep:8,5:0.5", "step:10:-1", "cosine", "step:a:b"):
        with pytest.raises(ValueError, match="invalid schedule"):
            parse_schedule(bad)


TINY = ["--train-samples", "96", "--test-samples", "50", "--batch-size", "16", "--lr", "0.1", "--no-plot",
        "--no-progress"]


def test_cli_tiny_run_writes_metrics_checkpoint_and_config(tmp_path, capsys):
    out = tmp_path / "run"
    history = mnist.run(TINY + ["--epochs", "2", "--out", str(out)])
    assert [h["epoch"] for h in history] == [1, 2]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == history
    assert set(lines[0]) >= {"epoch", "lr", "train_loss", "test_loss", "test_accuracy", "seconds"}
    _, meta = load_checkpoint(out / "checkpoint.npz")
    assert meta["epoch"] == 2 and meta["step"] == 0 and meta["run"]["lr"] == 0.1
    assert meta["scheduler"]["epoch"] == 2
    assert json.loads((out / "config.json").read_text())["batch_size"] == 16
    assert "test accuracy" in capsys.readouterr().out


def test_cli_stop_and_resume_equals_an_uninterrupted_run(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    mnist.run(TINY + ["--epochs", "2", "--schedule", "step:1:0.5", "--out", str(whole)])
    # stop mid-epoch (step 4 of 6), then at the end of epoch 1 plus 1 step, then finish
    mnist.run(TINY + ["--epochs", "2", "--schedule", "step:1:0.5", "--out", str(parts), "--stop-after", "4"])
    _, meta = load_checkpoint(parts / "checkpoint.npz")
    assert (meta["epoch"], meta["step"]) == (0, 4)
    mnist.run(["--resume", "--out", str(parts), "--stop-after", "3", "--no-progress"])
    _, meta = load_checkpoint(parts / "checkpoint.npz")
    assert (meta["epoch"], meta["step"]) == (1, 1)
    history = mnist.run(["--resume", "--out", str(parts), "--no-progress", "--no-plot"])
    a, meta_a = load_checkpoint(whole / "checkpoint.npz")
    b, meta_b = load_checkpoint(parts / "checkpoint.npz")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    strip = lambda hs: [{k: v for k, v in h.items() if "seconds" not in k} for h in hs]
    assert strip(meta_a["history"]) == strip(meta_b["history"]) == strip(history)
    assert [json.loads(line)["epoch"] for line in (parts / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.parametrize("argv,message", [
    (["--lr", "-1"], "learning rate must be a finite number > 0"),
    (["--lr", "fast"], "expected a number"),
    (["--schedule", "cosine"], "invalid schedule 'cosine'"),
    (["--device", "unobtainium"], "unknown device 'unobtainium'; choose one of:"),
    (["--batch-size", "0"], "expected a positive integer, got 0"),
    (["--epochs", "two"], "expected a positive integer, got 'two'"),
    (["--seed", "-3"], r"seed must be in \[0, 2\*\*64\)"),
    (["--backend", "tpu"], "invalid choice: 'tpu'"),
    (["--train-samples", "70000"], "--train-samples 70000 exceeds the 60000 images"),
    (["--resume"], "no checkpoint"),
    (["--resume", "--overwrite"], "exclude each other"),
    (["--data-dir", "/nonexistent/dir"], "--data-dir /nonexistent/dir: not a directory"),
])
def test_cli_bad_options_give_a_clear_error(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        mnist.run(argv + ["--out", str(tmp_path / "run")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m models.mnist" in err
    assert __import__("re").search(message, err), err


def test_cli_protects_an_existing_run(tmp_path, capsys):
    out = tmp_path / "run"
    mnist.run(TINY + ["--epochs", "1", "--out", str(out)])
    ckpt = (out / "checkpoint.npz").read_bytes()
    with pytest.raises(SystemExit):
        mnist.run(TINY + ["--epochs", "1", "--out", str(out)])
    assert "already holds a run" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # run options cannot change on resume
        mnist.run(["--resume", "--lr", "0.2", "--out", str(out)])
    assert "--lr 0.2 differs from the checkpoint's 0.1" in capsys.readouterr().err
    (out / "checkpoint.npz").write_bytes(ckpt[:1000])  # truncated: clear error, file left as it is
    with pytest.raises(SystemExit):
        mnist.run(["--resume", "--epochs", "2", "--out", str(out)])
    assert "corrupt or truncated" in capsys.readouterr().err
    assert (out / "checkpoint.npz").read_bytes() == ckpt[:1000]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_progress_counts_images_and_is_silent_when_disabled(capsys):
    bar = Progress(images=100, batch=16, initial_steps=2, desc="epoch 1/1", enabled=False)
    assert bar.n == 32
    bar.update(3, loss=1.5)
    bar.update(4)  # 7 more steps would pass the 100 images: the bar stops at the total
    assert bar.n == 100
    bar.close()
    assert capsys.readouterr().err == ""


def test_progress_is_quiet_when_stdout_is_not_a_terminal(tmp_path, capsys):
    # pytest captures stdout (not a terminal): no bar on stderr without --no-progress
    mnist.run(["--epochs", "1", "--out", str(tmp_path / "run"), *[a for a in TINY if a != "--no-progress"]])
    assert "img/s" not in capsys.readouterr().err


def test_auto_backend_falls_back_to_numpy_and_says_why():
    from crossbar.backend import cupy_available, resolve_backend
    name, why = resolve_backend("auto")
    assert name == ("cupy" if cupy_available() else "numpy") and why.startswith("auto: ")
    assert resolve_backend("numpy") == ("numpy", "") and resolve_backend("cupy") == ("cupy", "")


def test_baseline_trains_the_digital_twin_first_and_reuses_it(tmp_path, capsys):
    out = tmp_path / "run"
    history = mnist.run(["--epochs", "1", "--out", str(out), "--baseline", *TINY])
    printed = capsys.readouterr().out
    digital = [json.loads(line) for line in (out / "digital" / "metrics.jsonl").read_text().splitlines()]
    assert len(digital) == 1 and len(history) == 1
    assert printed.index("digital MLP") < printed.index("constant-step MLP")
    assert f"digital baseline {100 * digital[0]['test_accuracy']:.2f}%" in printed.splitlines()[-1]
    # a second epoch resumes both runs: the digital one continues from its own checkpoint
    mnist.run(["--resume", "--epochs", "2", "--out", str(out), "--baseline", "--no-progress"])
    assert len((out / "digital" / "metrics.jsonl").read_text().splitlines()) == 2
    with pytest.raises(SystemExit):
        mnist.run(["--digital", "--baseline", "--out", str(tmp_path / "d"), *TINY])
    assert "--baseline sets up analog layers" in capsys.readouterr().err


def test_plot_curves(tmp_path):
    pytest.importorskip("matplotlib")
    history = [{"epoch": e, "train_loss": 1 / e, "test_loss": 1.1 / e, "test_accuracy": 0.9} for e in (1, 2)]
    assert plot_curves(history, tmp_path / "curves.png", points=[[0.5, 1.5], [1.0, 1.0], [1.5, 0.6]],
                             baseline=[{"epoch": 1, "test_accuracy": 0.95}])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_curves_without_matplotlib(tmp_path, monkeypatch):
    import models.trainer as trainer
    monkeypatch.setattr(trainer, "Figure", None)
    assert not plot_curves([{"epoch": 1, "train_loss": 1.0, "test_loss": 1.0, "test_accuracy": 0.5}],
                           tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()


def test_running_loss_points_split_each_epoch_evenly(tmp_path):
    # 96 images at batch 16: 6 steps per epoch, so one point per step (at most ten per epoch); the points of an
    # epoch average to its training loss
    out = tmp_path / "run"
    history = mnist.run(["--epochs", "2", "--out", str(out), *TINY])
    points = load_checkpoint(out / "checkpoint.npz")[1]["points"]
    assert [p[0] for p in points] == [round(e + k / 6, 4) for e in (0, 1) for k in range(1, 7)]
    for e in (0, 1):
        assert np.mean([p[1] for p in points[6 * e:6 * e + 6]]) == pytest.approx(history[e]["train_loss"], rel=1e-12)
