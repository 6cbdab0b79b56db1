"""Feature encodings and target transforms: how raw columns become model inputs and targets.

The seed encodes categorical columns as one-hot vectors and keeps ordinal ones as integers.
A station column becomes an index into a vocabulary of the training rows' station ids (the
model's Embedding input). The encoding and the vocabulary are recorded in the statistics
(``normalisation.json``), so they travel with the model: new rows are encoded exactly the way
the training rows were.

Holiday windows follow Prophet's holiday effects: one indicator column per named holiday,
1 within ``holiday_window_days`` days of it. The raw ``holiday`` flag marks the day itself
only, so it cannot tell the days around Thanksgiving or Christmas (far below an ordinary
day) from any other day.

Previous-day weather (the ``shared-weather`` zoo entry) adds the weather columns of each row's
day before as ``prev:<name>`` columns after the weather. Yesterday's weather is known when today
is predicted, so it is derived from the rows themselves, the same way for training and
prediction: row t takes the weather of the row with the same station and exactly the previous
date. When there is none (the first day of a file, a missing day, a station's first day) the
row falls back to its own day's weather, and the caller reports how many rows did.
"""

from __future__ import annotations

import warnings
from functools import cache
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

# The categories of each one-hot column are the schema's domain, not the values seen in the
# training rows: a category absent from training (weathersit 4 in day.csv) still gets its
# column, so every later row encodes to the same width.
ONE_HOT_DOMAINS: dict[str, tuple[int, ...]] = {
    "season": (1, 2, 3, 4),
    "mnth": tuple(range(1, 13)),
    "weekday": tuple(range(7)),
    "weathersit": (1, 2, 3, 4),
}

TargetTransform = Literal["none", "log", "sqrt"]
HolidayCalendar = Literal["none", "us-federal"]

# Holiday columns join the calendar block: they go before the trailing weather columns (temp,
# atemp, hum, windspeed), which the two-input model feeds to a branch of its own.
WEATHER_COLUMNS = 4
HOLIDAY_PREFIX = "near:"
PREVIOUS_PREFIX = "prev:"


class PreviousWeatherWarning(UserWarning):
    """Some rows had no row for the day before and used their own day's weather instead."""


def previous_day_index(dates: np.ndarray, stations: np.ndarray | None = None) -> np.ndarray:
    """Each row's row index of the same station's previous date, -1 when no row has it.

    Order-free (rows are matched by key, not by position). Raises ``ValueError`` when two rows
    share a station and date: then "the day before" names no single row (an hourly table).
    """
    days = np.asarray(dates).astype("datetime64[D]").astype(np.int64)
    ids = np.zeros(len(days), np.int64) if stations is None else np.asarray(stations, np.int64)
    if len(ids) != len(days):
        raise ValueError(f"{len(ids)} station ids for {len(days)} dates")
    order = np.lexsort((days, ids))  # by station, then date
    ids, days = ids[order], days[order]
    same_station = ids[1:] == ids[:-1]
    if np.any(same_station & (days[1:] == days[:-1])):
        raise ValueError(
            "previous-day weather needs one row per date (and station): some rows repeat a "
            "date" + ("" if stations is not None else " (are they several stations' rows?)")
        )
    follows = same_station & (days[1:] == days[:-1] + 1)
    index = np.full(len(order), -1, dtype=np.int64)
    index[order[1:][follows]] = order[:-1][follows]
    return index


def fallback_message(index: np.ndarray, dates: np.ndarray, shown: int = 3) -> str | None:
    """The warning for rows without a previous day (``index`` -1), or None when there are none."""
    missing = np.flatnonzero(np.asarray(index) < 0)
    if not len(missing):
        return None
    # Several stations share a first day: each date is listed once.
    days = np.unique(np.asarray(dates).astype("datetime64[D]")[missing])
    listed = ", ".join(str(day) for day in days[:shown]) + (", ..." if len(days) > shown else "")
    return (
        f"previous-day weather: {len(missing)} of {len(index)} rows have no row for the day "
        f"before (first day of the file, or a gap) and use their own day's weather: {listed}"
    )


