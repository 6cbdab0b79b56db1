import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from schemas.config import FeatureConfig
from schemas.records import FEATURE_COLUMNS
from schemas.synthetic import make_day_frame, make_records
from tasks.prepare.encode import (
    StationVocabulary,
    fit_encoding,
    fit_station_vocabulary,
    invert_target,
    transform_target,
)
from tasks.prepare.normalise import Statistics, normalise_features
from tasks.prepare.split import plan_split
from tasks.storage.store import ArtifactStore, load_array, load_json
from tasks.storage.table import TableData


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


def _two_years() -> tuple[np.ndarray, np.ndarray]:
    frame = make_day_frame(731, seed=3)
    return (
        frame[list(FEATURE_COLUMNS)].to_numpy(np.float32),
        frame["dteday"].to_numpy().astype("datetime64[D]"),
    )


def test_holiday_windows_mark_the_days_around_each_observed_holiday():
    raw, dates = _two_years()
    encoding = fit_encoding("ordinal", FEATURE_COLUMNS, "us-federal", 3, dates[:600])
    # Juneteenth (a federal holiday from 2021) never touches 2011-2012: no column for it.
    assert "Thanksgiving Day" in encoding.holidays and "Christmas Day" in encoding.holidays
    assert not any("Juneteenth" in name for name in encoding.holidays)
    names = encoding.encoded_names()
    # Holiday columns join the calendar block, before the four weather columns.
    assert names[-4:] == ("temp", "atemp", "hum", "windspeed")
    assert names[:7] == FEATURE_COLUMNS[:7]
    encoded = encoding.encode(raw, dates)
    assert encoded.shape == (731, 11 + len(encoding.holidays))
    np.testing.assert_array_equal(encoded[:, :7], raw[:, :7])
    np.testing.assert_array_equal(encoded[:, -4:], raw[:, -4:])

    def marked(holiday: str) -> list[str]:
        column = names.index(f"near:{holiday}")
        return [str(day) for day in dates[encoded[:, column] == 1]]

    thanksgiving = marked("Thanksgiving Day")
    assert thanksgiving[:7] == [f"2011-11-{day}" for day in range(21, 28)]
    assert len(thanksgiving) == 14  # 2011-11-24 and 2012-11-22, 3 days either side
    # Christmas 2011 fell on a Sunday and was observed on Monday the 26th.
    assert marked("Christmas Day")[:7] == [f"2011-12-{day}" for day in range(23, 30)]
    # New Year's Day 2012 (observed Monday 2 January) reaches back across the year boundary.
    assert "2011-12-30" in marked("New Year's Day") and "2012-01-05" in marked("New Year's Day")


def test_holiday_window_zero_marks_the_observed_day_only_and_summer_fits_only_july():
    raw, dates = _two_years()
    summer = (dates >= np.datetime64("2011-06-10")) & (dates <= np.datetime64("2011-08-20"))
    encoding = fit_encoding("one-hot", FEATURE_COLUMNS, "us-federal", 0, dates[summer])
    assert encoding.holidays == ("Independence Day",)
    encoded = encoding.encode(raw, dates)
    column = encoding.encoded_names().index("near:Independence Day")
    assert [str(d) for d in dates[encoded[:, column] == 1]] == ["2011-07-04", "2012-07-04"]


def test_holiday_windows_refuse_rows_without_dates():
    raw, dates = _two_years()
    encoding = fit_encoding("ordinal", FEATURE_COLUMNS, "us-federal", 3, dates)
    with pytest.raises(ValueError, match="one date per row: no dates for 731 rows"):
        encoding.encode(raw)
    with pytest.raises(ValueError, match="one date per row: 10 dates for 731 rows"):
        encoding.encode(raw, dates[:10])
    with pytest.raises(ValueError, match="fitted on the training dates"):
        fit_encoding("ordinal", FEATURE_COLUMNS, "us-federal", 3, None)


def test_holiday_encoding_travels_with_the_statistics(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    table, features, _target = _table(store, days=400)
    dates = load_array(table.dates)
    plan = plan_split(dates, 30, 0.1)
    config = FeatureConfig(encoding="one-hot", target_transform="log", holidays="us-federal")
    data = normalise_features.fn(table, plan, str(tmp_path), config)
    stats = Statistics.model_validate(load_json(data.statistics_file))
    assert stats.encoding.holiday_calendar == "us-federal" and stats.encoding.holidays
    assert stats.feature_names == stats.encoding.encoded_names()
    test = slice(plan.test.start, plan.test.stop)
    np.testing.assert_allclose(
        stats.prepare_features(features[test], dates[test]), load_array(data.x_test), atol=1e-6
    )


# --- the station vocabulary ----------------------------------------------------------------


def test_station_ids_map_to_their_index_and_unknown_stations_to_zero():
    vocabulary = StationVocabulary(ids=(31000, 31002, 31005))
    indices = vocabulary.index(np.array([31002, 31000, 31005, 31001, 40000, 0]))
    np.testing.assert_array_equal(indices, [2, 1, 3, 0, 0, 0])
    assert indices.dtype == np.int32 and vocabulary.size == 4


def test_vocabulary_fitted_chunk_by_chunk_is_the_sorted_unique_ids():
    ids = np.random.default_rng(0).choice([31007, 31000, 31003, 31500], size=1000)
    vocabulary = fit_station_vocabulary(ids, chunk_rows=7)
    assert vocabulary.ids == (31000, 31003, 31007, 31500)
    assert vocabulary == fit_station_vocabulary(ids)


def test_vocabulary_refuses_ids_that_would_map_to_the_wrong_vectors():
    for ids in ((31003, 31000), (31000, 31000), ()):
        with pytest.raises(ValidationError, match="strictly increasing"):
            StationVocabulary(ids=ids)
    with pytest.raises(ValueError, match="without stations"):
        Statistics(
            feature_names=("a",),
            feature_mean=(0.0,),
            feature_std=(1.0,),
            target_mean=0.0,
            target_std=1.0,
            train_rows=1,
        ).station_indices(np.array([31000]))


def test_station_vocabulary_is_fitted_on_the_training_rows_only(tmp_path: Path, table_from_frame):
    store = ArtifactStore(tmp_path)
    frame = make_records(200, stations=4, seed=4)
    # Station 31003 opens in the test window: the model has never seen it.
    opens = np.sort(frame["dteday"].unique())[-30]
    frame = frame[(frame["station"] != 31003) | (frame["dteday"] >= opens)].reset_index(drop=True)
    table = table_from_frame(store, frame)
    plan = plan_split(load_array(table.dates), 30, 0.1)
    data = normalise_features.fn(table, plan, str(tmp_path))

    assert data.statistics.stations is not None
    assert data.statistics.stations.ids == (31000, 31001, 31002)
    test_ids = frame["station"].to_numpy()[plan.test.start : plan.test.stop]
    test_indices = load_array(data.station_test)
    assert test_indices.shape == (plan.test.stop - plan.test.start, 1)
    assert test_indices.dtype == np.int32
    np.testing.assert_array_equal(test_indices[test_ids == 31003, 0], 0)
    np.testing.assert_array_equal(
        test_indices[test_ids != 31003, 0], test_ids[test_ids != 31003] - 30999
    )
    for name in ("train", "validation"):
        assert load_array(getattr(data, f"station_{name}")).min() >= 1
    # The vocabulary travels in normalisation.json (plain JSON) and maps ids the same way.
    content = load_json(data.statistics_file)
    assert content["stations"] == {"ids": [31000, 31001, 31002]}
    shipped = Statistics.model_validate(content)
    np.testing.assert_array_equal(shipped.station_indices(test_ids), test_indices)
