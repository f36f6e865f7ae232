"""The pulse-response job and the device presets."""

import csv

import numpy as np
import pytest

from crossbar import make_tile, presets
from crossbar.physics.devices import PulsedDevice, SoftBoundsDevice
from crossbar.pulse_response import main, pulse_directions, pulse_response, step_statistics


def test_directions_and_noise_free_soft_bounds_trace():
    dirs = pulse_directions(3, 2)
    assert dirs.tolist() == [1, 1, 1, -1, -1, -1] * 2
    dev = SoftBoundsDevice(dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    trace = pulse_response(dev, pulse_directions(50, 1), n_devices=2, seed=1).astype(np.float64)
    steps = np.diff(trace, axis=0)
    assert trace[0, 0] == pytest.approx(-0.6)  # starts at w_min
    assert (steps[:50] > 0).all() and (steps[50:] < 0).all()  # each pulse moves in its direction
    # soft bounds: up steps shrink as w rises, exactly dw_min (1 - w / 0.6)
    np.testing.assert_allclose(steps[:50, 0], 0.001 * (1 - trace[:50, 0] / 0.6), rtol=1e-4)
    stats = step_statistics(trace, pulse_directions(50, 1), n_nodes=5)
    assert np.nanmax(stats["up_mean"]) > np.nanmin(stats["up_mean"])  # state dependent


def test_main_writes_csv_and_rejects_bad_options(tmp_path, capsys):
    assert main(["--device", "constant-step", "--n-steps", "20", "--n-loops", "1", "--out", str(tmp_path),
                 "--no-plot"]) == 0
    rows = list(csv.reader(open(tmp_path / "pulse_response_constant-step.csv")))
    assert rows[0][:3] == ["pulse", "direction", "w0"] and len(rows) == 1 + 1 + 40
    for bad in (["--device", "nope"], ["--device", "ideal"], ["--n-loops", "0"]):
        with pytest.raises(SystemExit):
            main(bad + ["--out", str(tmp_path)])
    assert "unknown device" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(presets.DEVICES))
def test_every_preset_builds_a_working_tile(name):
    cfg = presets.tile_config(name)
    tile = make_tile(3, 4, cfg, seed=1)
    tile.update(np.ones((2, 4), np.float32), np.full((2, 3), 0.1, np.float32), 0.05)
    assert np.isfinite(tile.get_weights()).all()
    if isinstance(cfg.device, PulsedDevice):
        hp = tile.hidden_parameters()
        assert (hp["max_bound"] >= hp["min_bound"]).all()


def test_without_matplotlib_the_job_writes_the_csv_only(tmp_path, capsys, monkeypatch):
    import crossbar.pulse_response as job
    monkeypatch.setattr(job, "Figure", None)  # as without the plot extra
    assert main(["--device", "constant-step", "--n-steps", "5", "--n-loops", "1", "--out", str(tmp_path)]) == 0
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert [p.suffix for p in tmp_path.iterdir()] == [".csv"]
