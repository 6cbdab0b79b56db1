"""Schemas of the daily and hourly bike-sharing records, and their streaming lazy validation.

A file is read in chunks of rows, so a whole bike-share system's hourly data (millions of
rows) is validated in bounded memory. Each chunk goes through two passes. Parsing turns CSV
text into typed columns and records every cell that is empty or not a number/date of the right
kind; rows with such cells are set aside so they do not also trip the range rules. The pandera
``DayRecords``/``HourRecords`` model then checks ranges and the consistency rules between the
columns of a row. The rules between rows (unique, sorted, no gaps — per station when the file
has a ``station`` column) are checked by ``RecordValidator`` with state carried from one
chunk to the next, so they hold across chunk borders. All failures are collected (lazy
validation) and reported together with absolute row, column, rule and value.
"""

from __future__ import annotations

import io
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tasks.errors import Failure

Granularity = Literal["day", "hour"]

FEATURE_COLUMNS: tuple[str, ...] = (
    "season",
    "yr",
    "mnth",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
)
# hour.csv puts hr after mnth; the four weather columns stay last in both.
HOUR_FEATURE_COLUMNS: tuple[str, ...] = (*FEATURE_COLUMNS[:3], "hr", *FEATURE_COLUMNS[3:])
COUNT_COLUMNS: tuple[str, ...] = ("casual", "registered", "cnt")
TARGET_COLUMN = "cnt"
DATE_COLUMN = "dteday"
HOUR_COLUMN = "hr"
STATION_COLUMN = "station"
DAY_COLUMNS: tuple[str, ...] = ("instant", DATE_COLUMN, *FEATURE_COLUMNS, *COUNT_COLUMNS)
HOUR_COLUMNS: tuple[str, ...] = ("instant", DATE_COLUMN, *HOUR_FEATURE_COLUMNS, *COUNT_COLUMNS)
FLOAT_COLUMNS: tuple[str, ...] = ("temp", "atemp", "hum", "windspeed")
INT_COLUMNS: tuple[str, ...] = tuple(
    name for name in DAY_COLUMNS if name not in (DATE_COLUMN, *FLOAT_COLUMNS)
)
FIRST_YEAR = 2011  # the dataset's yr column counts years from 2011
CHUNK_ROWS = 1 << 20
# A broken file can break one rule on every one of millions of rows: list the first ones.
LISTED_PER_RULE = 50


def feature_columns(granularity: Granularity) -> tuple[str, ...]:
    """The model's input columns for daily or hourly records."""
    return HOUR_FEATURE_COLUMNS if granularity == "hour" else FEATURE_COLUMNS


def record_columns(granularity: Granularity) -> tuple[str, ...]:
    """The columns a daily or hourly file must have (``station`` is optional besides)."""
    return HOUR_COLUMNS if granularity == "hour" else DAY_COLUMNS


