# ruff: noqa: N805 (pandera's check decorators turn these methods into classmethods taking cls)
"""Prediction inputs for an hourly champion: one row per hour (per station) to predict.

The daily input schema is ``schemas.records.PredictionDays``; this is its hourly twin, the
columns of ``hour.csv`` without the counts (``hr`` after ``mnth``, as there).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas.records import (
    COUNT_COLUMNS,
    DATE_COLUMN,
    FIRST_YEAR,
    FLOAT_COLUMNS,
    HOUR_COLUMN,
    HOUR_FEATURE_COLUMNS,
    INT_COLUMNS,
    NO_COUNTS_RULE,
    RULE_COLUMNS,
    STATION_COLUMN,
    ValidationReport,
    check_columns,
    check_model,
    parse_columns,
    read_table,
)
from tasks.errors import Failure

HOURLY_PREDICTION_COLUMNS: tuple[str, ...] = (DATE_COLUMN, *HOUR_FEATURE_COLUMNS)
HOURLY_UNIQUE_RULE = "(dteday, hr) appears once in the file (unique hours)"
HOURLY_STATION_UNIQUE_RULE = "(dteday, hr, station) appears once in the file (unique records)"


class PredictionHours(pa.DataFrameModel):
    """One row per hour to predict: date, hour and the 12 features of hour.csv, no counts."""

    dteday: Series[pa.DateTime]
    station: Series[int] | None = pa.Field(ge=0)
    season: Series[int] = pa.Field(isin=[1, 2, 3, 4])
    yr: Series[int] = pa.Field(ge=0)
    mnth: Series[int] = pa.Field(ge=1, le=12)
    hr: Series[int] = pa.Field(ge=0, le=23)
    holiday: Series[int] = pa.Field(isin=[0, 1])
    weekday: Series[int] = pa.Field(ge=0, le=6)
    workingday: Series[int] = pa.Field(isin=[0, 1])
    weathersit: Series[int] = pa.Field(isin=[1, 2, 3, 4])
    temp: Series[float] = pa.Field(ge=0.0, le=1.0)
    atemp: Series[float] = pa.Field(ge=0.0, le=1.0)
    hum: Series[float] = pa.Field(ge=0.0, le=1.0)
    windspeed: Series[float] = pa.Field(ge=0.0, le=1.0)

    class Config:
        name = "prediction hours"
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

    @pa.dataframe_check(name=HOURLY_UNIQUE_RULE)
    def hours_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN in frame.columns:
            return pd.Series(True, index=frame.index)  # an hour repeats once per station
        return ~frame[[DATE_COLUMN, HOUR_COLUMN]].duplicated(keep="first")

    @pa.dataframe_check(name=HOURLY_STATION_UNIQUE_RULE)
    def station_hours_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN not in frame.columns:
            return pd.Series(True, index=frame.index)
        return ~frame[[DATE_COLUMN, HOUR_COLUMN, STATION_COLUMN]].duplicated(keep="first")


RULE_COLUMNS[HOURLY_UNIQUE_RULE] = (DATE_COLUMN, HOUR_COLUMN)
RULE_COLUMNS[HOURLY_STATION_UNIQUE_RULE] = (DATE_COLUMN, HOUR_COLUMN, STATION_COLUMN)


def validate_hourly_prediction_csv(
    data: bytes, file: str
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Validate the bytes of an hourly prediction input; return the typed frame and the report.

    The typed frame has ``dteday``, ``station`` if the file has one, and the 12 feature
    columns of hour.csv (``instant`` is accepted and dropped; count columns are refused).
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
    expected = (("instant",) if "instant" in present else ()) + HOURLY_PREDICTION_COLUMNS
    if not check_columns(frame, expected, report) or counts:
        return None, report
    if report.rows == 0:
        report.failures.append(Failure(None, None, "at least 1 hour to predict", "0 rows"))
        return None, report
    station = (STATION_COLUMN,) if STATION_COLUMN in present else ()
    int_columns = [n for n in expected if n in (*INT_COLUMNS, HOUR_COLUMN)] + list(station)
    typed = parse_columns(frame, int_columns, FLOAT_COLUMNS, DATE_COLUMN, report)
    if "instant" in typed.columns:
        typed = typed.drop(columns=["instant"])
    if len(typed):
        check_model(typed, PredictionHours, report)
    report.failures.sort(key=lambda item: (item.row is not None, item.row or 0))
    if not report.ok:
        return None, report
    return typed[[DATE_COLUMN, *station, *HOUR_FEATURE_COLUMNS]], report
