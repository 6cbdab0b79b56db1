"""Streaming lazy validation of record files and prediction inputs.

A file is read in chunks of rows, so a whole bike-share system's hourly data (millions of
rows) is validated in bounded memory. Each chunk goes through three passes: parsing
(``schemas.csv_reader``) turns text into typed columns and sets aside rows with a bad cell,
so they do not also trip the range rules; the pandera model (``schemas.records``) checks
ranges and the rules between the columns of a row; ``schemas.row_order`` checks the rules
between rows with state carried across chunk borders. All failures are collected (lazy
validation) and reported together with absolute row, column, rule and value.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable, Iterator
from typing import IO

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.config import WeatherScale
from schemas.csv_reader import check_columns, parse_columns, read_chunks, read_header, read_table
from schemas.errors import Failure
from schemas.model_schema import model_schema
from schemas.records import (
    COUNT_COLUMNS,
    DATE_COLUMN,
    DAY_COLUMNS,
    FEATURE_COLUMNS,
    FLOAT_COLUMNS,
    HOUR_COLUMN,
    HOUR_COLUMNS,
    HOUR_FEATURE_COLUMNS,
    HOURLY_PREDICTION_COLUMNS,
    INT_COLUMNS,
    NO_COUNTS_RULE,
    PREDICTION_COLUMNS,
    STATION_COLUMN,
    TARGET_COLUMN,
    Granularity,
    PredictionDays,
    PredictionHours,
    frame_rule,
    record_columns,
    record_model,
)
from schemas.report import ValidationReport, format_value
from schemas.row_order import RowOrder

CHUNK_ROWS = 1 << 20


def check_model(
    frame: pd.DataFrame, model: type[pa.DataFrameModel], report: ValidationReport
) -> None:
    """Run a pandera model lazily and add each failure (row, column, rule, value)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model_schema(model).validate(frame, lazy=True)
        return
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    seen: set[tuple[int, str]] = set()
    for case in cases.itertuples(index=False):
        found = frame_rule(str(case.check))
        rule = found.name if found is not None else str(case.check)
        index = case.index
        if index is None or (isinstance(index, float) and np.isnan(index)):
            report.fail(Failure(None, str(case.column), rule, format_value(case.failure_case)))
            continue
        row = int(index)
        if case.schema_context == "Column" or found is None:
            report.fail(Failure(row + 1, str(case.column), rule, format_value(case.failure_case)))
            continue
        # Frame-level rules come back once per column of the row: report the row once.
        if (row, rule) in seen:
            continue
        seen.add((row, rule))
        value = ", ".join(f"{name}={format_value(frame.at[row, name])}" for name in found.columns)
        report.fail(Failure(row + 1, found.columns[0], rule, value))


def check_record_columns(
    header: list[str], granularity: Granularity, report: ValidationReport
) -> bool:
    """Check a record file's header; an hourly file given as daily (or back) is said so."""
    names = set(header)
    if granularity == "day" and set(HOUR_COLUMNS) <= names:
        report.fail(
            Failure(
                None,
                HOUR_COLUMN,
                "a daily table has no hr column",
                "this looks like hourly data (hour.csv): set granularity to 'hour' "
                "(--granularity hour) or give the daily file",
            )
        )
        return False
    if granularity == "hour" and HOUR_COLUMN not in names and set(DAY_COLUMNS) <= names:
        report.fail(
            Failure(
                None,
                HOUR_COLUMN,
                "an hourly table has an hr column",
                "this looks like daily data (day.csv): set granularity to 'day' "
                "(--granularity day) or give the hourly file",
            )
        )
        return False
    return check_columns(header, record_columns(granularity), report)


