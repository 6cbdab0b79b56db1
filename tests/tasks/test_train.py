from pathlib import Path

import numpy as np
import pytest

from schemas.config import ModelConfig, TrainingConfig
from tasks.store import ArtifactStore, is_intact, load_array
from tasks.train import checkpoint_saver, fit_model


def _arrays(rows: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, 11)).astype(np.float32)
    y = (x[:, :1] * 0.8 - x[:, 7:8] * 0.5 + rng.normal(0, 0.1, (rows, 1))).astype(np.float32)
    cut = rows * 5 // 6
    return x[:cut], y[:cut], x[cut:], y[cut:]


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


def _request(tmp_path: Path, epochs: int):
    from tasks.normalise import NormalisedData, Statistics
    from tasks.train_worker import TrainingRequest

    store = ArtifactStore(tmp_path)
    x_train, y_train, x_val, y_val = _arrays()
    arrays = {
        "x_train": x_train,
        "y_train": y_train,
        "x_validation": x_val,
        "y_validation": y_val,
        "x_test": x_val,
        "y_test": y_val,
    }
    stats = Statistics(
        feature_names=tuple("abcdefghijk"),
        feature_mean=(0.0,) * 11,
        feature_std=(1.0,) * 11,
        target_mean=0.0,
        target_std=1.0,
        train_rows=100,
    )
    refs = {name: store.put_array(array) for name, array in arrays.items()}
    data = NormalisedData(statistics=stats, statistics_file=store.put_json({}), **refs)
    training = TrainingConfig(epochs=epochs, batch_size=8)
    request = TrainingRequest(
        data=data, model=ModelConfig(), training=training, store_root=str(tmp_path)
    )
    return request, refs


def test_training_process_reports_the_childs_error(tmp_path: Path):
    from tasks.errors import TrainingError
    from tasks.train import run_training_process

    request, refs = _request(tmp_path, epochs=1)
    Path(refs["x_validation"].path).unlink()  # the child must notice and say so
    epochs: list[int] = []
    with pytest.raises(TrainingError, match="missing"):
        run_training_process(request, lambda record, total: epochs.append(record.epoch), print)
    assert epochs == []


def test_training_process_streams_epochs_and_returns_the_run(tmp_path: Path):
    from tasks.train import run_training_process

    request, _ = _request(tmp_path, epochs=2)
    seen: list[tuple[int, int]] = []
    run = run_training_process(
        request, lambda record, total: seen.append((record.epoch, total)), print
    )
    assert seen == [(1, 2), (2, 2)]
    assert [r.epoch for r in run.history] == [1, 2] and all(is_intact(c) for c in run.checkpoints)


def test_large_arrays_stream_from_the_memmap_every_row_once_per_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import tasks.train as train

    monkeypatch.setattr(train, "IN_MEMORY_BYTES", 0)  # force the memory-mapped path
    monkeypatch.setattr(train, "BLOCK_ROWS", 64)
    store = ArtifactStore(tmp_path)
    rows = np.arange(300, dtype=np.float32)
    x_ref = store.put_array(np.stack([rows, -rows], axis=1))
    y_ref = store.put_array(rows.reshape(-1, 1))
    x, y = load_array(x_ref, mmap=True), load_array(y_ref, mmap=True)
    tf = train.import_tensorflow()
    data = train.make_dataset(tf, x, y, batch_size=32, seed=3)
    epochs = [[(bx.numpy(), by.numpy()) for bx, by in data] for _ in range(2)]
    for batches in epochs:
        seen = np.concatenate([by[:, 0] for _, by in batches])
        assert sorted(seen.tolist()) == rows.tolist()  # every row exactly once
        assert all(np.array_equal(bx[:, 0], by[:, 0]) for bx, by in batches)  # x and y agree
    first = np.concatenate([by[:, 0] for _, by in epochs[0]])
    second = np.concatenate([by[:, 0] for _, by in epochs[1]])
    assert not np.array_equal(first, second)  # reshuffled every epoch


def test_training_on_memory_mapped_arrays_learns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import tasks.train as train

    monkeypatch.setattr(train, "IN_MEMORY_BYTES", 0)
    store = ArtifactStore(tmp_path)
    arrays = [load_array(store.put_array(a), mmap=True) for a in _arrays(600)]
    training = TrainingConfig(epochs=3, batch_size=16, learning_rate=0.05)
    run = fit_model(*arrays, ModelConfig(), training, checkpoint_saver(store))
    assert [r.epoch for r in run.history] == [1, 2, 3]
    assert run.history[-1].loss < run.history[0].loss


def test_several_steps_per_execution_give_the_same_losses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import tasks.train as train

    monkeypatch.setattr(train, "STEPS_PER_EXECUTION", 1)
    one = _fit(tmp_path / "one", seed=4, epochs=2)
    monkeypatch.setattr(train, "STEPS_PER_EXECUTION", 5)
    five = _fit(tmp_path / "five", seed=4, epochs=2)
    np.testing.assert_allclose(
        [r.loss for r in one.history], [r.loss for r in five.history], rtol=1e-6
    )
