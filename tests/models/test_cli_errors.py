"""User errors of the command-line jobs and of the library: one clear line naming the value or path, exit
status 2, no traceback, nothing overwritten.

``python -m models.mnist`` and ``python -m crossbar.pulse_response`` run in-process on tiny data sets written
here as IDX files; a full disk and unwritable directories are simulated with monkeypatching.
"""

import errno
import gzip
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest

import models.checkpoint as ckpt_module
from crossbar import AnalogTile, TileConfig, pulse_response
from models import mnist
from models.checkpoint import load_checkpoint, save_training

F32 = np.float32
PROG = {mnist.main: "python -m models.mnist", pulse_response.main: "python -m crossbar.pulse_response"}


# ---- helpers -------------------------------------------------------------------------------------------------


def idx_gz(path: Path, values: np.ndarray) -> Path:
    """Write ``values`` as a gzip-compressed IDX file (uint8 0x08 or int8 0x09, big-endian header)."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">f4"): 0x0D}[values.dtype]
    header = bytes([0, 0, code, values.ndim]) + np.array(values.shape, ">u4").tobytes()
    path.write_bytes(gzip.compress(header + values.tobytes()))
    return path


def data_set(root: Path, *, train_labels=None, image_shape=(28, 28), n_train=32, n_test=8) -> Path:
    """A small MNIST-layout data set in ``root``: random images, uint8 labels ``i % 10`` unless given."""
    root.mkdir(parents=True, exist_ok=True)
    rs = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        idx_gz(root / f"{split}-images-idx3-ubyte.gz", rs.integers(0, 256, (n, *image_shape), dtype=np.uint8))
        labels = train_labels if split == "train" and train_labels is not None else np.arange(n) % 10
        idx_gz(root / f"{split}-labels-idx1-ubyte.gz", labels if labels.dtype != np.int64 else labels.astype(np.uint8))
    return root


@pytest.fixture
def data(tmp_path):
    return data_set(tmp_path / "data")


def tiny(data_dir: Path, out: Path, *more: str) -> list[str]:
    """Options of a fast run on the small data set: digital, 2 steps of 16 per epoch, 1 epoch."""
    return ["--data-dir", str(data_dir), "--out", str(out), "--digital", "--batch-size", "16", "--epochs", "1",
            "--no-progress", "--no-plot", *more]


def snapshot(root: Path, mtimes: bool = True) -> dict:
    """Every file under ``root``: relative path -> (bytes, mtime in ns), or bytes only."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) if mtimes else p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def fails(main, argv, capsys) -> str:
    """Run a job's ``main(argv)``; assert exit status 2 and no traceback; return the error line."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Error:" not in err, err  # no exception class printed
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"{PROG[main]}: error: "), err
    return line


@pytest.fixture
def no_data_loads(monkeypatch):
    """Fail the test if the job loads data (option errors must be found before)."""
    def refuse(*args, **kwargs):
        raise AssertionError("data loaded before the options were checked")
    monkeypatch.setattr(mnist, "load_mnist", refuse)


# ---- option errors: found before any data is loaded or file written ----------------------------------------


@pytest.mark.parametrize("algorithm", ["tiki-taka", "ttv2", "c-ttv2", "agad", "mp"])
def test_compound_algorithm_with_the_ideal_device(tmp_path, capsys, no_data_loads, algorithm):
    line = fails(mnist.main, ["--device", "ideal", "--algorithm", algorithm, "--out", str(tmp_path / "run")], capsys)
    assert f"--algorithm {algorithm} --device ideal" in line and "needs a pulsed device" in line
    assert not (tmp_path / "run").exists()


def test_analog_options_with_digital(tmp_path, capsys, no_data_loads):
    line = fails(mnist.main, ["--digital", "--algorithm", "ttv2", "--out", str(tmp_path / "run")], capsys)
    assert "--algorithm sets up analog layers; --digital has none" in line


@pytest.mark.parametrize("argv,message", [
    (["--epochs", "0"], "expected a positive integer, got 0"),
    (["--batch-size", "-1"], "expected a positive integer, got -1"),
    (["--train-samples", "0"], "expected a positive integer, got 0"),
    (["--checkpoint-every", "-1"], "expected an integer >= 0, got -1"),
    (["--lr", "0"], "finite number > 0, got 0"),
    (["--lr", "nan"], "finite number > 0, got nan"),
    (["--lr", "1e999"], "finite number > 0, got 1e999"),
    (["--seed", str(2**64)], f"seed must be in [0, 2**64), got {2**64}"),
    (["--schedule", "step:0:0.5"], "invalid schedule 'step:0:0.5'"),
    (["--data-dir", "/nonexistent/mnist"], "--data-dir /nonexistent/mnist: not a directory"),
    (["--data-dir", __file__], f"--data-dir {__file__}: not a directory"),
    (["--device", "pcm", "--algorithm", "ttv2"], "needs a pulsed device; 'pcm' is not one"),
    (["--device", "nosuch"], "unknown device 'nosuch'; choose one of: ideal, constant-step"),
])
def test_bad_numbers_and_paths(tmp_path, capsys, no_data_loads, argv, message):
    assert message in fails(mnist.main, argv + ["--out", str(tmp_path / "run")], capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("main", [mnist.main, pulse_response.main], ids=["mnist", "pulse_response"])
def test_empty_out(tmp_path, capsys, monkeypatch, no_data_loads, main):
    monkeypatch.chdir(tmp_path)  # an empty path would mean the working directory
    assert "--out : empty path (name a directory)" in fails(main, ["--out", ""], capsys)
    assert list(tmp_path.iterdir()) == []


def test_out_is_a_file(tmp_path, capsys, no_data_loads):
    out = tmp_path / "taken"
    out.write_text("not a directory")
    before = snapshot(tmp_path)
    assert f"--out {out}: {out} exists and is not a directory" in fails(mnist.main, ["--out", str(out)], capsys)
    assert f"{out} is not a directory" in fails(mnist.main, ["--out", str(out / "run")], capsys)
    assert snapshot(tmp_path) == before


def deny_writes_to(monkeypatch, denied: Path):
    """Make ``os.access`` report ``denied`` as not writable (the tests may run as root, who can write anything)."""
    real = os.access

    def access(path, mode, **kwargs):
        if Path(path) == denied and mode & os.W_OK:
            return False
        return real(path, mode, **kwargs)
    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("main", [mnist.main, pulse_response.main], ids=["mnist", "pulse_response"])
@pytest.mark.parametrize("which", ["out", "parent"])
def test_unwritable_out_or_parent(tmp_path, capsys, monkeypatch, no_data_loads, main, which):
    parent = tmp_path / "parent"
    parent.mkdir()
    out = parent / "run"
    if which == "out":
        out.mkdir()
    denied = out if which == "out" else parent
    deny_writes_to(monkeypatch, denied)
    line = fails(main, ["--out", str(out)], capsys)
    assert f"--out {out}: {denied} is not writable" in line
    assert set(tmp_path.rglob("*")) == ({parent, out} if which == "out" else {parent})


@pytest.mark.parametrize("present", [("metrics.jsonl", "config.json"), ("checkpoint.npz",), ("curves.png",),
                                     ("metrics.jsonl",), ("config.json",)])
def test_overwrite_guard_covers_every_output(tmp_path, capsys, no_data_loads, present):
    out = tmp_path / "run"
    out.mkdir()
    for name in present:
        (out / name).write_text(f"old {name}")
    before = snapshot(out)
    line = fails(mnist.main, ["--out", str(out), "--digital"], capsys)
    assert f"{out} already holds a run ({', '.join(present)})" in line and "--overwrite" in line
    assert snapshot(out) == before


def test_an_output_that_is_a_directory(tmp_path, capsys, no_data_loads):
    (tmp_path / "run" / "checkpoint.npz").mkdir(parents=True)
    line = fails(mnist.main, ["--out", str(tmp_path / "run"), "--overwrite"], capsys)
    assert f"{tmp_path / 'run' / 'checkpoint.npz'} is not a regular file" in line


# ---- data errors: named by file, before anything is written ------------------------------------------------


@pytest.mark.parametrize("bad", [12, -1, 10, 255])
def test_labels_outside_0_to_9(tmp_path, capsys, bad):
    labels = np.arange(32) % 10
    labels[5] = bad
    data_set(tmp_path / "data", train_labels=labels.astype(np.int8 if bad < 0 else np.uint8))
    line = fails(mnist.main, tiny(tmp_path / "data", tmp_path / "run"), capsys)
    assert f"{tmp_path / 'data' / 'train-labels-idx1-ubyte.gz'}: label {bad} at index 5 is outside 0..9" in line
    assert not (tmp_path / "run").exists()


def test_float_labels(tmp_path, capsys):
    data_set(tmp_path / "data", train_labels=(np.arange(32) % 10).astype(">f4"))
    line = fails(mnist.main, tiny(tmp_path / "data", tmp_path / "run"), capsys)
    assert "train-labels-idx1-ubyte.gz: labels must be integers, got float32" in line


@pytest.mark.parametrize("shape", [(27, 28), (28, 29), (14, 56)])
def test_images_not_28x28(tmp_path, capsys, shape):
    data_set(tmp_path / "data", image_shape=shape)
    line = fails(mnist.main, tiny(tmp_path / "data", tmp_path / "run"), capsys)
    assert f"{tmp_path / 'data' / 'train-images-idx3-ubyte.gz'}: images are {shape[0]}x{shape[1]}" in line
    assert f"(shape (32, {shape[0]}, {shape[1]}))" in line and not (tmp_path / "run").exists()


def test_empty_data_set(tmp_path, capsys):
    data_set(tmp_path / "data", n_train=0, train_labels=np.zeros(0, np.uint8))  # a valid IDX file of 0 images
    line = fails(mnist.main, tiny(tmp_path / "data", tmp_path / "run"), capsys)
    assert "train-images-idx3-ubyte.gz: holds no images" in line


@pytest.mark.parametrize("damage", ["truncated gzip", "not gzip", "truncated data"])
def test_corrupt_idx_files(tmp_path, capsys, data, damage):
    path = data / "t10k-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes({"truncated gzip": raw[:len(raw) // 2], "not gzip": b"\x1f\x8bnonsense",
                      "truncated data": gzip.compress(gzip.decompress(raw)[:-10])}[damage])
    line = fails(mnist.main, tiny(data, tmp_path / "run"), capsys)
    assert str(path) in line and ("corrupt gzip" in line or "truncated" in line)
    assert not (tmp_path / "run").exists()


# ---- checkpoints ------------------------------------------------------------------------------------------------


def test_resume_of_a_library_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    model = mnist.build_mlp(digital=True)
    save_training(out / "checkpoint.npz", model)  # the library call, without the job's run metadata
    before = snapshot(out)
    line = fails(mnist.main, ["--resume", "--out", str(out)], capsys)
    assert f"--resume: {out / 'checkpoint.npz'} was not written by python -m models.mnist" in line
    assert "lacks the run metadata (run, epochs, epoch, step, seconds, history" in line
    assert snapshot(out) == before


def test_resume_of_a_checkpoint_of_another_network(tmp_path, capsys, data):
    out = tmp_path / "run"
    mnist.main(tiny(data, out, "--stop-after", "1"))
    _, meta = load_checkpoint(out / "checkpoint.npz")
    other = mnist.build_mlp(digital=True, sizes=(784, 32, 10))  # same job meta, another network
    opt = mnist.SGD(other.parameters(), 0.05)
    save_training(out / "checkpoint.npz", other, opt, mnist.make_scheduler("step:10:0.5", opt),
                  meta={k: meta[k] for k in mnist.RUN_META}, arrays={"loss_sum": np.float64(0)})
    before = snapshot(out)
    line = fails(mnist.main, ["--resume", "--out", str(out), "--no-progress"], capsys)
    assert f"--resume: {out / 'checkpoint.npz'}: does not fit the model" in line
    assert snapshot(out) == before


def test_stale_temp_files_are_removed_on_start(tmp_path, capsys, data):
    out = tmp_path / "run"
    mnist.main(tiny(data, out, "--stop-after", "1"))
    stale = [out / ".checkpoint.npz.a1b2_c3d.tmp", out / ".metrics.jsonl.zzzzzzzz.tmp"]
    kept = [out / ".checkpoint.npz.mine.tmp", out / "notes.tmp", out / ".checkpoint.npz.a1b2c3d4.bak"]
    for p in stale + kept:
        p.write_bytes(b"x" * 100)
    assert mnist.main(["--resume", "--out", str(out)]) == 0
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_checkpoint_keeps_io_scalars_float32_after_a_resume():
    model = mnist.build_mlp(seed=1)
    state = model.state_dict()
    restored = mnist.build_mlp(seed=2)
    restored.load_state_dict(state)
    again = restored.state_dict()
    assert {k: v.dtype for k, v in again.items()} == {k: v.dtype for k, v in state.items()}
    assert sum(k.endswith("out_nonlinearity_factor") and v.dtype == F32 for k, v in again.items()) == 6


def test_checkpoint_directory_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        real_replace(src, dst)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    ckpt_module.save_checkpoint(tmp_path / "c.npz", {"w": np.ones(3, F32)})
    assert events == ["fsync file", "replace", "fsync dir"]


# ---- failures while running: one line, the last good state kept -------------------------------------------


def test_diverging_run_keeps_the_last_good_checkpoint(tmp_path, capsys, data):
    out = tmp_path / "run"
    mnist.main(tiny(data, out, "--lr", "1e38", "--stop-after", "1"))  # step 1 of 2: the loss is still finite
    before = snapshot(out)
    line = fails(mnist.main, ["--resume", "--out", str(out), "--no-progress"], capsys)
    assert "training diverged" in line and "(--lr 1e+38)" in line
    assert f"{out / 'checkpoint.npz'} holds the last good state" in line
    after = snapshot(out)  # config.json and metrics.jsonl are rewritten on a resume (the same metrics)
    assert after["checkpoint.npz"] == before["checkpoint.npz"]
    assert after["metrics.jsonl"][0] == before["metrics.jsonl"][0]


def test_diverging_run_without_a_checkpoint(tmp_path, capsys, data):
    line = fails(mnist.main, tiny(data, tmp_path / "run", "--lr", "1e38"), capsys)
    assert "training diverged" in line and "nothing was checkpointed" in line
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def full_disk(monkeypatch, name: str, after: int = 0):
    """Atomic writes of the file ``name`` after the first ``after`` write a few bytes and fail with ENOSPC."""
    real, calls = ckpt_module.write_atomic, []

    def write_atomic(path, write):
        if Path(path).name == name:
            calls.append(path)
            if len(calls) > after:
                def partial(f):
                    f.write(b"partial")
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real(path, partial)
        return real(path, write)
    monkeypatch.setattr(ckpt_module, "write_atomic", write_atomic)


@pytest.mark.parametrize("name", ["checkpoint.npz", "metrics.jsonl"])
def test_full_disk_while_checkpointing_or_writing_metrics(tmp_path, capsys, monkeypatch, data, name):
    out = tmp_path / "run"
    mnist.main(tiny(data, out, "--epochs", "2", "--stop-after", "2"))  # epoch 1 of 2 done and checkpointed
    before = snapshot(out, mtimes=False)
    full_disk(monkeypatch, name, after=1 if name == "metrics.jsonl" else 0)  # metrics: fail at the epoch end
    line = fails(mnist.main, ["--resume", "--out", str(out), "--no-progress"], capsys)
    assert f"cannot write {out / name}: No space left on device" in line
    assert not list(out.glob(".*.tmp"))  # the temporary file is gone
    assert snapshot(out, mtimes=False)[name] == before[name]  # the previous file is intact
    assert load_checkpoint(out / "checkpoint.npz")[1]["epoch"] == (1 if name == "checkpoint.npz" else 2)


# ---- crossbar.pulse_response ---------------------------------------------------------------------------------


@pytest.mark.parametrize("argv,message", [
    (["--device", "nonsense"], "unknown device 'nonsense'"),
    (["--device", "ideal"], "device 'ideal' is not pulsed"),
    (["--n-steps", "0"], "argument --n-steps: expected a positive integer, got 0"),
    (["--n-steps", "-5"], "argument --n-steps: expected a positive integer, got -5"),
    (["--n-loops", "two"], "argument --n-loops: expected a positive integer, got 'two'"),
    (["--n-devices", "0"], "argument --n-devices: expected a positive integer, got 0"),
    (["--seed", "-1"], "seed must be in [0, 2**64), got -1"),
    (["--seed", "1.5"], "expected an integer seed, got '1.5'"),
    (["--n-steps", "100000", "--n-devices", "1000"], "--n-steps 100000 x --n-loops 2 x --n-devices 1000"),
])
def test_pulse_response_bad_options(tmp_path, capsys, argv, message):
    assert message in fails(pulse_response.main, argv + ["--out", str(tmp_path / "out")], capsys)
    assert not (tmp_path / "out").exists()


def test_pulse_response_out_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert f"{tmp_path / 'f'} exists and is not a directory" in fails(pulse_response.main, ["--out", str(tmp_path / "f")],
                                                                      capsys)
    assert (tmp_path / "f").read_text() == "x"


def test_pulse_response_write_failure(tmp_path, capsys, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(pulse_response, "open", no_space, raising=False)  # the module's open, not the builtin
    line = fails(pulse_response.main, ["--device", "constant-step", "--n-steps", "3", "--no-plot", "--out",
                                       str(tmp_path)], capsys)
    assert f"cannot write {tmp_path / 'pulse_response_constant-step.csv'}: No space left on device" in line


# ---- library errors name the argument ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1.5, True, -1, 2**64, "3", None])
def test_tile_seed_must_be_an_integer_in_range(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\), got " + re.escape(repr(seed))):
        AnalogTile(2, 3, seed=seed)
    AnalogTile(2, 3, seed=np.uint64(2**64 - 1))


@pytest.mark.parametrize("lr", ["abc", "0.1", b"1", True, None, 1j, [0.1]])
def test_update_lr_must_be_a_real_number(lr):
    tile = AnalogTile(2, 3, seed=1)
    before = tile.get_weights()
    with pytest.raises(TypeError, match=r"lr must be a finite real number, got " + re.escape(repr(lr))):
        tile.update(np.ones(3, F32), np.ones(2, F32), lr)
    assert np.array_equal(tile.get_weights(), before)
    tile.update(np.ones(3, F32), np.ones(2, F32), np.float32(0.1))  # NumPy scalars are fine


@pytest.mark.parametrize("name", ["x", "d"])
def test_values_that_overflow_float32_are_named(name):
    tile = AnalogTile(2, 3, seed=1)
    x, d = np.ones((1, 3)), np.ones((1, 2))
    (x if name == "x" else d)[0, 1] = -1e39
    with pytest.raises(ValueError, match=rf"{name} overflows float32: its largest magnitude is 1e\+39"):
        tile.update(x, d, 0.1)
    (x if name == "x" else d)[0, 1] = np.inf
    with pytest.raises(ValueError, match=rf"{name} contains NaN or Inf"):
        tile.update(x, d, 0.1)


def test_tile_config_device_must_be_a_device_config():
    with pytest.raises(ValueError, match=r"TileConfig.device = 'constant-step': must be a device config "
                                         r"\(a PulsedDevice, IdealDevice or a compound .*\), got str"):
        TileConfig(device="constant-step")
    with pytest.raises(ValueError, match=r"TileConfig.forward = 3: must be of type IOParameters, got int"):
        TileConfig(forward=3)


def test_seed_type_accepts_the_whole_range():
    from crossbar.cli import seed_type
    assert seed_type("0") == 0 and seed_type(str(2**64 - 1)) == 2**64 - 1

