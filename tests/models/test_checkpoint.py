"""models.checkpoint: plain-array round trips, atomic writes, and clear errors that change nothing."""

import io
import json
import zipfile

import numpy as np
import pytest

from crossbar.physics import rng
from models.autograd import Tensor
from models.checkpoint import CheckpointError, load_checkpoint, load_training, save_checkpoint, save_training
from models.layers import AnalogLinear, Linear, Sequential, Sigmoid, cross_entropy
from models.optim import AnalogSGD, StepLR

F32 = np.float32


def make_net(seed=1):
    return Sequential(AnalogLinear(6, 5, seed=seed), Sigmoid(), AnalogLinear(5, 3, seed=seed + 1, digital_bias=True),
                      Sigmoid(), Linear(3, 2, seed=seed + 2))


def train(net, opt, steps, start=0):
    for t in range(start, start + steps):
        x = rng.normal_array(rng.seed_key(100 + t), 0, (4, 6))
        opt.zero_grad()
        cross_entropy(net(Tensor(x)), np.arange(4) % 2).backward()
        opt.step()


def snapshot(net):
    return {k: v.copy() for k, v in net.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_round_trip_of_arrays_and_meta(tmp_path):
    path = tmp_path / "c.npz"
    arrays = {"a/b": np.arange(6, dtype=F32).reshape(2, 3), "n": np.array(3, np.int64),
              "s": np.array("text"), "u": np.array([2**63], np.uint64)}
    save_checkpoint(path, arrays, {"epoch": 4, "cfg": {"lr": 0.1}})
    got, meta = load_checkpoint(path)
    assert meta["epoch"] == 4 and meta["cfg"] == {"lr": 0.1} and meta["names"] == sorted(arrays)
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]  # no temporary file left behind


def test_refuses_objects_and_reserved_names(tmp_path):
    with pytest.raises(TypeError, match="dtype object"):
        save_checkpoint(tmp_path / "c.npz", {"x": np.array([None, 1], dtype=object)})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "c.npz", {"__meta__": np.zeros(1)})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "c.npz", {}, {"digest": "x"})
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "c.npz", {}, {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.ones(3, F32)}, {"epoch": 1})
    old = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"w": np.zeros(3, F32)}, {"epoch": 2})
    assert path.read_bytes() == old and [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def _with_member_replaced(src, name, payload):
    out = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, payload if item.filename == name else zin.read(item.filename))
    return out.getvalue()


def _pickled_npy():
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


def _damage(path, how):
    raw = path.read_bytes()
    if how == "truncated":
        return raw[: len(raw) // 2]
    if how == "empty":
        return b""
    if how == "not a zip":
        return b"hello world" * 100
    if how == "flipped byte":  # the last byte of the weights' data: the zip CRC catches it
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("model/0.tile/weights.npy")
        h = info.header_offset
        name_len, extra_len = int.from_bytes(raw[h + 26:h + 28], "little"), int.from_bytes(raw[h + 28:h + 30], "little")
        i = h + 30 + name_len + extra_len + info.compress_size - 1
        return raw[:i] + bytes([raw[i] ^ 0xFF]) + raw[i + 1:]
    if how == "pickled member":
        return _with_member_replaced(path, "model/0.tile/weights.npy", _pickled_npy())
    if how == "changed array":  # a valid zip whose array no longer matches the digest
        buf = io.BytesIO()
        np.save(buf, np.zeros((5, 7), F32))
        return _with_member_replaced(path, "model/0.tile/weights.npy", buf.getvalue())
    if how == "no meta":
        out = io.BytesIO()
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
            for item in zin.infolist():
                if item.filename != "__meta__.npy":
                    zout.writestr(item, zin.read(item.filename))
        return out.getvalue()
    raise AssertionError(how)


DAMAGE = {
    "truncated": "corrupt or truncated",
    "empty": "corrupt or truncated",
    "not a zip": "corrupt or truncated",
    "flipped byte": "corrupt|truncated|CRC",
    "pickled member": "pickled object",
    "changed array": "digest mismatch",
    "no meta": "not a crossbar-sim checkpoint",
}


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_checkpoint_raises_clearly_and_changes_nothing(tmp_path, how):
    net, path = make_net(), tmp_path / "c.npz"
    opt = AnalogSGD(net, 0.1)
    train(net, opt, 2)
    save_training(path, net, opt)
    damaged = _damage(path, how)
    path.write_bytes(damaged)

    target = make_net(seed=7)
    target_opt = AnalogSGD(target, 0.3)
    before = snapshot(target)
    with pytest.raises(CheckpointError, match=DAMAGE[how]) as info:
        load_training(path, target, target_opt)
    assert str(path) in str(info.value)
    assert_same(snapshot(target), before)  # the model was not touched
    assert target_opt.lr == 0.3 and target_opt.steps == 0
    assert path.read_bytes() == damaged  # the file was not rewritten or removed


def test_missing_file_and_wrong_model(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.npz")
    net, path = make_net(), tmp_path / "c.npz"
    save_training(path, net, AnalogSGD(net, 0.1))
    other = Sequential(AnalogLinear(6, 4, seed=1))
    before = snapshot(other)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_training(path, other)
    assert_same(snapshot(other), before)
    with pytest.raises(CheckpointError, match="optimizer state"):
        load_training(path, make_net(), StepLR(AnalogSGD(make_net(), 0.1), 2))


def test_stop_resume_equals_uninterrupted_exactly(tmp_path):
    # reference: 7 uninterrupted steps (pulsed ConstantStep updates, noisy IO, digital layer)
    ref = make_net()
    ref_opt = AnalogSGD(ref, 0.2)
    train(ref, ref_opt, 7)

    net = make_net()
    opt = AnalogSGD(net, 0.2)
    sched = StepLR(opt, 2, 0.5)
    train(net, opt, 3)
    save_training(tmp_path / "c.npz", net, opt, sched, meta={"step": 3})
    del net, opt, sched

    resumed = make_net(seed=42)  # a differently initialised model: everything must come from the file
    opt = AnalogSGD(resumed, 0.9)
    sched = StepLR(opt, 2, 0.5)
    meta, _ = load_training(tmp_path / "c.npz", resumed, opt, sched)
    assert meta["step"] == 3 and opt.lr == 0.2 and opt.steps == 3
    train(resumed, opt, 4, start=3)
    assert_same(snapshot(resumed), snapshot(ref))
    for a, b in zip(resumed.analog_layers(), ref.analog_layers()):
        assert a.tile.counters == b.tile.counters


def test_checkpoint_is_plain_json_and_arrays(tmp_path):
    net, path = make_net(), tmp_path / "c.npz"
    save_training(path, net, AnalogSGD(net, 0.1), meta={"epoch": 0})
    with zipfile.ZipFile(path) as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    with np.load(path, allow_pickle=False) as npz:  # loads without pickle, every member
        meta = json.loads(str(npz["__meta__"]))
        assert all(npz[name].dtype != object for name in npz.files)
    assert meta["optimizer"] == {"type": "AnalogSGD", "lr": 0.1, "steps": 0}
    assert "model/0.tile/counters" in meta["names"] and "model/0.tile/config" in meta["names"]
