"""The graph's preprocessing equals the bundle's, step by step, far beyond the training years."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from pandas.tseries.holiday import USFederalHolidayCalendar

from schemas.records import FEATURE_COLUMNS, FLOAT_COLUMNS
from tasks.models.export_graph import (
    FIRST_DATE,
    LAST_DATE,
    bikes_from_output,
    day_numbers,
    encoded_features,
    holiday_table,
    normalised,
    station_table,
)
from tasks.prepare.encode import ONE_HOT_DOMAINS, FeatureEncoding, StationVocabulary
from tasks.prepare.statistics import Statistics


def as_text(days: np.ndarray) -> tf.Tensor:
    return tf.constant(np.datetime_as_string(days.astype("datetime64[D]"), unit="D"))


def test_day_numbers_are_numpy_days_over_the_whole_range():
    rng = np.random.default_rng(0)
    first, last = int(FIRST_DATE.astype(np.int64)), int(LAST_DATE.astype(np.int64))
    edges = np.array(["1904-02-29", "2000-02-29", "2100-02-28", "2100-03-01"], "datetime64[D]")
    days = np.concatenate(
        [rng.integers(first, last + 1, 5000), [first, last], edges.astype(np.int64)]
    )
    assert np.array_equal(day_numbers(as_text(days)).numpy(), days)


def every_holiday() -> FeatureEncoding:
    return FeatureEncoding(
        kind="one-hot",
        raw_names=FEATURE_COLUMNS,
        categories=dict(ONE_HOT_DOMAINS),
        holiday_calendar="us-federal",
        holidays=tuple(rule.name for rule in USFederalHolidayCalendar.rules),
        holiday_window_days=3,
    )


@pytest.mark.parametrize(
    "years", [("1905", "1906"), ("2011", "2013"), ("2020", "2025"), ("2190", "2192")]
)
def test_holiday_windows_and_one_hot_columns_equal_the_encoding(years: tuple[str, str]):
    encoding = every_holiday()
    dates = np.arange(np.datetime64(f"{years[0]}-01-01"), np.datetime64(f"{years[1]}-01-01"))
    rng = np.random.default_rng(1)
    raw = np.column_stack(
        [
            rng.uniform(0, 1, len(dates)).round(6)
            if name in FLOAT_COLUMNS
            else rng.integers(0, 14, len(dates))  # beyond every domain too: all-zero one-hot
            for name in FEATURE_COLUMNS
        ]
    ).astype(np.float64)
    expected = encoding.encode(raw, dates)
    columns = {
        name: tf.constant(raw[:, index] if name in FLOAT_COLUMNS else raw[:, index].astype(int))
        for index, name in enumerate(FEATURE_COLUMNS)
    }
    got = encoded_features(columns, day_numbers(as_text(dates)), encoding, holiday_table(encoding))
    assert got.shape == expected.shape
    assert np.array_equal(got.numpy(), expected.astype(np.float64))
    # The windows are there (a rule may start later: Martin Luther King Day from 1986).
    near = [i for i, name in enumerate(encoding.encoded_names()) if name.startswith("near:")]
    assert len(near) == 11 and expected[:, near].sum() >= 7 * 5


def statistics_for(transform: str) -> Statistics:
    return Statistics(
        feature_names=("a", "b"),
        feature_mean=(1.5, -2.0),
        feature_std=(0.5, 3.0),
        target_mean=7.25,
        target_std=1.75,
        train_rows=10,
        target_transform=transform,  # type: ignore[arg-type]
        stations=StationVocabulary(ids=(3, 31000, 31007)),
    )


@pytest.mark.parametrize("transform", ["none", "log", "sqrt"])
def test_the_output_becomes_bikes_as_the_statistics_denormalise_it(transform: str):
    statistics = statistics_for(transform)
    output = np.linspace(-6, 3, 50, dtype=np.float32).reshape(-1, 1)
    expected = statistics.denormalise_target(output).ravel()
    assert np.allclose(
        bikes_from_output(tf.constant(output), statistics).numpy(), expected, 0, 1e-9
    )
    features = np.random.default_rng(2).normal(size=(20, 2))
    assert np.array_equal(
        normalised(tf.constant(features), statistics).numpy(),
        statistics.normalise_features(features),
    )


def test_station_ids_map_to_the_vocabulary_indices_and_unknown_ones_to_zero():
    statistics = statistics_for("none")
    ids = np.array([3, 31000, 31007, 31001, 0, -5, 99999, 31007])
    table = station_table(statistics)
    assert np.array_equal(
        table.lookup(tf.constant(ids)).numpy(), statistics.station_indices(ids).ravel()
    )
