"""Schemas of the daily bike-sharing records, and their lazy validation into a report.

Validation happens in two passes. Parsing turns CSV text into typed columns and records every
cell that is empty or not a number/date of the right kind; rows with such cells are set aside
so they do not also trip the range rules. The pandera ``DayRecords`` model then checks ranges
and the consistency rules between columns and between consecutive rows. All failures are
collected (lazy validation) and reported together with row, column, rule and value.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from tasks.errors import Failure

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
COUNT_COLUMNS: tuple[str, ...] = ("casual", "registered", "cnt")
TARGET_COLUMN = "cnt"
DATE_COLUMN = "dteday"
DAY_COLUMNS: tuple[str, ...] = ("instant", DATE_COLUMN, *FEATURE_COLUMNS, *COUNT_COLUMNS)
FLOAT_COLUMNS: tuple[str, ...] = ("temp", "atemp", "hum", "windspeed")
INT_COLUMNS: tuple[str, ...] = tuple(
    name for name in DAY_COLUMNS if name not in (DATE_COLUMN, *FLOAT_COLUMNS)
)
FIRST_YEAR = 2011  # the dataset's yr column counts years from 2011


class DayRecords(pa.DataFrameModel):
    """One row per day, as in the UCI Bike Sharing ``day.csv``."""

    instant: Series[int] = pa.Field(ge=1)
    dteday: Series[pa.DateTime]
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

    @pa.dataframe_check(name="dteday differs from the previous row (unique dates)")
    def dates_unique(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["dteday"].diff() != pd.Timedelta(0)

    @pa.dataframe_check(name="dteday is not before the previous row (sorted)")
    def dates_sorted(cls, frame: pd.DataFrame) -> pd.Series:
        return ~(frame["dteday"].diff() < pd.Timedelta(0))

    @pa.dataframe_check(name="dteday is at most one day after the previous row (no gaps)")
    def dates_contiguous(cls, frame: pd.DataFrame) -> pd.Series:
        return ~(frame["dteday"].diff() > pd.Timedelta(days=1))


# Which columns a row-level rule is about: named in the report with their values.
RULE_COLUMNS: dict[str, tuple[str, ...]] = {
    "yr = year of dteday - 2011": ("yr", "dteday"),
    "mnth = month of dteday": ("mnth", "dteday"),
    "weekday = day of week of dteday (0 = Sunday)": ("weekday", "dteday"),
    "workingday = 1 exactly on Monday-Friday non-holidays": ("workingday", "weekday", "holiday"),
    "cnt = casual + registered": ("cnt", "casual", "registered"),
    "dteday differs from the previous row (unique dates)": ("dteday",),
    "dteday is not before the previous row (sorted)": ("dteday",),
    "dteday is at most one day after the previous row (no gaps)": ("dteday",),
}
# Rules that compare a row with the one before it.
SEQUENCE_RULES = frozenset(rule for rule in RULE_COLUMNS if "previous row" in rule)


@dataclass
class ValidationReport:
    """All failures and warnings found in one file, JSON-able."""

    file: str
    rows: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no rule is broken (warnings are allowed)."""
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON data."""
        return {
            "file": self.file,
            "rows": self.rows,
            "ok": self.ok,
            "failures": [asdict(item) for item in self.failures],
            "warnings": [asdict(item) for item in self.warnings],
        }


def _text(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return repr(value) if isinstance(value, str) else str(value)


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


def check_columns(frame: pd.DataFrame, expected: Iterable[str], report: ValidationReport) -> bool:
    """Record missing and unexpected columns; return True when the header is right."""
    expected = tuple(expected)
    present = [str(name) for name in frame.columns]
    for name in expected:
        if name not in present:
            report.failures.append(Failure(None, name, "column is present", "missing"))
    for name in present:
        if name not in expected:
            report.failures.append(Failure(None, name, "no unexpected columns", repr(name)))
    return all(name in present for name in expected) and len(present) == len(expected)


def parse_columns(
    frame: pd.DataFrame,
    int_columns: Iterable[str],
    float_columns: Iterable[str],
    date_column: str,
    report: ValidationReport,
) -> pd.DataFrame:
    """Convert text columns to int64/float64/datetime; record and drop rows that do not parse."""
    typed: dict[str, pd.Series] = {}
    bad_rows = np.zeros(len(frame), dtype=bool)

    def flag(column: str, mask: np.ndarray, rule: str) -> None:
        nonlocal bad_rows
        for index in np.flatnonzero(mask):
            report.failures.append(
                Failure(int(index) + 1, column, rule, _text(frame[column].iloc[index]))
            )
        bad_rows |= mask

    for column in int_columns:
        raw = frame[column].str.strip()
        number = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        empty = (raw == "").to_numpy()
        flag(column, empty, "value is not empty")
        # inf, fractions and integers too large for float64 to hold exactly are not integers
        # (and would make the int64 cast below raise a raw pandas error).
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(number) & (np.mod(number, 1) == 0) & (np.abs(number) <= 2**53)
        not_int = (~empty) & ~whole
        flag(column, not_int, "value is an integer")
        typed[column] = pd.Series(np.where(whole, number, 0), index=frame.index).astype("int64")
    for column in float_columns:
        raw = frame[column].str.strip()
        number = pd.to_numeric(raw, errors="coerce")
        empty = (raw == "").to_numpy()
        flag(column, empty, "value is not empty")
        flag(
            column,
            (~empty) & ~np.isfinite(number.to_numpy(dtype=float)),
            "value is a finite number",
        )
        typed[column] = number.astype("float64")
    dates = pd.to_datetime(frame[date_column].str.strip(), format="%Y-%m-%d", errors="coerce")
    flag(date_column, dates.isna().to_numpy(), "value is a date YYYY-MM-DD")
    typed[date_column] = dates
    parsed = pd.DataFrame(typed, index=frame.index)[list(frame.columns)]
    return parsed[~bad_rows]


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
        index = case.index
        if index is None or (isinstance(index, float) and np.isnan(index)):
            report.failures.append(Failure(None, str(case.column), rule, _text(case.failure_case)))
            continue
        row = int(index)
        if case.schema_context == "Column":
            report.failures.append(
                Failure(row + 1, str(case.column), rule, _text(case.failure_case))
            )
            continue
        # Frame-level rules come back once per column of the row: report the row once.
        if (row, rule) in seen:
            continue
        if rule in SEQUENCE_RULES and row - 1 not in frame.index and row > 0:
            # The previous row was set aside as unparseable and is reported already.
            continue
        seen.add((row, rule))
        columns = RULE_COLUMNS.get(rule, (str(case.column),))
        value = ", ".join(f"{name}={_text(frame.at[row, name])}" for name in columns)
        report.failures.append(Failure(row + 1, columns[0], rule, value))


def suspicious_days(frame: pd.DataFrame, report: ValidationReport) -> None:
    """Add warnings for legal but unlikely values (a person should look at them)."""
    rules: list[tuple[str, pd.Series, str]] = [
        ("hum", frame["hum"] == 0.0, "humidity exactly 0 is implausible for a whole day"),
        ("windspeed", frame["windspeed"] == 0.0, "wind speed exactly 0 for a whole day"),
    ]
    median = float(frame[TARGET_COLUMN].median()) if len(frame) else 0.0
    rules.append(
        (
            TARGET_COLUMN,
            frame[TARGET_COLUMN] < 0.05 * median,
            "cnt below 5% of the median day (an outage or a storm?)",
        )
    )
    for column, mask, rule in rules:
        for index in np.flatnonzero(mask.to_numpy()):
            row = frame.index[index]
            value = f"{_text(frame.at[row, column])} on {_text(frame.at[row, DATE_COLUMN])}"
            report.warnings.append(Failure(int(row) + 1, column, rule, value))


def validate_day_csv(
    data: bytes, file: str, min_rows: int
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Validate the bytes of a day.csv; return the typed frame (if valid) and the report."""
    report = ValidationReport(file=file)
    frame = read_table(data, report)
    if frame is None:
        return None, report
    report.rows = len(frame)
    if not check_columns(frame, DAY_COLUMNS, report):
        return None, report
    typed = parse_columns(frame, INT_COLUMNS, FLOAT_COLUMNS, DATE_COLUMN, report)
    if len(typed):
        check_model(typed, DayRecords, report)
    if report.rows < min_rows:
        report.failures.append(
            Failure(
                None,
                None,
                f"at least {min_rows} rows for the split asked for",
                f"{report.rows} rows",
            )
        )
    report.failures.sort(key=lambda item: (item.row is not None, item.row or 0))
    if not report.ok:
        return None, report
    suspicious_days(typed, report)
    return typed, report