@cache
def _calendar_rules(calendar: str) -> dict[str, Any]:
    from pandas.tseries.holiday import USFederalHolidayCalendar

    if calendar != "us-federal":
        raise ValueError(f"unknown holiday calendar {calendar!r}; choose 'us-federal'")
    return {rule.name: rule for rule in USFederalHolidayCalendar.rules}


def holiday_dates(
    calendar: str, name: str, first: np.datetime64, last: np.datetime64
) -> np.ndarray:
    """Sorted observed dates (datetime64[D]) of one named holiday between two dates."""
    rules = _calendar_rules(calendar)
    if name not in rules:
        raise ValueError(f"holiday {name!r} is not in the {calendar} calendar: {sorted(rules)}")
    days = rules[name].dates(str(first), str(last))
    return np.sort(np.asarray(days.values, dtype="datetime64[D]"))


def days_to_nearest(dates: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Absolute days from each date to the nearest of the sorted ``marks`` (int64 max if none)."""
    far = np.iinfo(np.int64).max
    days = np.asarray(dates).astype("datetime64[D]").astype(np.int64)
    if len(marks) == 0:
        return np.full(len(days), far, dtype=np.int64)
    points = np.asarray(marks).astype("datetime64[D]").astype(np.int64)
    after = np.searchsorted(points, days)
    next_gap = np.where(after < len(points), points[np.minimum(after, len(points) - 1)] - days, far)
    prev_gap = np.where(after > 0, days - points[np.maximum(after - 1, 0)], far)
    return np.minimum(next_gap, prev_gap)


class FeatureEncoding(BaseModel):
    """Which raw columns are expanded into indicator columns, and their categories."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ordinal", "one-hot"] = "ordinal"
    raw_names: tuple[str, ...] = ()
    categories: dict[str, tuple[int, ...]] = {}
    holiday_calendar: HolidayCalendar = "none"
    holidays: tuple[str, ...] = ()
    holiday_window_days: int = 3
    # The raw columns also taken from each row's previous day (None: none, and the field is
    # left out of normalisation.json, whose digest stays the one before it existed).
    previous_day: tuple[str, ...] | None = None

    @property
    def adds_columns(self) -> bool:
        """Whether encoding changes the raw columns (one-hot, holiday windows, previous day)."""
        return bool(self.categories or self.holidays or self.previous_day)

    def previous_day_rows(self, raw: np.ndarray, index: np.ndarray, start: int = 0) -> np.ndarray:
        """The ``previous_day`` columns of each row's day before (``index`` from
        ``previous_day_index``); a row without one (-1) takes its own (``start``: its offset).
        """
        index = np.asarray(index, dtype=np.int64)
        own = np.arange(start, start + len(index), dtype=np.int64)
        columns = [self.raw_names.index(name) for name in self.previous_day or ()]
        return np.asarray(raw[np.where(index >= 0, index, own)])[:, columns]

    def _holidays_before(self, index: int) -> bool:
        return bool(self.holidays) and index == len(self.raw_names) - WEATHER_COLUMNS

    def encoded_names(self) -> tuple[str, ...]:
        """Names of the encoded columns, in order (a one-hot column becomes name=value)."""
        names: list[str] = []
        for index, name in enumerate(self.raw_names):
            if self._holidays_before(index):
                names += [f"{HOLIDAY_PREFIX}{holiday}" for holiday in self.holidays]
            if name in self.categories:
                names += [f"{name}={value}" for value in self.categories[name]]
            else:
                names.append(name)
        names += [f"{PREVIOUS_PREFIX}{name}" for name in self.previous_day or ()]
        return tuple(names)

    def holiday_columns(self, dates: np.ndarray) -> np.ndarray:
        """One 0/1 column per holiday: 1 where the date is within that holiday's window."""
        days = np.asarray(dates).astype("datetime64[D]")
        # A year of margin finds the nearest occurrence across a year boundary too.
        first, last = days.min() - np.timedelta64(366, "D"), days.max() + np.timedelta64(366, "D")
        columns = [
            days_to_nearest(days, holiday_dates(self.holiday_calendar, name, first, last))
            <= self.holiday_window_days
            for name in self.holidays
        ]
        return np.stack(columns, axis=1).astype(np.float32)

    def encode(
        self,
        raw: np.ndarray,
        dates: np.ndarray | None = None,
        previous: np.ndarray | None = None,
        stations: np.ndarray | None = None,
    ) -> np.ndarray:
        """Encode raw feature rows (columns in ``raw_names`` order; their dates for holidays).

        With ``previous_day``: ``previous`` holds those columns of each row's day before
        (``previous_day_rows``); without it they are derived from these rows' dates (and
        ``stations``), and a ``PreviousWeatherWarning`` says how many rows fell back.
        """
        if not self.adds_columns:
            return np.asarray(raw)  # ordinal: the raw columns as they are
        if raw.shape[1] != len(self.raw_names):
            raise ValueError(f"expected {len(self.raw_names)} raw columns, got {raw.shape[1]}")
        if self.holidays and (dates is None or len(dates) != len(raw)):
            given = "no dates" if dates is None else f"{len(dates)} dates"
            raise ValueError(f"holiday windows need one date per row: {given} for {len(raw)} rows")
        if self.previous_day and previous is None:
            if dates is None or len(dates) != len(raw):
                raise ValueError("previous-day columns need each row's date to find its day before")
            before = previous_day_index(dates, stations)
            message = fallback_message(before, dates)
            if message:
                warnings.warn(message, PreviousWeatherWarning, stacklevel=2)
            previous = self.previous_day_rows(raw, before)
        parts: list[np.ndarray] = []
        for index, name in enumerate(self.raw_names):
            if self._holidays_before(index):
                parts.append(self.holiday_columns(np.asarray(dates)))
            column = np.asarray(raw[:, index])
            if name in self.categories:
                values = np.asarray(self.categories[name], dtype=column.dtype)
                parts.append((column[:, None] == values[None, :]).astype(np.float32))
            else:
                parts.append(column[:, None].astype(np.float32))
        if self.previous_day:
            assert previous is not None  # derived above when not given
            if np.shape(previous) != (len(raw), len(self.previous_day)):
                raise ValueError(
                    f"expected previous-day rows of shape {(len(raw), len(self.previous_day))}, "
                    f"got {np.shape(previous)}"
                )
            parts.append(np.asarray(previous, dtype=np.float32))
        return np.hstack(parts)


