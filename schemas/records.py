"""Schemas of the daily and hourly bike-sharing records and of prediction inputs (pandera).

The column sets, the pandera models that check each row's ranges and the rules between its
columns, and ``FRAME_RULES``: the one table of those row-level rules. Reading and parsing CSV
text is ``schemas.csv_reader``, the rules between rows are ``schemas.row_order``, the report
is ``schemas.report`` and ``schemas.validation`` runs them all over a file. A new kind of
record (another granularity, another prediction input) is one more model here, its checks
named from ``FRAME_RULES``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from schemas.config import Granularity, WeatherScale

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
PREDICTION_COLUMNS: tuple[str, ...] = (DATE_COLUMN, *FEATURE_COLUMNS)
HOURLY_PREDICTION_COLUMNS: tuple[str, ...] = (DATE_COLUMN, *HOUR_FEATURE_COLUMNS)
FIRST_YEAR = 2011  # the dataset's yr column counts years from 2011

# column -> (its raw weather column, the UCI Readme's divisor: temp = temp_c / 41 ...).
UCI_DIVISORS: dict[str, tuple[str, float]] = {
    "temp": ("temp_c", 41.0),
    "atemp": ("feels_like_c", 50.0),
    "hum": ("humidity_pct", 100.0),
    "windspeed": ("wind_kmh", 67.0),
}
# Physically plausible raw weather, wide enough for any bike-sharing city's winter and storms
# (UCI's own divisors, 41 degrees C and 67 km/h, are merely DC's 2011-2012 extremes). A value
# beyond is a unit mix-up or a broken sensor: refused rather than learned from.
TEMP_C_RANGE = (-60.0, 60.0)  # inhabited places' records are about -68 and +54 degrees C
FEELS_LIKE_C_RANGE = (-60.0, 60.0)  # wind chill and heat index, as the air temperature
HUMIDITY_PCT_RANGE = (0.0, 100.0)  # a percentage
WIND_KMH_RANGE = (0.0, 250.0)  # a sustained wind beyond a category 5 hurricane's
RAW_WEATHER_RANGES: dict[str, tuple[float, float]] = {
    "temp_c": TEMP_C_RANGE,
    "feels_like_c": FEELS_LIKE_C_RANGE,
    "humidity_pct": HUMIDITY_PCT_RANGE,
    "wind_kmh": WIND_KMH_RANGE,
}


def normalised_range(column: str) -> tuple[float, float]:
    """The bounds of a weather column of rows built from trips: its raw range over its divisor."""
    raw, divisor = UCI_DIVISORS[column]
    low, high = RAW_WEATHER_RANGES[raw]
    return low / divisor, high / divisor


def feature_columns(granularity: Granularity) -> tuple[str, ...]:
    """The model's input columns for daily or hourly records."""
    return HOUR_FEATURE_COLUMNS if granularity == "hour" else FEATURE_COLUMNS


def record_columns(granularity: Granularity) -> tuple[str, ...]:
    """The columns a daily or hourly file must have (``station`` is optional besides)."""
    return HOUR_COLUMNS if granularity == "hour" else DAY_COLUMNS


class FrameRule(NamedTuple):
    """A rule between the columns of one row: its name, and the columns a report shows."""

    name: str
    columns: tuple[str, ...]


