from pathlib import Path

import numpy as np
import pytest

import tasks.prepare.normalise as normalise
from tasks.storage.descriptors import Window
from tasks.storage.store import ArtifactStore, load_array
from tasks.storage.table import TableData

NAMES = tuple(f"f{i}" for i in range(3))


def _window(start: int, stop: int) -> Window:
    return Window(start=start, stop=stop, days=stop - start, first_date="x", last_date="y")


def test_statistics_come_from_training_rows_only():
    rng = np.random.default_rng(0)
    features = rng.normal(5, 2, (100, 3)).astype(np.float32)
    target = rng.normal(3000, 500, (100, 1)).astype(np.float32)
    train = _window(0, 70)
    before = normalise.fit_statistics(features, target, train, NAMES)
    features[70:] += 1000  # validation and test rows must not move the statistics
    target[70:] = 0
    after = normalise.fit_statistics(features, target, train, NAMES)
    assert before == after
    np.testing.assert_allclose(before.feature_mean, features[:70].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(before.feature_std, features[:70].std(axis=0), rtol=1e-5)
    scaled = before.normalise_features(features[:70])
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-5)


def test_streaming_pass_matches_one_pass(monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(1)
    features = rng.normal(0, 1, (1000, 3)).astype(np.float32) * [1, 10, 100]
    target = rng.uniform(0, 9000, (1000, 1)).astype(np.float32)
    whole = normalise.fit_statistics(features, target, _window(0, 999), NAMES)
    monkeypatch.setattr(normalise, "CHUNK_ROWS", 7)
    chunked = normalise.fit_statistics(features, target, _window(0, 999), NAMES)
    np.testing.assert_allclose(chunked.feature_mean, whole.feature_mean, rtol=1e-9)
    np.testing.assert_allclose(chunked.feature_std, whole.feature_std, rtol=1e-9)
    assert chunked.target_std == pytest.approx(whole.target_std, rel=1e-9)


def test_constant_training_column_does_not_divide_by_zero():
    features = np.ones((20, 3), dtype=np.float32)
    features[:, 1] = np.arange(20)
    stats = normalise.fit_statistics(features, features[:, :1], _window(0, 15), NAMES)
    assert stats.feature_std[0] == 1.0 and stats.target_std == 1.0
    assert np.isfinite(stats.normalise_features(features)).all()


def test_target_round_trips_to_counts():
    features = np.zeros((10, 3), dtype=np.float32)
    target = np.arange(10, dtype=np.float32).reshape(-1, 1) * 100
    stats = normalise.fit_statistics(features, target, _window(0, 10), NAMES)
    np.testing.assert_allclose(
        stats.denormalise_target(stats.normalise_target(target)), target, atol=1e-3
    )


def _table(store: ArtifactStore, features: np.ndarray, target: np.ndarray) -> TableData:
    return TableData(
        source="t",
        source_sha256="0" * 64,
        rows=len(features),
        first_date="a",
        last_date="b",
        feature_names=tuple(f"f{i}" for i in range(11)),
        dates=store.put_array(np.datetime64("2011-01-01") + np.arange(len(features))),
        features=store.put_array(features),
        target=store.put_array(target),
        report=store.put_json({}),
    )


def test_task_writes_rank_two_float32_splits(tmp_path: Path):
    from tasks.storage.descriptors import SplitPlan

    store = ArtifactStore(tmp_path)
    rng = np.random.default_rng(2)
    features = rng.normal(0, 1, (50, 11)).astype(np.float32)
    table = _table(store, features, rng.normal(0, 1, (50, 1)).astype(np.float32))
    plan = SplitPlan(train=_window(0, 30), validation=_window(30, 40), test=_window(40, 50))
    data = normalise.normalise_features.fn(table, plan, str(tmp_path))
    for name, rows in (("train", 30), ("validation", 10), ("test", 10)):
        x, y = load_array(getattr(data, f"x_{name}")), load_array(getattr(data, f"y_{name}"))
        assert x.shape == (rows, 11) and y.shape == (rows, 1)
        assert x.dtype == y.dtype == np.float32
    np.testing.assert_allclose(load_array(data.x_train).mean(axis=0), 0, atol=1e-5)


def test_task_refuses_an_altered_input(tmp_path: Path):
    from schemas.errors import ArtifactError
    from tasks.storage.descriptors import SplitPlan

    store = ArtifactStore(tmp_path)
    table = _table(store, np.zeros((50, 11), np.float32), np.zeros((50, 1), np.float32))
    ref = table.features
    Path(ref.path).write_bytes(b"truncated")
    plan = SplitPlan(train=_window(0, 30), validation=_window(30, 40), test=_window(40, 50))
    with pytest.raises(ArtifactError, match="altered"):
        normalise.normalise_features.fn(table, plan, str(tmp_path))


def test_a_table_without_stations_gets_no_station_arrays_and_the_same_statistics_file(
    tmp_path: Path,
):
    import json

    from tasks.storage.descriptors import SplitPlan

    store = ArtifactStore(tmp_path)
    rng = np.random.default_rng(3)
    table = _table(
        store,
        rng.normal(0, 1, (50, 11)).astype(np.float32),
        rng.normal(0, 1, (50, 1)).astype(np.float32),
    )
    plan = SplitPlan(train=_window(0, 30), validation=_window(30, 40), test=_window(40, 50))
    data = normalise.normalise_features.fn(table, plan, str(tmp_path))
    assert data.station_train is data.station_validation is data.station_test is None
    assert data.statistics.stations is None
    # normalisation.json is byte for byte what it was before stations existed.
    content = json.loads(Path(data.statistics_file.path).read_text())
    assert "stations" not in content
    assert Path(data.statistics_file.path).read_text() == json.dumps(
        # Neither is previous_day (the day-before columns), when it is off.
        data.statistics.model_dump(
            mode="json", exclude={"stations": True, "encoding": {"previous_day"}}
        ),
        sort_keys=True,
        indent=2,
    )