def fit_encoding(
    kind: Literal["ordinal", "one-hot"],
    raw_names: tuple[str, ...],
    holiday_calendar: HolidayCalendar = "none",
    holiday_window_days: int = 3,
    train_dates: np.ndarray | None = None,
    previous_weather: bool = False,
) -> FeatureEncoding:
    """Build the encoding for the table's columns (one-hot: the known categorical columns).

    With a holiday calendar, each holiday whose window touches a training date gets a column;
    one that never does would be a constant 0 in training, with nothing to learn from.
    ``previous_weather`` adds the day before's weather (the last four raw columns).
    """
    categories = (
        {name: ONE_HOT_DOMAINS[name] for name in raw_names if name in ONE_HOT_DOMAINS}
        if kind == "one-hot"
        else {}
    )
    holidays: tuple[str, ...] = ()
    if holiday_calendar != "none":
        if train_dates is None or len(train_dates) == 0:
            raise ValueError("holiday windows are fitted on the training dates; none were given")
        if len(raw_names) <= WEATHER_COLUMNS:
            raise ValueError(f"holiday windows need calendar columns before {raw_names[-4:]}")
        days = np.asarray(train_dates).astype("datetime64[D]")
        margin = np.timedelta64(holiday_window_days, "D")
        first, last = days.min() - margin, days.max() + margin
        holidays = tuple(
            name
            for name in _calendar_rules(holiday_calendar)
            if len(holiday_dates(holiday_calendar, name, first, last))
        )
    if previous_weather and len(raw_names) <= WEATHER_COLUMNS:
        raise ValueError(f"previous-day weather needs calendar columns before {raw_names[-4:]}")
    return FeatureEncoding(
        kind=kind,
        raw_names=raw_names,
        categories=categories,
        holiday_calendar=holiday_calendar,
        holidays=holidays,
        holiday_window_days=holiday_window_days,
        previous_day=tuple(raw_names[-WEATHER_COLUMNS:]) if previous_weather else None,
    )


