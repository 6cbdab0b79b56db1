from pathlib import Path

import numpy as np
import pytest

from schemas.config import ModelConfig, TrainingConfig
from tasks.storage.store import ArtifactStore, is_intact, load_array
from tasks.training.task import FitJob, StationInputs, fit_model


def _arrays(rows: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, 11)).astype(np.float32)
    y = (x[:, :1] * 0.8 - x[:, 7:8] * 0.5 + rng.normal(0, 0.1, (rows, 1))).astype(np.float32)
    cut = rows * 5 // 6
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _fit(tmp_path: Path, seed: int = 0, epochs: int = 3, rows: int = 120):
    training = TrainingConfig(epochs=epochs, batch_size=8, learning_rate=0.05, seed=seed)
    return fit_model(FitJob(*_arrays(rows), ModelConfig(), training, ArtifactStore(tmp_path)))


def test_training_records_every_epoch_with_a_checkpoint(tmp_path: Path):
    run = _fit(tmp_path, epochs=3)
    assert [r.epoch for r in run.history] == [1, 2, 3]
    assert len(run.checkpoints) == 3 and all(is_intact(c) for c in run.checkpoints)
    assert all(c.path.endswith(".keras") for c in run.checkpoints)
    assert run.history[-1].loss < run.history[0].loss
    # The seed's schedule: the learning rate halves every epoch.
    rates = [r.learning_rate for r in run.history]
    assert rates[1] == pytest.approx(rates[0] / 2, rel=1e-4)
    # Where it ran depends on the host: the CPU, one GPU, or all of them.
    gpus = run.device.visible_gpus
    expected = "/cpu:0" if not gpus else "/gpu:0" if len(gpus) == 1 else f"{len(gpus)} GPUs"
    assert run.device.device == expected and run.device.tensorflow_version


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
            FitJob(
                x, y, x[:0], y[:0], ModelConfig(), TrainingConfig(epochs=1), ArtifactStore(tmp_path)
            )
        )


def _request(tmp_path: Path, epochs: int):
    from tasks.prepare.normalise import NormalisedData, Statistics
    from tasks.training.request import FitRequest

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
    request = FitRequest(
        data=data, model=ModelConfig(), training=training, store_root=str(tmp_path)
    )
    return request, refs


def test_training_process_reports_the_childs_error(tmp_path: Path):
    from schemas.errors import TrainingError
    from tasks.training.task import run_training_process

    request, refs = _request(tmp_path, epochs=1)
    Path(refs["x_validation"].path).unlink()  # the child must notice and say so
    epochs: list[int] = []
    with pytest.raises(TrainingError, match="missing"):
        run_training_process(request, lambda record, total: epochs.append(record.epoch), print)
    assert epochs == []


def test_training_process_streams_epochs_and_returns_the_run(tmp_path: Path):
    from tasks.training.task import run_training_process

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
    import tasks.training.keras_fit as train

    monkeypatch.setattr(train, "IN_MEMORY_BYTES", 0)  # force the memory-mapped path
    monkeypatch.setattr(train, "BLOCK_ROWS", 64)
    store = ArtifactStore(tmp_path)
    rows = np.arange(300, dtype=np.float32)
    x_ref = store.put_array(np.stack([rows, -rows], axis=1))
    y_ref = store.put_array(rows.reshape(-1, 1))
    x, y = load_array(x_ref, mmap=True), load_array(y_ref, mmap=True)
    tf = train.import_tensorflow()
    # One stream holds both epochs back to back: 300 rows = 10 batches of 32 per epoch.
    data = train.make_dataset(tf, x, y, batch_size=32, seed=3, epochs=range(2))
    batches = [(bx.numpy(), by.numpy()) for bx, by in data]
    assert len(batches) == 20
    epochs = [batches[:10], batches[10:]]
    for batches in epochs:
        seen = np.concatenate([by[:, 0] for _, by in batches])
        assert sorted(seen.tolist()) == rows.tolist()  # every row exactly once
        assert all(np.array_equal(bx[:, 0], by[:, 0]) for bx, by in batches)  # x and y agree
    first = np.concatenate([by[:, 0] for _, by in epochs[0]])
    second = np.concatenate([by[:, 0] for _, by in epochs[1]])
    assert not np.array_equal(first, second)  # reshuffled every epoch


