"""Previous-day weather: derived from the rows (same station, exactly the date before)."""

import logging
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from schemas.config import FeatureConfig, RetrainConfig
from schemas.records import FEATURE_COLUMNS
from schemas.synthetic import make_day_frame, make_records
from tasks.prepare.encode import (
    PreviousWeatherWarning,
    fallback_message,
    fit_encoding,
    previous_day_index,
)
from tasks.prepare.normalise import Statistics, normalise_features
from tasks.prepare.split import plan_split
from tasks.storage.store import ArtifactStore, load_array, load_json

WEATHER = ["temp", "atemp", "hum", "windspeed"]


def _days(*texts: str) -> np.ndarray:
    return np.array(texts, dtype="datetime64[D]")


def test_the_day_before_is_the_row_of_exactly_the_previous_date_whatever_the_order():
    # 01-04 follows a gap (01-03 missing); the rows are not in date order.
    dates = _days("2011-01-02", "2011-01-01", "2011-01-04", "2011-01-05")
    np.testing.assert_array_equal(previous_day_index(dates), [1, -1, -1, 2])


def test_the_day_before_stays_within_each_station():
    dates = _days("2011-01-01", "2011-01-01", "2011-01-02", "2011-01-02", "2011-01-03")
    stations = np.array([7, 9, 7, 9, 9])
    np.testing.assert_array_equal(previous_day_index(dates, stations), [-1, -1, 0, 1, 3])
    with pytest.raises(ValueError, match=r"repeat a date .*several stations"):
        previous_day_index(dates)  # without station ids the dates repeat


def test_fallback_message_counts_the_rows_without_a_day_before():
    dates = _days("2011-01-01", "2011-01-02", "2011-01-05", "2011-01-06")
    index = previous_day_index(dates)
    message = fallback_message(index, dates)
    assert message is not None
    assert "2 of 4 rows" in message and "2011-01-01, 2011-01-05" in message
    assert fallback_message(index[[1, 3]], dates[[1, 3]]) is None  # both have a day before


def test_previous_day_columns_follow_the_weather_and_fall_back_to_the_own_day():
    frame = make_day_frame(6, seed=1).drop(index=3).reset_index(drop=True)  # a gap
    raw = frame[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame["dteday"].to_numpy().astype("datetime64[D]")
    encoding = fit_encoding("ordinal", FEATURE_COLUMNS, previous_weather=True)
    assert encoding.encoded_names() == (*FEATURE_COLUMNS, *(f"prev:{n}" for n in WEATHER))
    with pytest.warns(PreviousWeatherWarning, match="2 of 5 rows"):
        encoded = encoding.encode(raw, dates)
    weather = frame[WEATHER].to_numpy(np.float32)
    np.testing.assert_allclose(encoded[:, : len(FEATURE_COLUMNS)], raw, rtol=1e-6)
    # Row 0 is the first day and row 3 follows the missing day: both take their own weather.
    expected = np.stack([weather[0], weather[0], weather[1], weather[3], weather[3]])
    np.testing.assert_allclose(encoded[:, -4:], expected)


def test_previous_weather_is_refused_where_the_day_before_is_not_one_row():
    with pytest.raises(ValidationError, match="needs daily rows"):
        RetrainConfig.model_validate(
            {"granularity": "hour", "model": {"architecture": "shared-weather"}}
        )
    with pytest.raises(ValidationError, match="does not fit two-input"):
        RetrainConfig.model_validate(
            {"model": {"architecture": "two-input"}, "features": {"previous_weather": True}}
        )
    # The zoo entry turns it on; other entries may take the extra columns too.
    shared = RetrainConfig.model_validate({"model": {"architecture": "shared-weather"}})
    assert shared.features.previous_weather
    assert not RetrainConfig().features.previous_weather


def test_training_rows_look_back_across_split_boundaries_and_the_file_start_is_warned(
    tmp_path: Path, table_from_frame, caplog: pytest.LogCaptureFixture
):
    store = ArtifactStore(tmp_path)
    frame = make_records(60, stations=3, seed=2)
    # Station 31002 misses one day in the middle: its next day has no day before.
    gap = np.sort(frame["dteday"].unique())[30]
    frame = frame[(frame["station"] != 31002) | (frame["dteday"] != gap)].reset_index(drop=True)
    table = table_from_frame(store, frame)
    plan = plan_split(load_array(table.dates), 10, 0.2)
    with caplog.at_level(logging.WARNING):
        data = normalise_features.fn(
            table, plan, str(tmp_path), FeatureConfig(previous_weather=True)
        )
    # Three stations' first day, and 31002's day after the gap.
    assert "4 of 179 rows have no row for the day before" in caplog.text

    stats = Statistics.model_validate(load_json(data.statistics_file))
    assert stats.encoding.previous_day == tuple(WEATHER)
    assert stats.feature_names[-4:] == tuple(f"prev:{n}" for n in WEATHER)
    # The shipped statistics alone rebuild the test inputs from raw rows, deriving the day
    # before from the dates and stations (the first test day looks back into validation).
    raw = frame[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame["dteday"].to_numpy().astype("datetime64[D]")
    stations = frame["station"].to_numpy()
    window = slice(plan.test.start - 3, plan.test.stop)  # with the day before, per station
    with pytest.warns(PreviousWeatherWarning, match="3 of"):  # the window's first day
        rebuilt = stats.prepare_features(raw[window], dates[window], stations[window])[3:]
    np.testing.assert_allclose(rebuilt, load_array(data.x_test), atol=1e-5)
    row = plan.test.start
    before = (stations == stations[row]) & (dates == dates[row] - np.timedelta64(1, "D"))
    assert before.sum() == 1 and np.flatnonzero(before)[0] < row  # a validation row
    expected = frame[WEATHER].to_numpy()[before][0]
    mean, std = np.array(stats.feature_mean[-4:]), np.array(stats.feature_std[-4:])
    np.testing.assert_allclose(load_array(data.x_test)[0, -4:] * std + mean, expected, atol=1e-5)


def test_without_previous_weather_the_statistics_file_has_no_trace_of_it(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    frame = make_day_frame(80, seed=5)
    from tasks.prepare.validate import TableData

    dates = frame["dteday"].to_numpy().astype("datetime64[D]")
    table = TableData(
        source="generated",
        source_sha256="0" * 64,
        rows=len(frame),
        first_date=str(dates[0]),
        last_date=str(dates[-1]),
        feature_names=FEATURE_COLUMNS,
        dates=store.put_array(dates),
        features=store.put_array(frame[list(FEATURE_COLUMNS)].to_numpy(np.float32)),
        target=store.put_array(frame[["cnt"]].to_numpy(np.float32)),
        report=store.put_json({}),
    )
    plan = plan_split(dates, 10, 0.1)
    data = normalise_features.fn(table, plan, str(tmp_path))
    assert "previous_day" not in load_json(data.statistics_file)["encoding"]