# The one table of row-level rules, keyed by the name of the check method that implements
# each. The models name their checks from it, and the report looks rules up in it: pandera
# 0.35 reports an inherited frame check by its *method* name once the parent model has been
# used (HourRecords after DayRecords), so both spellings must lead to the same rule.
FRAME_RULES: dict[str, FrameRule] = {
    "yr_matches_date": FrameRule("yr = year of dteday - 2011", ("yr", DATE_COLUMN)),
    "month_matches_date": FrameRule("mnth = month of dteday", ("mnth", DATE_COLUMN)),
    "weekday_matches_date": FrameRule(
        "weekday = day of week of dteday (0 = Sunday)", ("weekday", DATE_COLUMN)
    ),
    "workingday_consistent": FrameRule(
        "workingday = 1 exactly on Monday-Friday non-holidays",
        ("workingday", "weekday", "holiday"),
    ),
    "counts_add_up": FrameRule("cnt = casual + registered", ("cnt", "casual", "registered")),
    "dates_unique_in_file": FrameRule(
        "dteday appears once in the file (unique dates)", (DATE_COLUMN,)
    ),
    "station_dates_unique_in_file": FrameRule(
        "(dteday, station) appears once in the file (unique records)",
        (DATE_COLUMN, STATION_COLUMN),
    ),
    "hours_unique_in_file": FrameRule(
        "(dteday, hr) appears once in the file (unique hours)", (DATE_COLUMN, HOUR_COLUMN)
    ),
    "station_hours_unique_in_file": FrameRule(
        "(dteday, hr, station) appears once in the file (unique records)",
        (DATE_COLUMN, HOUR_COLUMN, STATION_COLUMN),
    ),
}
_BY_NAME = {rule.name: rule for rule in FRAME_RULES.values()}
PREDICTION_UNIQUE_RULE = FRAME_RULES["dates_unique_in_file"].name
PREDICTION_STATION_UNIQUE_RULE = FRAME_RULES["station_dates_unique_in_file"].name
NO_COUNTS_RULE = "prediction input has no count columns (casual, registered, cnt)"


def frame_rule(check: str) -> FrameRule | None:
    """The row-level rule pandera reported as ``check`` (its rule name or its method's name)."""
    return FRAME_RULES.get(check) or _BY_NAME.get(check)


def _rule(method: str) -> str:
    return FRAME_RULES[method].name


class DayFeatures(pa.DataFrameModel):
    """The date and the 11 features of a day, its calendar columns agreeing with the date.

    What a record and a day to predict have in common (each per station, when there is a
    station column); ``DayRecords`` and ``PredictionDays`` add the rest.
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

    @pa.dataframe_check(name=_rule("yr_matches_date"))
    def yr_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["yr"] == frame[DATE_COLUMN].dt.year - FIRST_YEAR

    @pa.dataframe_check(name=_rule("month_matches_date"))
    def month_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["mnth"] == frame[DATE_COLUMN].dt.month

    @pa.dataframe_check(name=_rule("weekday_matches_date"))
    def weekday_matches_date(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["weekday"] == (frame[DATE_COLUMN].dt.day_of_week + 1) % 7

    @pa.dataframe_check(name=_rule("workingday_consistent"))
    def workingday_consistent(cls, frame: pd.DataFrame) -> pd.Series:
        expected = frame["weekday"].between(1, 5) & (frame["holiday"] == 0)
        return frame["workingday"] == expected.astype(int)


class RecordNumber(pa.DataFrameModel):
    """The running number that leads each row of ``day.csv`` and ``hour.csv``."""

    instant: Series[int] = pa.Field(ge=1)


class CountsAddUp(pa.DataFrameModel):
    """The rule between a record's counts (the columns are ``DayRecords``')."""

    @pa.dataframe_check(name=_rule("counts_add_up"))
    def counts_add_up(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["cnt"] == frame["casual"] + frame["registered"]


# pandera takes a model's columns from its farthest base down (instant, the features, then the
# counts below) and its checks from the nearest base up (the calendar's, then the counts'):
# this order of bases keeps both orders, which decide how several failures of a row are listed.
class DayRecords(DayFeatures, CountsAddUp, RecordNumber):
    """One row per day (per station, when there is a station column), as in ``day.csv``."""

    casual: Series[int] = pa.Field(ge=0)
    registered: Series[int] = pa.Field(ge=0)
    cnt: Series[int] = pa.Field(ge=0)

    class Config:
        name = "day records"
        strict = True
        coerce = False


class HourRecords(DayRecords):
    """One row per hour (per station, when there is a station column), as in ``hour.csv``."""

    hr: Series[int] = pa.Field(ge=0, le=23)

    class Config:
        name = "hour records"
        strict = True
        coerce = False


def _raw_weather_field(column: str) -> Any:
    low, high = normalised_range(column)
    return pa.Field(ge=low, le=high)


class RawNormalisedWeather(pa.DataFrameModel):
    """The weather columns of rows built from trips: plausible raw values over UCI's divisors."""

    temp: Series[float] = _raw_weather_field("temp")
    atemp: Series[float] = _raw_weather_field("atemp")
    hum: Series[float] = _raw_weather_field("hum")
    windspeed: Series[float] = _raw_weather_field("windspeed")