def test_training_on_memory_mapped_arrays_learns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import tasks.training.keras_fit as train

    monkeypatch.setattr(train, "IN_MEMORY_BYTES", 0)
    store = ArtifactStore(tmp_path)
    arrays = [load_array(store.put_array(a), mmap=True) for a in _arrays(600)]
    training = TrainingConfig(epochs=3, batch_size=16, learning_rate=0.05)
    run = fit_model(FitJob(*arrays, ModelConfig(), training, store))
    assert [r.epoch for r in run.history] == [1, 2, 3]
    assert run.history[-1].loss < run.history[0].loss


def test_several_steps_per_execution_give_the_same_losses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import tasks.training.keras_fit as train

    # 144 rows: 120 for training, 15 steps of 8 an epoch, so a cap of 5 makes three calls of
    # five steps each (a prime count of steps would fall back to one step per call).
    rows, steps = 144, 15
    monkeypatch.setattr(train, "STEPS_PER_EXECUTION", 1)
    assert train.steps_per_execution(steps) == 1
    one = _fit(tmp_path / "one", seed=4, epochs=2, rows=rows)
    monkeypatch.setattr(train, "STEPS_PER_EXECUTION", 5)
    assert train.steps_per_execution(steps) == 5
    five = _fit(tmp_path / "five", seed=4, epochs=2, rows=rows)
    np.testing.assert_allclose(
        [r.loss for r in one.history], [r.loss for r in five.history], rtol=1e-6
    )


def test_steps_per_execution_never_crosses_an_epoch():
    from tasks.training.keras_fit import STEPS_PER_EXECUTION, steps_per_execution

    for steps in (1, 13, 142, 400, 10_007, 100_000):
        chosen = steps_per_execution(steps)
        assert steps % chosen == 0 and 1 <= chosen <= min(steps, STEPS_PER_EXECUTION)
    assert steps_per_execution(142) == 142  # the seed's 568 rows at batch 4: one call an epoch


# --- the station input ---------------------------------------------------------------------


