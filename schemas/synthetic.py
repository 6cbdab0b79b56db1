"""A generator of daily or hourly records with the real schema and realistic seasonality.

Tests and benchmarks use it instead of the real dataset, which is never committed. Demand
follows temperature (warm days are busy, hot days a little less), grows from one year to the
next, drops in bad weather and on non-working days for registered riders. Hourly demand has
commuter peaks on working days and an afternoon hump otherwise. With ``stations`` > 0 every
day (or hour) has one row per station, with a ``station`` id column; stations differ in size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.records import DAY_COLUMNS, FIRST_YEAR, STATION_COLUMN, Granularity, record_columns

# Fixed-date US federal holidays; enough to exercise the holiday/workingday rules.
_HOLIDAYS = {(1, 1), (7, 4), (11, 11), (12, 25)}


def _season(dates: pd.DatetimeIndex) -> np.ndarray:
    # The dataset's seasons change near the solstices and equinoxes (1 = winter/spring).
    day_of_year = dates.day_of_year.to_numpy()
    season = np.full(len(dates), 1)
    season[(day_of_year >= 80) & (day_of_year < 172)] = 2
    season[(day_of_year >= 172) & (day_of_year < 266)] = 3
    season[(day_of_year >= 266) & (day_of_year < 355)] = 4
    return season


def make_day_frame(days: int = 731, seed: int = 0, start: str = "2011-01-01") -> pd.DataFrame:
    """Return ``days`` consecutive daily records that pass the ``DayRecords`` schema."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    weekday = ((dates.day_of_week + 1) % 7).to_numpy()
    holiday = np.array([(d.month, d.day) in _HOLIDAYS for d in dates], dtype=int)
    workingday = ((weekday >= 1) & (weekday <= 5) & (holiday == 0)).astype(int)

    day_of_year = dates.day_of_year.to_numpy()
    warmth = 0.5 - 0.3 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    temp = np.clip(warmth + rng.normal(0, 0.07, days), 0.02, 0.98)
    atemp = np.clip(temp * 0.9 + rng.normal(0, 0.02, days) + 0.03, 0.0, 1.0)
    hum = np.clip(0.62 + rng.normal(0, 0.14, days), 0.05, 1.0)
    windspeed = np.clip(rng.gamma(4.0, 0.048, days), 0.02, 0.8)
    weathersit = np.where(hum > 0.85, 3, np.where(hum > 0.7, 2, 1))
    weathersit[rng.random(days) < 0.003] = 4

    years = (dates.year - FIRST_YEAR).to_numpy()
    comfort = 1.0 - 2.2 * (temp - 0.65) ** 2
    base = 5200 * comfort * (1.0 + 0.6 * years)
    weather_factor = np.array([1.0, 1.0, 0.82, 0.35, 0.15])[weathersit]
    registered = base * (0.62 + 0.2 * workingday) * weather_factor
    casual = base * (0.08 + 0.22 * (1 - workingday)) * weather_factor
    registered = np.maximum(0, registered * rng.normal(1.0, 0.08, days)).round().astype(int)
    casual = np.maximum(0, casual * rng.normal(1.0, 0.15, days)).round().astype(int)

    frame = pd.DataFrame(
        {
            "instant": np.arange(1, days + 1),
            "dteday": dates.strftime("%Y-%m-%d"),
            "season": _season(dates),
            "yr": years,
            "mnth": dates.month.to_numpy(),
            "holiday": holiday,
            "weekday": weekday,
            "workingday": workingday,
            "weathersit": weathersit,
            "temp": temp.round(6),
            "atemp": atemp.round(6),
            "hum": hum.round(6),
            "windspeed": windspeed.round(6),
            "casual": casual,
            "registered": registered,
            "cnt": casual + registered,
        }
    )
    return frame[list(DAY_COLUMNS)]