class DayRecords(pa.DataFrameModel):
    """One row per day (per station, when there is a station column), as in ``day.csv``."""

    instant: Series[int] = pa.Field(ge=1)
    dteday: Series[pa.DateTime]
    station: Series[int] | None = pa.Field(ge=0)
    season: Series[int] = pa.Field(isin=[1, 2, 3, 4])
    yr: Series[int] = pa.Field(ge=0)
    mnth: Series[int] = pa.Field(ge=1, le=12)
    holiday: Series[int] = pa.Field(isin=[0, 1])
    weekday: Series[int] = pa.Field(ge=0, le=6)
    workingday: Series[int] = pa.Field(isin=[0, 1])
    weathersit: Series[int] = pa.Field(isin=[1, 2, 3, 4])
    temp: Series[float] = pa.Field(ge=0.0, le=1.0)
    atemp: Series[float] = pa.Field(ge=0.0, le=1.0)
    hum: Series[float] = pa.Field(ge=0.0, le=1.0)
    windspeed: Series[float] = pa.Field(ge=0.0, le=1.0)
    casual: Series[int] = pa.Field(ge=0)
    registered: Series[int] = pa.Field(ge=0)
    cnt: Series[int] = pa.Field(ge=0)

    class Config:
        name = "day records"
        strict = True
        coerce = False

    @pa.dataframe_check(name="yr = year of dteday - 2011")
    def yr_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["yr"] == frame["dteday"].dt.year - FIRST_YEAR

    @pa.dataframe_check(name="mnth = month of dteday")
    def month_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["mnth"] == frame["dteday"].dt.month

    @pa.dataframe_check(name="weekday = day of week of dteday (0 = Sunday)")
    def weekday_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["weekday"] == (frame["dteday"].dt.day_of_week + 1) % 7

    @pa.dataframe_check(name="workingday = 1 exactly on Monday-Friday non-holidays")
    def workingday_consistent(cls, frame: pd.DataFrame) -> pd.Series:
        expected = frame["weekday"].between(1, 5) & (frame["holiday"] == 0)
        return frame["workingday"] == expected.astype(int)

    @pa.dataframe_check(name="cnt = casual + registered")
    def counts_add_up(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["cnt"] == frame["casual"] + frame["registered"]


class HourRecords(DayRecords):
    """One row per hour (per station, when there is a station column), as in ``hour.csv``."""

    hr: Series[int] = pa.Field(ge=0, le=23)

    class Config:
        name = "hour records"
        strict = True
        coerce = False


# Frame-check method -> the rule's name, for checks pandera reports by method name.
METHOD_RULES: dict[str, str] = {
    "yr_matches_date": "yr = year of dteday - 2011",
    "month_matches_date": "mnth = month of dteday",
    "weekday_matches_date": "weekday = day of week of dteday (0 = Sunday)",
    "workingday_consistent": "workingday = 1 exactly on Monday-Friday non-holidays",
    "counts_add_up": "cnt = casual + registered",
}

# Which columns a row-level rule is about: named in the report with their values.
RULE_COLUMNS: dict[str, tuple[str, ...]] = {
    "yr = year of dteday - 2011": ("yr", "dteday"),
    "mnth = month of dteday": ("mnth", "dteday"),
    "weekday = day of week of dteday (0 = Sunday)": ("weekday", "dteday"),
    "workingday = 1 exactly on Monday-Friday non-holidays": ("workingday", "weekday", "holiday"),
    "cnt = casual + registered": ("cnt", "casual", "registered"),
}


@dataclass
class ValidationReport:
    """All failures and warnings found in one file, JSON-able.

    Each rule lists its first ``LISTED_PER_RULE`` rows; ``failure_counts`` and
    ``warning_counts`` hold how many rows broke each rule in all.
    """

    file: str
    rows: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    failure_counts: Counter[str] = field(default_factory=Counter)
    warning_counts: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """True when no rule is broken (warnings are allowed)."""
        return not self.failures

    def fail(self, failure: Failure) -> None:
        """Record a broken rule (listed if its rule has not been listed too often yet)."""
        self.failure_counts[failure.rule] += 1
        if self.failure_counts[failure.rule] <= LISTED_PER_RULE:
            self.failures.append(failure)

    def warn(self, warning: Failure) -> None:
        """Record a legal but suspicious value."""
        self.warning_counts[warning.rule] += 1
        if self.warning_counts[warning.rule] <= LISTED_PER_RULE:
            self.warnings.append(warning)

    def close(self) -> None:
        """Sort by row and say how many rows of each rule went unlisted."""
        for items, counts in (
            (self.failures, self.failure_counts),
            (self.warnings, self.warning_counts),
        ):
            for rule, count in counts.items():
                if count > LISTED_PER_RULE:
                    items.append(
                        Failure(None, None, rule, f"... and {count - LISTED_PER_RULE} more rows")
                    )
            items.sort(key=lambda item: (item.row is not None, item.row or 0))

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON data."""
        return {
            "file": self.file,
            "rows": self.rows,
            "ok": self.ok,
            "failures": [asdict(item) for item in self.failures],
            "warnings": [asdict(item) for item in self.warnings],
            "failure_counts": dict(self.failure_counts),
            "warning_counts": dict(self.warning_counts),
        }


def _text(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return repr(value) if isinstance(value, str) else str(value)


def _parser_failure(error: Exception) -> Failure:
    message = str(error).strip()
    line = re.search(r"line (\d+)", message)
    row = int(line.group(1)) - 1 if line else None
    return Failure(row, None, "every row has as many fields as the header", message)


def check_columns(
    present: Iterable[str], expected: Iterable[str], report: ValidationReport
) -> bool:
    """Record missing and unexpected columns (``station`` is optional); True when all is right."""
    expected = tuple(expected)
    present = [str(name) for name in present]
    for name in expected:
        if name not in present:
            report.fail(Failure(None, name, "column is present", "missing"))
    for name in present:
        if name not in (*expected, STATION_COLUMN):
            report.fail(Failure(None, name, "no unexpected columns", repr(name)))
    return all(name in present for name in expected) and set(present) <= {
        *expected,
        STATION_COLUMN,
    }


def parse_columns(
    frame: pd.DataFrame,
    int_columns: Iterable[str],
    float_columns: Iterable[str],
    date_column: str,
    report: ValidationReport,
) -> pd.DataFrame:
    """Convert a chunk to int64/float64/datetime; record and drop rows that do not parse.

    Columns that pandas already read as clean numbers take a fast path; a column with any
    odd cell is re-read as text to say which cell is wrong and why.
    """
    typed: dict[str, pd.Series] = {}
    bad_rows = np.zeros(len(frame), dtype=bool)

    def flag(column: str, mask: np.ndarray, rule: str) -> None:
        nonlocal bad_rows
        for index in np.flatnonzero(mask):
            value = frame[column].iloc[index]
            report.fail(Failure(int(frame.index[index]) + 1, column, rule, _text(value)))
        bad_rows |= mask

    for column in int_columns:
        series = frame[column]
        if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            typed[column] = series.astype("int64")
            continue
        raw = series.astype(str).str.strip()
        number = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        empty = (raw == "").to_numpy()
        flag(column, empty, "value is not empty")
        # inf, fractions and integers too large for float64 to hold exactly are not integers
        # (and would make the int64 cast below raise a raw pandas error).
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(number) & (np.mod(number, 1) == 0) & (np.abs(number) <= 2**53)
        flag(column, (~empty) & ~whole, "value is an integer")
        typed[column] = pd.Series(np.where(whole, number, 0), index=frame.index).astype("int64")
    for column in float_columns:
        series = frame[column]
        if pd.api.types.is_float_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
            number = series.astype("float64")
            flag(column, ~np.isfinite(number.to_numpy()), "value is a finite number")
            typed[column] = number
            continue
        raw = series.astype(str).str.strip()
        number = pd.to_numeric(raw, errors="coerce")
        empty = (raw == "").to_numpy()
        flag(column, empty, "value is not empty")
        flag(
            column,
            (~empty) & ~np.isfinite(number.to_numpy(dtype=float)),
            "value is a finite number",
        )
        typed[column] = number.astype("float64")
    text = frame[date_column].astype(str).str.strip()
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce", cache=True)
    flag(date_column, dates.isna().to_numpy(), "value is a date YYYY-MM-DD")
    typed[date_column] = dates
    parsed = pd.DataFrame(typed, index=frame.index)[list(frame.columns)]
    return parsed[~bad_rows] if bad_rows.any() else parsed


def check_model(
    frame: pd.DataFrame, model: type[pa.DataFrameModel], report: ValidationReport
) -> None:
    """Run a pandera model lazily and add each failure (row, column, rule, value)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.validate(frame, lazy=True)
        return
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    seen: set[tuple[int, str]] = set()
    for case in cases.itertuples(index=False):
        rule = str(case.check)
        # pandera reports an inherited frame check by its method name once the parent model
        # has been used (HourRecords after DayRecords): map it back to the rule's name.
        rule = METHOD_RULES.get(rule, rule)
        index = case.index
        if index is None or (isinstance(index, float) and np.isnan(index)):
            report.fail(Failure(None, str(case.column), rule, _text(case.failure_case)))
            continue
        row = int(index)
        if case.schema_context == "Column":
            report.fail(Failure(row + 1, str(case.column), rule, _text(case.failure_case)))
            continue
        # Frame-level rules come back once per column of the row: report the row once.
        if (row, rule) in seen:
            continue
        seen.add((row, rule))
        columns = RULE_COLUMNS.get(rule, (str(case.column),))
        value = ", ".join(f"{name}={_text(frame.at[row, name])}" for name in columns)
        report.fail(Failure(row + 1, columns[0], rule, value))


_NO_TIME = np.iinfo(np.int64).min


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
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.report = ValidationReport(file=file)
        self.granularity = granularity
        self.min_days = min_days
        self.chunk_rows = chunk_rows
        self.columns = record_columns(granularity)
        self.model: type[pa.DataFrameModel] = HourRecords if granularity == "hour" else DayRecords
        self.has_station = False
        self.days = 0
        self.missing_hours = 0
        self.hour_gaps = 0
        self.seconds: dict[str, float] = {
            "parse": 0.0,
            "schema": 0.0,
            "sequence": 0.0,
        }  # parse / schema / sequence: where time goes
        # Row-to-row state carried over chunk borders.
        self._last: tuple[int, int, int, int] | None = None  # (time, station, row, day)
        self._station_last: dict[int, int] = {}
        self._counts: list[np.ndarray] = []

    # -- names of the row-to-row rules, kept as they were for daily files without stations --
    def _key_name(self) -> str:
        parts = [DATE_COLUMN] + ([HOUR_COLUMN] if self.granularity == "hour" else [])
        return ", ".join(parts + ([STATION_COLUMN] if self.has_station else []))

    def _rule_unique(self) -> str:
        if self.granularity == "day" and not self.has_station:
            return "dteday differs from the previous row (unique dates)"
        return f"({self._key_name()}) differs from the previous row (unique records)"

    def _rule_sorted(self) -> str:
        if self.granularity == "day" and not self.has_station:
            return "dteday is not before the previous row (sorted)"
        return f"({self._key_name()}) is not before the previous row (sorted)"

    def _rule_gap(self) -> str:
        previous = "the station's previous row" if self.has_station else "the previous row"
        if self.granularity == "hour":
            return f"the hour is one after {previous} (a missing hour is a warning)"
        return f"dteday is at most one day after {previous} (no gaps)"

    def chunks(self, handle: IO[bytes]) -> Iterator[pd.DataFrame]:
        """Yield the typed rows of each chunk of a binary CSV stream, filling the report."""
        import time

        report = self.report
        try:
            with warnings.catch_warnings():
                # A first data row longer than the header is only a warning to pandas.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                header = pd.read_csv(handle, nrows=0, index_col=False, encoding="utf-8")
                handle.seek(0)
                if not check_columns(header.columns, self.columns, report):
                    return
                self.has_station = STATION_COLUMN in header.columns
                reader = pd.read_csv(
                    handle,
                    dtype={DATE_COLUMN: str},
                    keep_default_na=False,
                    index_col=False,
                    chunksize=self.chunk_rows,
                    encoding="utf-8",
                )
                ints = [c for c in header.columns if c not in (DATE_COLUMN, *FLOAT_COLUMNS)]
                while True:
                    started = time.perf_counter()
                    try:
                        raw = next(reader)
                    except StopIteration:
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
                        self._check_sequence(typed)
                        self._suspicious(typed)
                    self.seconds["sequence"] += time.perf_counter() - checked
                    yield typed
        except UnicodeDecodeError as error:
            row, offset, byte = _first_undecodable(handle)
            report.fail(
                Failure(
                    row,
                    None,
                    "file is UTF-8 text",
                    f"byte {byte if byte is not None else error.object[error.start]:#04x} "
                    f"at offset {offset if offset is not None else error.start}",
                )
            )
        except pd.errors.EmptyDataError:
            report.fail(Failure(None, None, "file has a header row", "empty file"))
        except (pd.errors.ParserError, pd.errors.ParserWarning) as error:
            report.fail(_parser_failure(error))
        except ValueError as error:
            report.fail(Failure(None, None, "file is a CSV table", str(error).strip()))

    def _check_sequence(self, frame: pd.DataFrame) -> None:
        """Unique, sorted (by time, then station) and gap rules against the previous rows."""
        report = self.report
        day = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]").astype(np.int64)
        time_ = day * 24 + frame[HOUR_COLUMN].to_numpy() if self.granularity == "hour" else day
        station = (
            frame[STATION_COLUMN].to_numpy(dtype=np.int64)
            if self.has_station
            else np.zeros(len(frame), dtype=np.int64)
        )
        rows = frame.index.to_numpy(dtype=np.int64)
        last = self._last if self._last is not None else (_NO_TIME, 0, -2, _NO_TIME)
        prev_time = np.concatenate([[last[0]], time_[:-1]])
        prev_station = np.concatenate([[last[1]], station[:-1]])
        prev_row = np.concatenate([[last[2]], rows[:-1]])
        prev_day = np.concatenate([[last[3]], day[:-1]])
        # A row right after one set aside as unparseable is not compared (already reported).
        comparable = prev_row == rows - 1
        same = (time_ == prev_time) & (station == prev_station) & comparable
        before = ((time_ < prev_time) | ((time_ == prev_time) & (station < prev_station))) & (
            comparable
        )
        self.days += int(np.count_nonzero(day != prev_day))
        self._last = (int(time_[-1]), int(station[-1]), int(rows[-1]), int(day[-1]))

        def describe(i: int) -> str:
            parts = [f"{DATE_COLUMN}={_text(frame[DATE_COLUMN].iloc[i])}"]
            if self.granularity == "hour":
                parts.append(f"{HOUR_COLUMN}={int(frame[HOUR_COLUMN].iloc[i])}")
            if self.has_station:
                parts.append(f"{STATION_COLUMN}={int(station[i])}")
            return ", ".join(parts)

        for i in np.flatnonzero(same).tolist():
            report.fail(Failure(int(rows[i]) + 1, DATE_COLUMN, self._rule_unique(), describe(i)))
        for i in np.flatnonzero(before).tolist():
            report.fail(Failure(int(rows[i]) + 1, DATE_COLUMN, self._rule_sorted(), describe(i)))

        # Gaps, per station: group the chunk's rows by station (stable keeps time order).
        order = np.argsort(station, kind="stable")
        s_sorted, t_sorted = station[order], time_[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = s_sorted[1:] != s_sorted[:-1]
        previous = np.empty_like(t_sorted)
        previous[1:] = t_sorted[:-1]
        starts = np.flatnonzero(first)
        previous[starts] = [self._station_last.get(int(s), _NO_TIME) for s in s_sorted[starts]]
        ends = np.append(starts[1:] - 1, len(order) - 1)
        self._station_last.update(
            zip(s_sorted[ends].tolist(), t_sorted[ends].tolist(), strict=True)
        )
        step = t_sorted - previous
        gap_sorted = (previous != _NO_TIME) & (step > 1)
        gap_sorted &= comparable[order] & ~before[order]
        for position in np.flatnonzero(gap_sorted).tolist():
            i = int(order[position])
            missing = int(step[position]) - 1
            if self.granularity == "hour":
                self.missing_hours += missing
                self.hour_gaps += 1
                report.warn(
                    Failure(
                        int(rows[i]) + 1,
                        HOUR_COLUMN,
                        self._rule_gap(),
                        f"{missing} hour(s) missing before {describe(i)}",
                    )
                )
            else:
                report.fail(
                    Failure(
                        int(rows[i]) + 1,
                        DATE_COLUMN,
                        self._rule_gap(),
                        f"{describe(i)}, {missing} day(s) missing before it",
                    )
                )

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
                value = f"{_text(frame.at[row, column])} on {_text(frame.at[row, DATE_COLUMN])}"
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
        if self.hour_gaps:
            report.warn(
                Failure(
                    None,
                    HOUR_COLUMN,
                    "missing hours in all",
                    f"{self.missing_hours} hour(s) missing in {self.hour_gaps} gap(s)",
                )
            )
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


def _first_undecodable(handle: IO[bytes]) -> tuple[int | None, int | None, int | None]:
    """Row, file offset and value of the first byte that is not UTF-8 (None where unknown).

    pandas reports the offset within its own read buffer, so the file is scanned again, line
    by line, to name the row; this only runs once a file has already failed.
    """
    try:
        handle.seek(0)
    except (OSError, ValueError):
        return None, None, None
    offset = 0
    for line_number, line in enumerate(handle, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            # The header is line 1, so data row N is line N + 1.
            return line_number - 1 or None, offset + error.start, line[error.start]
        offset += len(line)
    return None, None, None


def validate_csv(
    handle: IO[bytes],
    file: str,
    min_days: int,
    granularity: Granularity = "day",
    chunk_rows: int = CHUNK_ROWS,
    on_chunk: Callable[[pd.DataFrame], None] = lambda chunk: None,
) -> ValidationReport:
    """Validate a CSV stream chunk by chunk; ``on_chunk`` receives each chunk's typed rows."""
    validator = RecordValidator(file, granularity, min_days, chunk_rows)
    for chunk in validator.chunks(handle):
        on_chunk(chunk)
    return validator.finish()


def validate_day_csv(
    data: bytes,
    file: str,
    min_rows: int,
    granularity: Granularity = "day",
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Validate the bytes of a small file; return the typed frame (if valid) and the report."""
    parts: list[pd.DataFrame] = []
    report = validate_csv(io.BytesIO(data), file, min_rows, granularity, chunk_rows, parts.append)
    if not report.ok or not parts:
        return None, report
    return pd.concat(parts), report


def read_table(data: bytes, report: ValidationReport) -> pd.DataFrame | None:
    """Parse CSV bytes as text columns; file-level problems go into the report."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        # The header is line 1, so the newlines before the bad byte count the data rows.
        line_breaks = data.count(b"\n", 0, error.start)
        report.failures.append(
            Failure(
                line_breaks or None,
                None,
                "file is UTF-8 text",
                f"byte {data[error.start]:#04x} at offset {error.start}",
            )
        )
        return None
    if not text.strip():
        report.failures.append(Failure(None, None, "file has a header row", "empty file"))
        return None
    try:
        with warnings.catch_warnings():
            # A first data row longer than the header is only a warning to pandas.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text), dtype=str, keep_default_na=False, index_col=False
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning) as error:
        message = str(error).strip()
        line = re.search(r"line (\d+)", message)
        row = int(line.group(1)) - 1 if line else None
        report.failures.append(
            Failure(row, None, "every row has as many fields as the header", message)
        )
        return None
    except (pd.errors.EmptyDataError, ValueError) as error:
        report.failures.append(Failure(None, None, "file is a CSV table", str(error).strip()))
        return None
    return frame


# --- Prediction inputs: the days a batch prediction is asked for ---------------------------

PREDICTION_COLUMNS: tuple[str, ...] = (DATE_COLUMN, *FEATURE_COLUMNS)
PREDICTION_UNIQUE_RULE = "dteday appears once in the file (unique dates)"
PREDICTION_STATION_UNIQUE_RULE = "(dteday, station) appears once in the file (unique records)"
NO_COUNTS_RULE = "prediction input has no count columns (casual, registered, cnt)"


class PredictionDays(pa.DataFrameModel):
    """One row per day to predict: the date and the 11 features of day.csv, no counts.

    Days need not be contiguous or sorted (any batch of days can be asked for), but each date
    once (each (date, station) once with a station column); the calendar columns must agree
    with the date as in ``DayRecords``.
    """

    dteday: Series[pa.DateTime]
    station: Series[int] | None = pa.Field(ge=0)
    season: Series[int] = pa.Field(isin=[1, 2, 3, 4])
    yr: Series[int] = pa.Field(ge=0)
    mnth: Series[int] = pa.Field(ge=1, le=12)
    holiday: Series[int] = pa.Field(isin=[0, 1])
    weekday: Series[int] = pa.Field(ge=0, le=6)
    workingday: Series[int] = pa.Field(isin=[0, 1])
    weathersit: Series[int] = pa.Field(isin=[1, 2, 3, 4])
    temp: Series[float] = pa.Field(ge=0.0, le=1.0)
    atemp: Series[float] = pa.Field(ge=0.0, le=1.0)
    hum: Series[float] = pa.Field(ge=0.0, le=1.0)
    windspeed: Series[float] = pa.Field(ge=0.0, le=1.0)

    class Config:
        name = "prediction days"
        strict = True
        coerce = False

    @pa.dataframe_check(name="yr = year of dteday - 2011")
    def yr_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["yr"] == frame["dteday"].dt.year - FIRST_YEAR

    @pa.dataframe_check(name="mnth = month of dteday")
    def month_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["mnth"] == frame["dteday"].dt.month

    @pa.dataframe_check(name="weekday = day of week of dteday (0 = Sunday)")
    def weekday_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["weekday"] == (frame["dteday"].dt.day_of_week + 1) % 7

    @pa.dataframe_check(name="workingday = 1 exactly on Monday-Friday non-holidays")
    def workingday_consistent(cls, frame: pd.DataFrame) -> pd.Series:
        expected = frame["weekday"].between(1, 5) & (frame["holiday"] == 0)
        return frame["workingday"] == expected.astype(int)

    @pa.dataframe_check(name=PREDICTION_UNIQUE_RULE)
    def dates_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN in frame.columns:
            return pd.Series(True, index=frame.index)  # a date repeats once per station
        return ~frame["dteday"].duplicated(keep="first")

    @pa.dataframe_check(name=PREDICTION_STATION_UNIQUE_RULE)
    def station_dates_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN not in frame.columns:
            return pd.Series(True, index=frame.index)
        return ~frame[["dteday", STATION_COLUMN]].duplicated(keep="first")


RULE_COLUMNS[PREDICTION_UNIQUE_RULE] = ("dteday",)
RULE_COLUMNS[PREDICTION_STATION_UNIQUE_RULE] = ("dteday", STATION_COLUMN)


def validate_prediction_csv(data: bytes, file: str) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Validate the bytes of a prediction input CSV; return the typed frame and the report.

    The typed frame has ``dteday``, ``station`` if the file has one (integer station ids, for
    a model with a station input) and the 11 feature columns (an ``instant`` column, as in a
    trimmed day.csv, is accepted and dropped).
    """
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
    expected = (("instant",) if "instant" in present else ()) + PREDICTION_COLUMNS
    if not check_columns(frame, expected, report) or counts:
        return None, report
    if report.rows == 0:
        report.failures.append(Failure(None, None, "at least 1 day to predict", "0 rows"))
        return None, report
    station = (STATION_COLUMN,) if STATION_COLUMN in present else ()
    int_columns = [name for name in expected if name in INT_COLUMNS] + list(station)
    typed = parse_columns(frame, int_columns, FLOAT_COLUMNS, DATE_COLUMN, report)
    if "instant" in typed.columns:
        typed = typed.drop(columns=["instant"])
    if len(typed):
        check_model(typed, PredictionDays, report)
    report.failures.sort(key=lambda item: (item.row is not None, item.row or 0))
    if not report.ok:
        return None, report
    return typed[[DATE_COLUMN, *station, *FEATURE_COLUMNS]], report