def _station_arrays(rows: int = 240, known: int = 4, seed: int = 0):
    """Features, station indices 1..known, and a target whose level depends on the station."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (rows, 11)).astype(np.float32)
    stations = rng.integers(1, known + 1, (rows, 1)).astype(np.int32)
    level = np.linspace(-1.5, 1.5, known + 1)[stations]
    y = (x[:, :1] * 0.5 + level + rng.normal(0, 0.1, (rows, 1))).astype(np.float32)
    cut = rows * 5 // 6
    return (
        (x[:cut], y[:cut], x[cut:], y[cut:]),
        StationInputs(train=stations[:cut], validation=stations[cut:], rows=known + 1),
    )


def test_station_model_trains_and_its_file_predicts_the_same(tmp_path: Path):
    import keras

    from tasks.models.zoo import model_inputs
    from tasks.storage.store import verify

    arrays, stations = _station_arrays()
    training = TrainingConfig(epochs=1, batch_size=16, learning_rate=0.05)
    model_config = ModelConfig(station_embedding_dim=3)
    store = ArtifactStore(tmp_path)
    run = fit_model(FitJob(*arrays, model_config, training, store, stations=stations))
    assert len(run.history) == 1 and np.isfinite(run.history[0].val_loss)

    loaded = keras.saving.load_model(verify(run.checkpoints[0]), safe_mode=True)
    again = keras.saving.load_model(verify(run.checkpoints[0]), safe_mode=True)
    assert [t.name for t in loaded.inputs] == ["features", "station"]
    assert loaded.get_layer("station_embedding").get_weights()[0].shape == (5, 3)
    x_val, y_val = arrays[2], arrays[3]
    first = loaded.predict(model_inputs(loaded, x_val, stations.validation), verbose=0)
    second = again.predict(model_inputs(again, x_val, stations.validation), verbose=0)
    np.testing.assert_array_equal(first, second)
    # The reloaded model is the trained one: its validation MSE is the one recorded.
    assert float(np.mean((first - y_val) ** 2)) == pytest.approx(run.history[0].val_loss, rel=1e-4)
    with pytest.raises(ValueError, match="takes a station input, but none were given"):
        model_inputs(loaded, x_val)


@pytest.mark.parametrize("in_memory", [True, False])
def test_station_indices_stay_with_their_rows_in_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_memory: bool
):
    import tasks.training.keras_fit as train

    if not in_memory:
        monkeypatch.setattr(train, "IN_MEMORY_BYTES", 0)
        monkeypatch.setattr(train, "BLOCK_ROWS", 64)
    store = ArtifactStore(tmp_path)
    rows = np.arange(300, dtype=np.float32)
    x = load_array(store.put_array(np.stack([rows, -rows], axis=1)), mmap=True)
    y = load_array(store.put_array(rows.reshape(-1, 1)), mmap=True)
    s = load_array(store.put_array((np.arange(300, dtype=np.int32) % 7).reshape(-1, 1)), mmap=True)
    tf = train.import_tensorflow()
    blocks = [("features", 0, 2)]
    plain = train.make_dataset(tf, x, y, batch_size=32, seed=3, blocks=blocks, epochs=range(2))
    data = train.make_dataset(
        tf, x, y, batch_size=32, seed=3, blocks=blocks, epochs=range(2), stations=s
    )
    batches = [(inputs, by.numpy()) for inputs, by in data]
    assert len(batches) == 20
    for inputs, by in batches:
        assert set(inputs) == {"features", "station"}
        np.testing.assert_array_equal(inputs["features"].numpy()[:, 0], by[:, 0])
        np.testing.assert_array_equal(inputs["station"].numpy()[:, 0], by[:, 0].astype(int) % 7)
    # The station rides along: the batch order is the one the plain stream has.
    np.testing.assert_array_equal(
        np.concatenate([by for _, by in batches]), np.concatenate([by for _, by in plain])
    )


def test_station_indices_of_the_wrong_type_or_length_are_refused(tmp_path: Path):
    arrays, stations = _station_arrays()
    training = TrainingConfig(epochs=1, batch_size=16)
    wrong = StationInputs(
        train=stations.train.astype(np.int64), validation=stations.validation, rows=stations.rows
    )
    with pytest.raises(ValueError, match="must be int32, one per feature row"):
        fit_model(FitJob(*arrays, ModelConfig(), training, ArtifactStore(tmp_path), stations=wrong))


def test_the_station_embedding_learns_each_stations_size(tmp_path: Path, table_from_frame):
    """Stations differ in size: with the embedding the validation loss is far lower."""
    from prefect.logging import disable_run_logger

    from schemas.synthetic import make_records
    from tasks.prepare.normalise import normalise_features
    from tasks.prepare.split import plan_split

    store = ArtifactStore(tmp_path)
    frame = make_records(200, stations=5, seed=2)
    table = table_from_frame(store, frame)
    dates = frame["dteday"].to_numpy().astype("datetime64[D]")
    plan = plan_split(dates, 30, 0.1)
    with disable_run_logger():
        data = normalise_features.fn(table, plan, str(tmp_path))
    assert data.statistics.stations is not None
    assert data.station_train is not None and data.station_validation is not None
    arrays = [load_array(getattr(data, n), mmap=True) for n in ("x_train", "y_train")]
    arrays += [load_array(getattr(data, n), mmap=True) for n in ("x_validation", "y_validation")]
    stations = StationInputs(
        train=load_array(data.station_train, mmap=True),
        validation=load_array(data.station_validation, mmap=True),
        rows=data.statistics.stations.size,
    )
    # A constant rate: with the seed's halving per epoch the small initial station vectors
    # barely move in a few epochs, and the margin would hang on the initial weights.
    training = TrainingConfig(epochs=5, batch_size=16, learning_rate=0.05, decay_rate=1.0)
    with_station = fit_model(FitJob(*arrays, ModelConfig(), training, store, stations=stations))
    without = fit_model(FitJob(*arrays, ModelConfig(), training, store))
    best_with = min(r.val_loss for r in with_station.history)
    best_without = min(r.val_loss for r in without.history)
    # Without the station the model can only predict the average station's day: most of
    # the variance (the stations' sizes) is left. Measured over data seeds 2 and 7 and
    # training seeds 0-2, the ratio was 0.03-0.13.
    assert best_with < 0.5 * best_without


def _fresh_python(script: str, *args: str) -> str:
    """Run a script (with ``args``) in a new interpreter at the project root; its stdout."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[3],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_evaluation_preload_imports_once_in_the_background_and_only_when_asked():
    script = (
        "import sys\n"
        "import tasks.training.task as train\n"
        # Importing the training module (as a cached run does) must not import Keras.
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
        "assert 'matplotlib' not in sys.modules\n"
        "thread = train.preload_evaluation(sys.argv[1])\n"
        "assert thread is not None and thread.daemon\n"
        "assert train.preload_evaluation(sys.argv[1]) is thread\n"
        "thread.join()\n"
        "names = ('keras', 'tensorflow', 'matplotlib.pyplot')\n"
        "print(sorted(m for m in names if m in sys.modules))\n"
    )
    # On TensorFlow the flow process predicts: Keras too. On JAX its child does: the plot only.
    assert _fresh_python(script, "tensorflow").endswith(
        "['keras', 'matplotlib.pyplot', 'tensorflow']"
    )
    assert _fresh_python(script, "jax").endswith("['matplotlib.pyplot']")