# Share of a day's riders in each hour: commuters peak at 8 and 17-18 on working days;
# leisure riders fill the early afternoon.
_COMMUTE = np.array(
    [
        1,
        0.5,
        0.3,
        0.2,
        0.3,
        1.5,
        5,
        12,
        17,
        9,
        5,
        5.5,
        6.5,
        6.5,
        6,
        7,
        11,
        18,
        16,
        11,
        8,
        6,
        4.5,
        2.5,
    ]
)
_LEISURE = np.r_[
    [2.5, 2, 1.5, 0.8, 0.4, 0.4, 0.8, 2, 4, 6, 8, 9.5],
    [10.5, 10.5, 10.5, 10, 9.5, 9, 7.5, 6, 4.5, 3.8, 3.3, 2.8],
]
FIRST_STATION_ID = 31000  # Capital Bikeshare numbers its stations from 31000


def iter_record_blocks(
    days: int = 731,
    stations: int = 0,
    granularity: Granularity = "day",
    seed: int = 0,
    block_days: int = 30,
) -> Iterator[pd.DataFrame]:
    """Yield the records of ``days`` days in blocks of days, ordered by date, hour, station.

    ``stations`` = 0 writes no station column (the UCI files); K > 0 writes K stations.
    """
    day_frame = make_day_frame(days, seed=seed)
    rng = np.random.default_rng(seed + 1)
    station_count = max(stations, 1)
    share = rng.lognormal(0.0, 0.8, station_count)
    share /= share.sum()
    hours = 24 if granularity == "hour" else 1
    commute = _COMMUTE / _COMMUTE.sum()
    leisure = _LEISURE / _LEISURE.sum()
    instant = 1
    for begin in range(0, days, block_days):
        block = day_frame.iloc[begin : begin + block_days]
        n_days = len(block)
        per_day = hours * station_count
        rows = n_days * per_day
        expand = {name: np.repeat(block[name].to_numpy(), per_day) for name in block.columns}
        hour = np.tile(np.repeat(np.arange(hours), station_count), n_days)
        station = np.tile(np.arange(station_count), n_days * hours)
        working = expand["workingday"].astype(bool)
        if granularity == "hour":
            profile_registered = np.where(working, commute[hour], leisure[hour])
            profile_casual = leisure[hour]
            diurnal = np.sin(2 * np.pi * (hour - 9) / 24)
            expand["temp"] = np.clip(expand["temp"] + 0.08 * diurnal, 0.0, 1.0).round(4)
            expand["atemp"] = np.clip(expand["atemp"] + 0.07 * diurnal, 0.0, 1.0).round(4)
            expand["hum"] = np.clip(expand["hum"] - 0.1 * diurnal, 0.0, 1.0).round(4)
            # One city, one wind: the hour's gust factor is shared by every station.
            gust = np.repeat(rng.normal(1.0, 0.2, n_days * hours), station_count)
            wind = expand["windspeed"] * gust
            expand["windspeed"] = np.clip(wind, 0.0, 1.0).round(4)
        else:
            profile_registered = profile_casual = np.ones(rows)
        scale = share[station] if stations else np.ones(rows)
        registered = rng.poisson(expand["registered"] * scale * profile_registered)
        casual = rng.poisson(expand["casual"] * scale * profile_casual)
        frame = {name: expand[name] for name in block.columns}
        frame.update(
            instant=np.arange(instant, instant + rows),
            casual=casual,
            registered=registered,
            cnt=casual + registered,
        )
        instant += rows
        columns = list(record_columns(granularity))
        if granularity == "hour":
            frame["hr"] = hour
        if stations:
            frame[STATION_COLUMN] = FIRST_STATION_ID + station
            columns.insert(2, STATION_COLUMN)
        yield pd.DataFrame(frame)[columns]


def make_records(
    days: int = 731, stations: int = 0, granularity: Granularity = "day", seed: int = 0
) -> pd.DataFrame:
    """Return all records of ``iter_record_blocks`` as one frame (for small sizes)."""
    return pd.concat(list(iter_record_blocks(days, stations, granularity, seed)), ignore_index=True)


def write_records_csv(
    path: Path,
    days: int = 731,
    stations: int = 0,
    granularity: Granularity = "day",
    seed: int = 0,
) -> int:
    """Write generated records to a CSV file block by block; return the number of rows."""
    total = 0
    with open(path, "wb") as handle:
        for index, block in enumerate(iter_record_blocks(days, stations, granularity, seed)):
            handle.write(block.to_csv(index=False, header=index == 0, lineterminator="\n").encode())
            total += len(block)
    return total


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise a frame the way the UCI files are written (comma-separated, no index)."""
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