# The weather model first: its four fields replace the [0, 1] ones, in place (same column order).
class TripDayRecords(RawNormalisedWeather, DayRecords):
    """``DayRecords`` assembled from trips: the weather columns may leave [0, 1]."""

    class Config:
        name = "day records"


class TripHourRecords(RawNormalisedWeather, HourRecords):
    """``HourRecords`` assembled from trips: the weather columns may leave [0, 1]."""

    class Config:
        name = "hour records"


def record_model(
    granularity: Granularity, weather_scale: WeatherScale = "uci"
) -> type[pa.DataFrameModel]:
    """The pandera model of daily or hourly records, for a UCI file or rows built from trips."""
    if weather_scale == "raw-normalised":
        return TripHourRecords if granularity == "hour" else TripDayRecords
    return HourRecords if granularity == "hour" else DayRecords


class UniqueDays(pa.DataFrameModel):
    """The rules that a day to predict is asked for once (once per station, with stations)."""

    @pa.dataframe_check(name=_rule("dates_unique_in_file"))
    def dates_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN in frame.columns:
            return pd.Series(True, index=frame.index)  # a date repeats once per station
        return ~frame[DATE_COLUMN].duplicated(keep="first")

    @pa.dataframe_check(name=_rule("station_dates_unique_in_file"))
    def station_dates_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN not in frame.columns:
            return pd.Series(True, index=frame.index)
        return ~frame[[DATE_COLUMN, STATION_COLUMN]].duplicated(keep="first")


# As for DayRecords: the calendar's checks before the uniqueness ones.
class PredictionDays(DayFeatures, UniqueDays):
    """One row per day to predict: the date and the 11 features of day.csv, no counts.

    Days need not be contiguous or sorted (any batch of days can be asked for), but each date
    once (each (date, station) once with a station column); the calendar columns must agree
    with the date as in ``DayRecords``.
    """

    class Config:
        name = "prediction days"
        strict = True
        coerce = False


class PredictionHours(PredictionDays):
    """One row per hour to predict (an hourly champion): ``PredictionDays`` plus ``hr``.

    Each (date, hour) once, or each (date, hour, station) once with a station column.
    """

    hr: Series[int] = pa.Field(ge=0, le=23)

    class Config:
        name = "prediction hours"
        strict = True
        coerce = False

    @pa.dataframe_check(name=_rule("dates_unique_in_file"))
    def dates_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        return pd.Series(True, index=frame.index)  # a date repeats once per hour

    @pa.dataframe_check(name=_rule("station_dates_unique_in_file"))
    def station_dates_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        return pd.Series(True, index=frame.index)

    @pa.dataframe_check(name=_rule("hours_unique_in_file"))
    def hours_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN in frame.columns:
            return pd.Series(True, index=frame.index)  # an hour repeats once per station
        return ~frame[[DATE_COLUMN, HOUR_COLUMN]].duplicated(keep="first")

    @pa.dataframe_check(name=_rule("station_hours_unique_in_file"))
    def station_hours_unique_in_file(cls, frame: pd.DataFrame) -> pd.Series:
        if STATION_COLUMN not in frame.columns:
            return pd.Series(True, index=frame.index)
        return ~frame[[DATE_COLUMN, HOUR_COLUMN, STATION_COLUMN]].duplicated(keep="first")