class RecordValidator:
    """Validate a CSV of daily or hourly records chunk by chunk, keeping row-to-row rules right.

    ``chunks`` yields the typed rows of each chunk (rows that failed to parse are left out)
    while it fills ``report``; ``finish`` adds the whole-file rules and closes the report.
    """

    def __init__(
        self,
        file: str,
        granularity: Granularity = "day",
        min_days: int = 1,
        chunk_rows: int | None = None,
        weather_scale: WeatherScale = "uci",
    ) -> None:
        self.report = ValidationReport(file=file)
        self.granularity = granularity
        self.min_days = min_days
        # Read when validating starts, so that tests can make chunks small.
        self.chunk_rows = chunk_rows
        self.columns = record_columns(granularity)
        # Rows built from trips keep raw weather over UCI's divisors: wider bounds than [0, 1].
        self.model = record_model(granularity, weather_scale)
        self.order = RowOrder(granularity)
        self.seconds: dict[str, float] = {
            "parse": 0.0,
            "schema": 0.0,
            "sequence": 0.0,
        }  # parse / schema / sequence: where time goes
        self._counts: list[np.ndarray] = []

    @property
    def has_station(self) -> bool:
        """True once the header has shown a ``station`` column."""
        return self.order.has_station

    @property
    def days(self) -> int:
        """The distinct dates seen so far."""
        return self.order.days

    def chunks(self, handle: IO[bytes]) -> Iterator[pd.DataFrame]:
        """Yield the typed rows of each chunk of a binary CSV stream, filling the report."""
        report = self.report
        header = read_header(handle, report)
        if header is None or not check_record_columns(header, self.granularity, report):
            return
        self.order.has_station = STATION_COLUMN in header
        ints = [c for c in header if c not in (DATE_COLUMN, *FLOAT_COLUMNS)]
        raw_chunks = read_chunks(handle, (DATE_COLUMN,), self.chunk_rows or CHUNK_ROWS, report)
        while True:
            started = time.perf_counter()
            raw = next(raw_chunks, None)
            if raw is None:
                break
            report.rows += len(raw)
            typed = parse_columns(raw, ints, FLOAT_COLUMNS, DATE_COLUMN, report)
            parsed = time.perf_counter()
            self.seconds["parse"] += parsed - started
            if len(typed):
                check_model(typed, self.model, report)
            checked = time.perf_counter()
            self.seconds["schema"] += checked - parsed
            if len(typed):
                self.order.check(typed, report)
                self._suspicious(typed)
            self.seconds["sequence"] += time.perf_counter() - checked
            yield typed

    def _suspicious(self, frame: pd.DataFrame) -> None:
        """Warnings for legal but unlikely daily values (hours are often calm or dry)."""
        if self.granularity != "day":
            return
        rules = (
            ("hum", "humidity exactly 0 is implausible for a whole day"),
            ("windspeed", "wind speed exactly 0 for a whole day"),
        )
        for column, rule in rules:
            for index in np.flatnonzero(frame[column].to_numpy() == 0.0):
                row = frame.index[index]
                value = (
                    f"{format_value(frame.at[row, column])} on "
                    f"{format_value(frame.at[row, DATE_COLUMN])}"
                )
                self.report.warn(Failure(int(row) + 1, column, rule, value))
        self._counts.append(frame[TARGET_COLUMN].to_numpy())

    def finish(self) -> ValidationReport:
        """Add the whole-file rules (enough days; outlier counts) and close the report."""
        report = self.report
        # A header with no rows is too few days too (it must not pass as an empty table).
        if self.days < self.min_days and report.ok:
            report.fail(
                Failure(
                    None,
                    None,
                    f"at least {self.min_days} days for the split asked for",
                    f"{self.days} days",
                )
            )
        self.order.finish(report)
        if report.ok and self._counts:
            counts = np.concatenate(self._counts)
            median = float(np.median(counts))
            for index in np.flatnonzero(counts < 0.05 * median):
                report.warn(
                    Failure(
                        int(index) + 1,
                        TARGET_COLUMN,
                        "cnt below 5% of the median day (an outage or a storm?)",
                        f"{int(counts[index])} (median {median:.0f})",
                    )
                )
        self._counts = []
        report.close()
        return report


def validate_csv(
    handle: IO[bytes],
    file: str,
    min_days: int,
    granularity: Granularity = "day",
    chunk_rows: int | None = None,
    on_chunk: Callable[[pd.DataFrame], None] = lambda chunk: None,
    weather_scale: WeatherScale = "uci",
) -> ValidationReport:
    """Validate a CSV stream chunk by chunk; ``on_chunk`` receives each chunk's typed rows."""
    validator = RecordValidator(file, granularity, min_days, chunk_rows, weather_scale)
    for chunk in validator.chunks(handle):
        on_chunk(chunk)
    return validator.finish()


def validate_day_csv(
    data: bytes,
    file: str,
    min_rows: int,
    granularity: Granularity = "day",
    chunk_rows: int | None = None,
    weather_scale: WeatherScale = "uci",
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Validate the bytes of a small file; return the typed frame (if valid) and the report."""
    parts: list[pd.DataFrame] = []
    report = validate_csv(
        io.BytesIO(data), file, min_rows, granularity, chunk_rows, parts.append, weather_scale
    )
    if not report.ok or not parts:
        return None, report
    return pd.concat(parts), report


def validate_prediction_csv(
    data: bytes, file: str, granularity: Granularity = "day"
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Validate the bytes of a prediction input CSV; return the typed frame and the report.

    The typed frame has ``dteday``, ``station`` if the file has one (integer station ids, for
    a model with a station input) and the 11 feature columns (an ``instant`` column, as in a
    trimmed day.csv, is accepted and dropped). For an hourly champion (``granularity`` hour)
    each row is an hour and ``hr`` is a feature, as in hour.csv.
    """
    hourly = granularity == "hour"
    columns = HOURLY_PREDICTION_COLUMNS if hourly else PREDICTION_COLUMNS
    features = HOUR_FEATURE_COLUMNS if hourly else FEATURE_COLUMNS
    report = ValidationReport(file=file)
    frame = read_table(data, report)
    if frame is None:
        return None, report
    report.rows = len(frame)
    present = [str(name) for name in frame.columns]
    counts = [name for name in COUNT_COLUMNS if name in present]
    for name in counts:
        report.failures.append(Failure(None, name, NO_COUNTS_RULE, repr(name)))
    frame = frame.drop(columns=counts)
    expected = (("instant",) if "instant" in present else ()) + columns
    if not check_columns(frame.columns, expected, report) or counts:
        return None, report
    if report.rows == 0:
        report.failures.append(
            Failure(None, None, f"at least 1 {granularity} to predict", "0 rows")
        )
        return None, report
    station = (STATION_COLUMN,) if STATION_COLUMN in present else ()
    int_columns = [name for name in expected if name in (*INT_COLUMNS, HOUR_COLUMN)] + list(station)
    typed = parse_columns(frame, int_columns, FLOAT_COLUMNS, DATE_COLUMN, report)
    if "instant" in typed.columns:
        typed = typed.drop(columns=["instant"])
    if len(typed):
        check_model(typed, PredictionHours if hourly else PredictionDays, report)
    report.failures.sort(key=lambda item: (item.row is not None, item.row or 0))
    if not report.ok:
        return None, report
    return typed[[DATE_COLUMN, *station, *features]], report
