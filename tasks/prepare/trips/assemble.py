"""Trip counts, calendar and weather joined into rows in the UCI day.csv / hour.csv layout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from schemas.errors import TripDataError, WeatherDataError
from schemas.records import (
    COUNT_COLUMNS,
    DATE_COLUMN,
    FIRST_YEAR,
    STATION_COLUMN,
    Granularity,
    record_columns,
)
from tasks.prepare.trips.aggregate import TripCounts, key_columns
from tasks.prepare.trips.calendar import HolidayCalendar, calendar_columns
from tasks.prepare.trips.weather import WEATHER_COLUMNS, WEATHERSIT

QUIET_SHARE = 0.05  # a day under 5% of the median day: an outage, a storm, or missing files
RANGES_SHOWN = 12


def describe_ranges(values: np.ndarray, unit: str, shown: int = RANGES_SHOWN) -> str:
    """Dates ('D') or hours ('h') as compressed ranges: '2011-03-01..2011-03-03, 2011-05-07'."""
    if not len(values):
        return "(none)"
    steps = np.unique(values.astype(f"datetime64[{unit}]").astype(np.int64))
    breaks = np.flatnonzero(np.diff(steps) != 1)
    starts = np.concatenate([[steps[0]], steps[breaks + 1]])
    ends = np.concatenate([steps[breaks], [steps[-1]]])

    def text(step: int) -> str:
        moment = np.array([step], dtype=np.int64).astype(f"datetime64[{unit}]")[0]
        return str(moment) if unit == "D" else str(moment).replace("T", " ") + ":00"

    parts = [
        text(first) if first == last else f"{text(first)}..{text(last)}"
        for first, last in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    if len(parts) > shown:
        parts = [*parts[:shown], f"and {len(parts) - shown} more range(s)"]
    return ", ".join(parts)


def combine_counts(
    counts: Sequence[TripCounts], granularity: Granularity, stations: bool
) -> pd.DataFrame:
    """Every file's counts summed per date (hour, station): files may share a day."""
    for item in counts:
        if item.granularity != granularity or item.stations != stations:
            raise ValueError(
                f"{item.file} was counted per {item.granularity}"
                f"{' and station' if item.stations else ''}, not as asked"
            )
    keys = key_columns(granularity, stations)
    frames = [item.counts for item in counts if len(item.counts)]
    if not frames:
        files = ", ".join(item.file for item in counts) or "(no files)"
        raise TripDataError(f"no trips found in the trip files: {files}")
    joined = pd.concat(frames, ignore_index=True)
    return joined.groupby(keys, sort=True)[list(COUNT_COLUMNS)].sum().reset_index()


def _grid(
    counts: pd.DataFrame,
    first: np.datetime64,
    last: np.datetime64,
    granularity: Granularity,
    stations: bool,
) -> pd.DataFrame:
    """Every date (every hour of every date) from first to last; per station, its own run."""
    hours = np.arange(24) if granularity == "hour" else None
    if not stations:
        days = np.arange(first, last + 1, dtype="datetime64[D]")
        return _expand(days, hours, None)
    spans = counts.groupby(STATION_COLUMN)[DATE_COLUMN].agg(["min", "max"])
    parts = []
    for station, (low, high) in spans.iterrows():
        days = np.arange(
            np.datetime64(low, "D"), np.datetime64(high, "D") + 1, dtype="datetime64[D]"
        )
        parts.append(_expand(days, hours, int(station)))
    return pd.concat(parts, ignore_index=True)


def _expand(days: np.ndarray, hours: np.ndarray | None, station: int | None) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {}
    if hours is None:
        columns[DATE_COLUMN] = days.astype("datetime64[ns]")
    else:
        columns[DATE_COLUMN] = np.repeat(days, len(hours)).astype("datetime64[ns]")
        columns["hr"] = np.tile(hours, len(days)).astype(np.int64)
    if station is not None:
        columns[STATION_COLUMN] = np.full(len(columns[DATE_COLUMN]), station, dtype=np.int64)
    return pd.DataFrame(columns)