# The index of every station the training rows did not have (first seen in validation, test
# or a prediction input): they share one learned vector, "a station the model has not seen".
UNKNOWN_STATION = 0
STATION_CHUNK_ROWS = 1 << 20


class StationVocabulary(BaseModel):
    """The training rows' station ids, sorted: ``ids[i]`` has index ``i + 1``, 0 is unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ids: tuple[int, ...]

    @field_validator("ids")
    @classmethod
    def _sorted_and_unique(cls, ids: tuple[int, ...]) -> tuple[int, ...]:
        # searchsorted in ``index`` is only right on strictly increasing ids; a hand-edited
        # normalisation.json must not map stations to the wrong vectors silently.
        if not ids or any(b <= a for a, b in pairwise(ids)):
            raise ValueError("station ids must be a non-empty, strictly increasing list")
        return ids

    @property
    def size(self) -> int:
        """Rows of the embedding table: one per known station plus the unknown station."""
        return len(self.ids) + 1

    def index(self, stations: np.ndarray) -> np.ndarray:
        """Map station ids to int32 indices 1..V; an id not in the vocabulary maps to 0."""
        known = np.asarray(self.ids, dtype=np.int64)
        ids = np.asarray(stations, dtype=np.int64)
        position = np.searchsorted(known, ids)
        found = known[np.minimum(position, len(known) - 1)] == ids
        return np.where(found, position + 1, UNKNOWN_STATION).astype(np.int32)


def fit_station_vocabulary(
    stations: np.ndarray, chunk_rows: int = STATION_CHUNK_ROWS
) -> StationVocabulary:
    """The sorted unique station ids of these (training) rows, read chunk by chunk."""
    seen = np.empty(0, dtype=np.int64)
    for begin in range(0, len(stations), chunk_rows):
        chunk = np.asarray(stations[begin : begin + chunk_rows], dtype=np.int64)
        seen = np.union1d(seen, chunk)
    if not len(seen):
        raise ValueError("cannot fit a station vocabulary on zero rows")
    return StationVocabulary(ids=tuple(int(value) for value in seen))


def transform_target(target: np.ndarray, transform: TargetTransform) -> np.ndarray:
    """Counts to the scale the model learns on (log: log(1 + cnt); sqrt: its square root)."""
    values = np.asarray(target, dtype=np.float64)
    if transform in ("log", "sqrt") and np.any(values < 0):
        raise ValueError(f"a {transform} target transform needs counts >= 0")
    if transform == "log":
        return np.log1p(values)
    if transform == "sqrt":
        return np.sqrt(values)
    return values


def invert_target(values: np.ndarray, transform: TargetTransform) -> np.ndarray:
    """The model's scale back to counts (inverse of ``transform_target``)."""
    values = np.asarray(values, dtype=np.float64)
    if transform == "log":
        return np.expm1(values)
    if transform == "sqrt":
        # A negative prediction has no square root; clipping at 0 keeps counts >= 0.
        return np.square(np.maximum(values, 0.0))
    return values
