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
    summed: pd.DataFrame, granularity: Granularity, stations: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Every date (hour) from the first to the last trip; per station, its own run of dates.

    Returns the grid's times (days, or hours, since 1970), its station ids (None without
    stations), sorted by time then station, and the position of each count row in the grid.
    """
    per_day = 24 if granularity == "hour" else 1
    days = summed[DATE_COLUMN].to_numpy().astype("datetime64[D]").astype(np.int64)
    times = days * per_day + (summed["hr"].to_numpy(np.int64) if per_day == 24 else 0)
    if not stations:
        grid = np.arange(days.min() * per_day, (days.max() + 1) * per_day, dtype=np.int64)
        return grid, None, times - grid[0]
    ids, which = np.unique(summed[STATION_COLUMN].to_numpy(np.int64), return_inverse=True)
    low = np.full(len(ids), np.iinfo(np.int64).max)
    high = np.full(len(ids), np.iinfo(np.int64).min)
    np.minimum.at(low, which, days)
    np.maximum.at(high, which, days)
    lengths = (high - low + 1) * per_day
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = np.repeat(low * per_day, lengths) + offsets
    index = np.repeat(np.arange(len(ids)), lengths)
    order = np.lexsort((index, grid))
    grid, index = grid[order], index[order]
    # Sorted by (time, station): time * stations + station index grows along the grid.
    keys = grid * len(ids) + index
    return grid, ids[index], np.searchsorted(keys, times * len(ids) + which)


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


def _check_weather(
    grid: np.ndarray, found: np.ndarray, weather: pd.DataFrame, granularity: Granularity
) -> None:
    """Refuse trips outside the weather's dates and dates (hours) without weather."""
    if not len(weather):
        raise WeatherDataError(
            "the weather table has no rows; trips need a weather row per " + granularity
        )
    unit = "h" if granularity == "hour" else "D"
    moments = grid.astype(f"datetime64[{unit}]")
    trip_days = moments.astype("datetime64[D]")
    low = weather[DATE_COLUMN].min().to_datetime64().astype("datetime64[D]")
    high = weather[DATE_COLUMN].max().to_datetime64().astype("datetime64[D]")
    outside = (trip_days < low) | (trip_days > high)
    problems = []
    if outside.any():
        problems.append(
            f"trips fall outside the weather's dates ({low}..{high}): trips on "
            f"{describe_ranges(trip_days[outside], 'D')} have no weather; extend the weather "
            "table or leave those trip files out"
        )
    inside = ~outside & ~found
    if inside.any():
        problems.append(
            f"the weather table has no row for these {granularity}s between the first and the "
            f"last trip: {describe_ranges(moments[inside], unit)}; every {granularity} needs "
            "its weather"
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
    hourly = granularity == "hour"
    per_day = 24 if hourly else 1
    grid, station_ids, positions = _grid(summed, granularity, stations)
    weather = _skipped_hours_filled(weather, timezone)
    weather_days = weather[DATE_COLUMN].to_numpy().astype("datetime64[D]").astype(np.int64)
    weather_times = weather_days * per_day + (weather["hr"].to_numpy(np.int64) if hourly else 0)
    at = np.minimum(np.searchsorted(weather_times, grid), max(len(weather_times) - 1, 0))
    found = (weather_times[at] == grid) if len(weather_times) else np.zeros(len(grid), bool)
    _check_weather(grid, found, weather, granularity)
    # The calendar of each distinct day, taken by every row of that day.
    first_day = grid[0] // per_day
    day_index = grid // per_day - first_day
    days = pd.date_range(
        pd.Timestamp(np.datetime64(int(first_day), "D")), periods=int(day_index[-1]) + 1
    )
    calendar = calendar_columns(days, None, holiday_calendar, first_year)
    labels = np.array(days.strftime("%Y-%m-%d"), dtype=object)
    columns: dict[str, np.ndarray] = {
        "instant": np.arange(1, len(grid) + 1, dtype=np.int64),
        DATE_COLUMN: labels[day_index],
    }
    if station_ids is not None:
        columns[STATION_COLUMN] = station_ids
    for name in ("season", "yr", "mnth"):
        columns[name] = calendar[name].to_numpy()[day_index]
    if hourly:
        columns["hr"] = grid - (grid // 24) * 24
    for name in ("holiday", "weekday", "workingday"):
        columns[name] = calendar[name].to_numpy()[day_index]
    columns[WEATHERSIT] = weather[WEATHERSIT].to_numpy(np.int64)[at]
    for name in WEATHER_COLUMNS:
        columns[name] = weather[name].to_numpy(np.float64)[at]
    for name in COUNT_COLUMNS:
        values = np.zeros(len(grid), dtype=np.int64)
        values[positions] = summed[name].to_numpy(np.int64)
        columns[name] = values
    order = list(record_columns(granularity))
    if stations:
        order.insert(2, STATION_COLUMN)
    # In the UCI order, and without a copy: per station and hour, millions of rows.
    return pd.DataFrame({name: columns[name] for name in order}, copy=False)


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