def _skipped_hours_filled(weather: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Hours the clock skips (spring forward) take the weather of the hour before, if absent."""
    if "hr" not in weather or not len(weather):
        return weather
    days = np.unique(weather[DATE_COLUMN].to_numpy().astype("datetime64[D]"))
    moments = pd.DatetimeIndex((days[:, None] + np.arange(24).astype("timedelta64[h]")).ravel())
    skipped = moments[moments.tz_localize(timezone, nonexistent="NaT", ambiguous=True).isna()]
    have = pd.MultiIndex.from_frame(weather[[DATE_COLUMN, "hr"]])
    extra = []
    for moment in skipped:
        key = (moment.normalize(), moment.hour)
        before = moment - pd.Timedelta(hours=1)
        source = weather[
            (weather[DATE_COLUMN] == before.normalize()) & (weather["hr"] == before.hour)
        ]
        if key not in have and len(source):
            extra.append(source.assign(**{DATE_COLUMN: key[0], "hr": key[1]}))
    if not extra:
        return weather
    joined = pd.concat([weather, *extra], ignore_index=True)
    return joined.sort_values([DATE_COLUMN, "hr"], kind="stable").reset_index(drop=True)


def _check_weather(rows: pd.DataFrame, weather: pd.DataFrame, granularity: Granularity) -> None:
    """Refuse trips outside the weather's dates and dates (hours) without weather."""
    unit = "h" if granularity == "hour" else "D"
    problems = []
    trip_days = rows[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    if not len(weather):
        raise WeatherDataError(
            "the weather table has no rows; trips need a weather row per " + granularity
        )
    low = weather[DATE_COLUMN].min().to_datetime64().astype("datetime64[D]")
    high = weather[DATE_COLUMN].max().to_datetime64().astype("datetime64[D]")
    outside = (trip_days < low) | (trip_days > high)
    if outside.any():
        problems.append(
            f"trips fall outside the weather's dates ({low}..{high}): trips on "
            f"{describe_ranges(trip_days[outside], 'D')} have no weather; extend the weather "
            "table or leave those trip files out"
        )
    inside = rows[~outside & rows[WEATHERSIT].isna().to_numpy()]
    if len(inside):
        moments = inside[DATE_COLUMN].to_numpy().astype("datetime64[h]")
        if granularity == "hour":
            moments = moments + inside["hr"].to_numpy().astype("timedelta64[h]")
        problems.append(
            f"the weather table has no row for these {granularity}s between the first and the "
            f"last trip: {describe_ranges(moments, unit)}; every {granularity} needs its weather"
        )
    if problems:
        raise WeatherDataError.from_problems("weather table", problems)


def assemble_rows(
    counts: Sequence[TripCounts],
    weather: pd.DataFrame,
    granularity: Granularity = "day",
    holiday_calendar: HolidayCalendar = "us-dc",
    stations: bool = False,
    timezone: str = "America/New_York",
    first_year: int = FIRST_YEAR,
) -> pd.DataFrame:
    """Rows in the UCI layout: every date (hour 0-23 of every date) from the first to the last trip.

    Columns in day.csv / hour.csv order (with ``station`` after ``dteday`` when per station,
    as the hourly-station records have it); ``dteday`` is YYYY-MM-DD text; a date or hour
    without trips has zero counts. Per station, each station has every date from its first
    to its last trip. ``weather`` is ``read_weather``'s table. Raises WeatherDataError for
    trips outside the weather's dates and for dates (hours) without weather, named in ranges.
    """
    summed = combine_counts(counts, granularity, stations)
    days = summed[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    grid = _grid(summed, days.min(), days.max(), granularity, stations)
    keys = key_columns(granularity, stations)
    rows = grid.merge(summed, on=keys, how="left", validate="one_to_one")
    rows[list(COUNT_COLUMNS)] = rows[list(COUNT_COLUMNS)].fillna(0).astype(np.int64)
    weather = _skipped_hours_filled(weather, timezone)
    weather_keys = [DATE_COLUMN, "hr"] if granularity == "hour" else [DATE_COLUMN]
    weather = weather[[*weather_keys, WEATHERSIT, *WEATHER_COLUMNS]]
    rows = rows.merge(weather, on=weather_keys, how="left", validate="many_to_one")
    _check_weather(rows, weather, granularity)
    hours = rows["hr"] if granularity == "hour" else None
    calendar = calendar_columns(
        pd.DatetimeIndex(rows[DATE_COLUMN]), hours, holiday_calendar, first_year
    )
    for name in calendar.columns:
        rows[name] = calendar[name].to_numpy()
    rows[WEATHERSIT] = rows[WEATHERSIT].astype(np.int64)
    rows = rows.sort_values(keys, kind="stable").reset_index(drop=True)
    rows.insert(0, "instant", np.arange(1, len(rows) + 1, dtype=np.int64))
    rows[DATE_COLUMN] = rows[DATE_COLUMN].dt.strftime("%Y-%m-%d")
    columns = list(record_columns(granularity))
    if stations:
        columns.insert(2, STATION_COLUMN)
    return rows[columns]


def quiet_days(rows: pd.DataFrame, share: float = QUIET_SHARE) -> list[str]:
    """Warnings for dates whose trips are under ``share`` of the median day (never failures)."""
    daily = rows.groupby(DATE_COLUMN)["cnt"].sum()
    if not len(daily):
        return []
    median = float(daily.median())
    quiet = daily[daily < share * median]
    if not len(quiet):
        return []
    days = pd.to_datetime(quiet.index).to_numpy().astype("datetime64[D]")
    return [
        f"{len(quiet)} day(s) have under {share:.0%} of the median day's {median:.0f} trips "
        f"(an outage, a storm, or a missing trip file?): {describe_ranges(days, 'D')}"
    ]
