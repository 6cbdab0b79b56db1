"""A bundle's preprocessing as TensorFlow ops: raw columns to model inputs, its output to bikes.

Each function mirrors one step of ``ModelBundle.predict_arrays`` (``tasks.prepare.encode``,
``tasks.prepare.statistics``) in the same dtypes, so that a graph built from them predicts
what the bundle predicts: the date string to a day number, the holiday windows (from a table
of the holidays' dates computed here, once, with the calendar the bundle uses), one-hot
columns, scaling, the station lookup and the inverse target transform. Imports TensorFlow:
only ``tasks.models.export`` imports this module, when an export runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tasks.prepare.encode import WEATHER_COLUMNS, FeatureEncoding, holiday_dates
from tasks.prepare.statistics import Statistics

DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
# The holiday table's years: generous, so any date a model could be asked about is inside it.
# A date's nearest occurrence of a holiday is within a year of it, so the table must reach a
# year beyond every date it answers for (the bundle looks a year around its dates too).
TABLE_FIRST_DAY = np.datetime64("1900-01-01")
TABLE_LAST_DAY = np.datetime64("2199-12-31")
TABLE_MARGIN_DAYS = 366
FIRST_DATE = TABLE_FIRST_DAY + np.timedelta64(TABLE_MARGIN_DAYS, "D")
LAST_DATE = TABLE_LAST_DAY - np.timedelta64(TABLE_MARGIN_DAYS, "D")
FAR_DAYS = np.iinfo(np.int64).max


def days_from_civil(year: tf.Tensor, month: tf.Tensor, day: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 of a proleptic Gregorian date (int64; H. Hinnant's algorithm)."""
    shifted = year - tf.cast(month <= 2, tf.int64)  # the year counted from March
    era = tf.math.floordiv(shifted, 400)
    year_of_era = shifted - era * 400
    day_of_year = (153 * tf.math.floormod(month + 9, 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def day_numbers(dates: tf.Tensor) -> tf.Tensor:
    """Days since 1970-01-01 (int64) of ``YYYY-MM-DD`` strings; a bad or out-of-range date fails.

    The checks raise ``InvalidArgumentError`` naming the dates, as the CSV reader of
    ``bikeflow predict`` refuses a date it cannot read.
    """
    dates = tf.strings.strip(dates)
    well_formed = tf.strings.regex_full_match(dates, DATE_PATTERN)
    tf.debugging.Assert(
        tf.reduce_all(well_formed),
        ["dteday must be a date YYYY-MM-DD; got", tf.boolean_mask(dates, ~well_formed)],
        summarize=5,
    )
    # A malformed string would stop to_number; the assertion above has already failed then.
    safe = tf.where(well_formed, dates, "1970-01-01")
    year = tf.strings.to_number(tf.strings.substr(safe, 0, 4), tf.int64)
    month = tf.strings.to_number(tf.strings.substr(safe, 5, 2), tf.int64)
    day = tf.strings.to_number(tf.strings.substr(safe, 8, 2), tf.int64)
    first_of_month = days_from_civil(year, month, tf.ones_like(day))
    next_month = tf.math.floormod(month, 12) + 1
    next_year = year + tf.cast(month == 12, tf.int64)
    month_days = days_from_civil(next_year, next_month, tf.ones_like(day)) - first_of_month
    real = (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    tf.debugging.Assert(
        tf.reduce_all(real),
        ["dteday is not a calendar date:", tf.boolean_mask(dates, ~real)],
        summarize=5,
    )
    numbers = first_of_month + day - 1
    first, last = (int(value.astype(np.int64)) for value in (FIRST_DATE, LAST_DATE))
    inside = (numbers >= first) & (numbers <= last)
    tf.debugging.Assert(
        tf.reduce_all(inside),
        [
            f"dteday must be between {FIRST_DATE} and {LAST_DATE}; got",
            tf.boolean_mask(dates, ~inside),
        ],
        summarize=5,
    )
    return numbers


def holiday_table(encoding: FeatureEncoding) -> dict[str, np.ndarray]:
    """Each holiday's observed dates over the table's years, as sorted int64 day numbers."""
    return {
        name: holiday_dates(encoding.holiday_calendar, name, TABLE_FIRST_DAY, TABLE_LAST_DAY)
        .astype("datetime64[D]")
        .astype(np.int64)
        for name in encoding.holidays
    }


def within_window(days: tf.Tensor, marks: np.ndarray, window_days: int) -> tf.Tensor:
    """1.0 (float32) where a day is within ``window_days`` of one of the sorted ``marks``."""
    if len(marks) == 0:
        return tf.zeros_like(days, dtype=tf.float32)
    points = tf.constant(marks, dtype=tf.int64)
    count = len(marks)
    after = tf.searchsorted(points, days, side="left", out_type=tf.int64)
    far = tf.constant(FAR_DAYS, tf.int64)
    next_gap = tf.where(after < count, tf.gather(points, tf.minimum(after, count - 1)) - days, far)
    prev_gap = tf.where(after > 0, days - tf.gather(points, tf.maximum(after - 1, 0)), far)
    return tf.cast(tf.minimum(next_gap, prev_gap) <= window_days, tf.float32)


def encoded_features(
    columns: Mapping[str, tf.Tensor],
    days: tf.Tensor | None,
    encoding: FeatureEncoding,
    holidays: Mapping[str, np.ndarray],
) -> tf.Tensor:
    """The encoded feature matrix (float64) of raw columns, as ``FeatureEncoding.encode`` makes it.

    ``columns`` maps each raw name to its column (int64 or float64); ``days`` are the rows'
    day numbers (needed for holiday windows).
    """
    raw = [tf.cast(columns[name], tf.float64) for name in encoding.raw_names]
    if not encoding.adds_columns:
        return tf.stack(raw, axis=1)  # ordinal: the raw columns as they are, in float64
    if encoding.previous_day:
        raise ValueError("previous-day columns cannot be computed in the graph")
    parts: list[tf.Tensor] = []
    holiday_start = len(encoding.raw_names) - WEATHER_COLUMNS
    for index, name in enumerate(encoding.raw_names):
        if encoding.holidays and index == holiday_start:
            if days is None:
                raise ValueError("holiday windows need the rows' dates")
            window = encoding.holiday_window_days
            parts += [
                within_window(days, holidays[holiday], window)[:, None]
                for holiday in encoding.holidays
            ]
        if name in encoding.categories:
            values = tf.constant(encoding.categories[name], dtype=tf.float64)
            parts.append(tf.cast(raw[index][:, None] == values[None, :], tf.float32))
        else:
            # The encoding writes every column as float32 before scaling: so must the graph.
            parts.append(tf.cast(raw[index], tf.float32)[:, None])
    return tf.cast(tf.concat(parts, axis=1), tf.float64)


def normalised(features: tf.Tensor, statistics: Statistics) -> tf.Tensor:
    """Scale encoded features with the training rows' statistics (float64, then float32)."""
    mean = tf.constant(statistics.feature_mean, dtype=tf.float64)
    std = tf.constant(statistics.feature_std, dtype=tf.float64)
    return tf.cast((features - mean) / std, tf.float32)


def bikes_from_output(output: tf.Tensor, statistics: Statistics) -> tf.Tensor:
    """The model's normalised output (rows x 1) back to bike counts (float64, one per row)."""
    values = tf.reshape(tf.cast(output, tf.float64), [-1])
    values = values * statistics.target_std + statistics.target_mean
    if statistics.target_transform == "log":
        return tf.math.expm1(values)
    if statistics.target_transform == "sqrt":
        return tf.square(tf.maximum(values, 0.0))
    return values


def station_table(statistics: Statistics) -> tf.lookup.StaticHashTable:
    """Raw station id -> the model's station index (1..V); an unknown station is 0."""
    if statistics.stations is None:
        raise ValueError("these statistics were fitted on a table without stations")
    ids = np.asarray(statistics.stations.ids, dtype=np.int64)
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(ids), tf.constant(np.arange(1, len(ids) + 1, dtype=np.int64))
    )
    return tf.lookup.StaticHashTable(initializer, default_value=0)


def input_blocks(model: Any, station_input: str) -> list[tuple[str, int, int]]:
    """Name and column block of each feature input of a Keras model, in order (as the bundle
    cuts its feature matrix, ``tasks.models.zoo.model_inputs``)."""
    features = [tensor for tensor in model.inputs if tensor.name != station_input]
    widths = [int(tensor.shape[-1]) for tensor in features]
    bounds = [sum(widths[:index]) for index in range(len(widths) + 1)]
    return [(t.name, bounds[i], bounds[i + 1]) for i, t in enumerate(features)]


def check_width(blocks: Sequence[tuple[str, int, int]], columns: int) -> None:
    """Raise ``ValueError`` when the model's inputs do not take ``columns`` encoded columns."""
    if not blocks or blocks[-1][2] != columns:
        widths = [stop - start for _, start, stop in blocks]
        raise ValueError(f"the model takes {sum(widths)} columns in {widths}, not {columns}")
