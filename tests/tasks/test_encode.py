import json
from pathlib import Path

import numpy as np
import pytest

from schemas.config import FeatureConfig
from schemas.records import FEATURE_COLUMNS
from schemas.synthetic import make_day_frame
from tasks.encode import fit_encoding, invert_target, transform_target
from tasks.normalise import Statistics, normalise_features
from tasks.split import plan_split
from tasks.store import ArtifactStore, load_array, load_json
from tasks.validate import TableData


def _table(store: ArtifactStore, days: int = 200) -> tuple[TableData, np.ndarray, np.ndarray]:
    frame = make_day_frame(days, seed=5)
    features = frame[list(FEATURE_COLUMNS)].to_numpy(np.float32)
    target = frame[["cnt"]].to_numpy(np.float32)
    dates = frame["dteday"].to_numpy().astype("datetime64[D]")
    table = TableData(
        source="generated",
        source_sha256="0" * 64,
        rows=days,
        first_date=str(dates[0]),
        last_date=str(dates[-1]),
        feature_names=FEATURE_COLUMNS,
        dates=store.put_array(dates),
        features=store.put_array(features),
        target=store.put_array(target),
        report=store.put_json({}),
    )
    return table, features, target


def test_one_hot_expands_the_categorical_columns_in_place():
    encoding = fit_encoding("one-hot", FEATURE_COLUMNS)
    names = encoding.encoded_names()
    # season 4 + yr + month 12 + holiday + weekday 7 + workingday + weathersit 4 + 4 weather
    assert len(names) == 4 + 1 + 12 + 1 + 7 + 1 + 4 + 4
    assert names[:5] == ("season=1", "season=2", "season=3", "season=4", "yr")
    assert names[-4:] == ("temp", "atemp", "hum", "windspeed")
    raw = make_day_frame(30, seed=2)[list(FEATURE_COLUMNS)].to_numpy(np.float32)
    encoded = encoding.encode(raw)
    assert encoded.shape == (30, len(names))
    for column in ("season", "mnth", "weekday", "weathersit"):
        block = [i for i, name in enumerate(names) if name.startswith(f"{column}=")]
        np.testing.assert_array_equal(encoded[:, block].sum(axis=1), 1.0)  # exactly one hot
    np.testing.assert_array_equal(encoded[:, -4:], raw[:, -4:])
    assert fit_encoding("ordinal", FEATURE_COLUMNS).encode(raw).shape == raw.shape


def test_sqrt_transform_inverts_to_counts_clips_negative_predictions_and_refuses_negatives():
    counts = np.array([[0.0], [4.0], [8714.0]])
    np.testing.assert_allclose(transform_target(counts, "sqrt"), np.sqrt(counts))
    np.testing.assert_allclose(invert_target(transform_target(counts, "sqrt"), "sqrt"), counts)
    # A network can predict below 0 on the sqrt scale; squaring it would make a positive count.
    assert invert_target(np.array([[-3.0]]), "sqrt")[0, 0] == 0.0
    with pytest.raises(ValueError, match="sqrt target transform needs counts >= 0"):
        transform_target(np.array([[-1.0]]), "sqrt")


def test_log_transform_inverts_to_counts_and_refuses_negative_counts():
    counts = np.array([[0.0], [22.0], [8714.0]])
    np.testing.assert_allclose(invert_target(transform_target(counts, "log"), "log"), counts)
    with pytest.raises(ValueError, match=">= 0"):
        transform_target(np.array([[-1.0]]), "log")


def test_fitted_encoding_and_transform_travel_with_the_statistics(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    table, features, target = _table(store)
    plan = plan_split(load_array(table.dates), 30, 0.1)
    config = FeatureConfig(encoding="one-hot", target_transform="log")
    data = normalise_features.fn(table, plan, str(tmp_path), config)

    # The statistics file alone (what ships as normalisation.json) rebuilds the inputs.
    stats = Statistics.model_validate(load_json(data.statistics_file))
    assert stats.encoding.kind == "one-hot" and stats.target_transform == "log"
    assert stats.feature_names == stats.encoding.encoded_names()
    test = slice(plan.test.start, plan.test.stop)
    np.testing.assert_allclose(
        stats.prepare_features(features[test]), load_array(data.x_test), atol=1e-6
    )
    # Targets are normalised log counts and come back as counts.
    train = slice(plan.train.start, plan.train.stop)
    assert stats.target_mean == pytest.approx(np.log1p(target[train]).mean(), rel=1e-6)
    np.testing.assert_allclose(
        stats.denormalise_target(load_array(data.y_test)), target[test], rtol=1e-4
    )
    json.dumps(load_json(data.statistics_file))  # plain JSON, no pickle


def test_encoded_statistics_ignore_validation_and_test_rows(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    table, _features, target = _table(store)
    plan = plan_split(load_array(table.dates), 30, 0.1)
    config = FeatureConfig(encoding="one-hot", target_transform="log")
    before = normalise_features.fn(table, plan, str(tmp_path), config).statistics
    changed_target = target.copy()
    changed_target[plan.validation.start :] *= 3
    altered = table.model_copy(update={"target": store.put_array(changed_target)})
    after = normalise_features.fn(altered, plan, str(tmp_path), config).statistics
    assert before == after
