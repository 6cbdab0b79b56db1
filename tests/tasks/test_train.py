from pathlib import Path

import numpy as np
import pytest

from schemas.config import ModelConfig, TrainingConfig
from tasks.store import ArtifactStore, is_intact
from tasks.train import checkpoint_saver, fit_model


def _arrays(rows: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, 11)).astype(np.float32)
    y = (x[:, :1] * 0.8 - x[:, 7:8] * 0.5 + rng.normal(0, 0.1, (rows, 1))).astype(np.float32)
    return x[:100], y[:100], x[100:], y[100:]


def _fit(tmp_path: Path, seed: int = 0, epochs: int = 3):
    training = TrainingConfig(epochs=epochs, batch_size=8, learning_rate=0.05, seed=seed)
    return fit_model(*_arrays(), ModelConfig(), training, checkpoint_saver(ArtifactStore(tmp_path)))


def test_training_records_every_epoch_with_a_checkpoint(tmp_path: Path):
    run = _fit(tmp_path, epochs=3)
    assert [r.epoch for r in run.history] == [1, 2, 3]
    assert len(run.checkpoints) == 3 and all(is_intact(c) for c in run.checkpoints)
    assert all(c.path.endswith(".keras") for c in run.checkpoints)
    assert run.history[-1].loss < run.history[0].loss
    # The seed's schedule: the learning rate halves every epoch.
    rates = [r.learning_rate for r in run.history]
    assert rates[1] == pytest.approx(rates[0] / 2, rel=1e-4)
    assert run.device.device == "/cpu:0" and run.device.tensorflow_version


def test_same_seed_gives_identical_losses(tmp_path: Path):
    first = _fit(tmp_path / "a", seed=7)
    second = _fit(tmp_path / "b", seed=7)
    other = _fit(tmp_path / "c", seed=8)
    assert [r.val_loss for r in first.history] == [r.val_loss for r in second.history]
    assert [r.val_loss for r in first.history] != [r.val_loss for r in other.history]


def test_empty_validation_rows_are_refused(tmp_path: Path):
    x, y, _, _ = _arrays()
    with pytest.raises(ValueError, match="must not be empty"):
        fit_model(
            x,
            y,
            x[:0],
            y[:0],
            ModelConfig(),
            TrainingConfig(epochs=1),
            checkpoint_saver(ArtifactStore(tmp_path)),
        )
