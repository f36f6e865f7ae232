"""The main job trains the PCM preset: a refreshed one-sided pair of set-only devices, with signed weights."""

import numpy as np

from models import mnist
from models.checkpoint import load_checkpoint
from test_mnist import TINY


def test_the_pcm_preset_trains_signed_weights_and_checkpoints_its_refreshes(tmp_path):
    out = tmp_path / "run"
    history = mnist.run(TINY + ["--device", "pcm", "--epochs", "1", "--out", str(out)])
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])
    state, _ = load_checkpoint(out / "checkpoint.npz")
    refreshes = [int(v) for k, v in state.items() if k.endswith("compound/refresh_counts")]
    assert len(refreshes) == 3 and min(refreshes) >= 0  # one count per layer, checkpointed (a short run needs none)
    weights = [v for k, v in state.items() if k.endswith("/weights") and "/sub" not in k]
    assert any((w < 0).any() and (w > 0).any() for w in weights)
