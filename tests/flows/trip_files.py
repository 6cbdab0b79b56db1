"""Trip history built in code for the flow tests: monthly files in both layouts, and weather.

A day has a few dozen trips at random local times, some crossing midnight; March 2024 holds
the DST change of America/New_York. Nothing here is real trip data.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

CURRENT = (
    "ride_id,rideable_type,started_at,ended_at,start_station_name,start_station_id,"
    "end_station_name,end_station_id,start_lat,start_lng,end_lat,end_lng,member_casual"
)
LEGACY = (
    "Duration,Start date,End date,Start station number,Start station,End station number,"
    "End station,Bike number,Member type"
)
STATIONS = (31000, 31001, 31002)


def month_trips(year: int, month: int, seed: int) -> pd.DataFrame:
    """One month of trips: start, end (local wall-clock), station, member; sorted by start."""
    rng = np.random.default_rng(seed)
    first = date(year, month, 1)
    days = (date(year + month // 12, month % 12 + 1, 1) - first).days
    rows = []
    for offset in range(days):
        day = pd.Timestamp(first + timedelta(days=offset))
        for _ in range(int(rng.integers(20, 40))):
            start = day + pd.Timedelta(minutes=int(rng.integers(0, 24 * 60)))
            end = start + pd.Timedelta(minutes=int(rng.integers(3, 90)))
            member = bool(rng.random() < 0.75)
            rows.append((start, end, int(rng.choice(STATIONS)), member))
    frame = pd.DataFrame(rows, columns=["start", "end", "station", "member"])
    return frame.sort_values("start", kind="stable").reset_index(drop=True)


def trips_text(trips: pd.DataFrame, layout: str, prefix: str) -> str:
    """The trips as a CSV in the current or the legacy layout."""
    lines = [CURRENT if layout == "current" else LEGACY]
    for index, trip in enumerate(trips.itertuples()):
        start, end = f"{trip.start:%Y-%m-%d %H:%M:%S}", f"{trip.end:%Y-%m-%d %H:%M:%S}"
        if layout == "current":
            member = "member" if trip.member else "casual"
            lines.append(
                f"{prefix}{index:06X},classic_bike,{start},{end},Stand {trip.station},"
                f"{trip.station},Stand 31000,31000,38.9,-77.0,38.9,-77.0,{member}"
            )
        else:
            member = "Member" if trip.member else "Casual"
            seconds = int((trip.end - trip.start).total_seconds())
            lines.append(
                f"{seconds},{start},{end},{trip.station},Stand {trip.station},31000,"
                f"Stand 31000,W{index:05d},{member}"
            )
    return "\n".join(lines) + "\n"


def write_month(folder: Path, year: int, month: int, layout: str, packing: str) -> pd.DataFrame:
    """Write one month's file (csv, gz or zip) into ``folder``; return its trips."""
    trips = month_trips(year, month, seed=year * 100 + month)
    name = f"{year}{month:02d}-tripdata"
    text = trips_text(trips, layout, prefix=f"R{year}{month:02d}")
    folder.mkdir(parents=True, exist_ok=True)
    if packing == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}.csv", text)
        (folder / f"{name}.zip").write_bytes(buffer.getvalue())
    elif packing == "gz":
        (folder / f"{name}.csv.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (folder / f"{name}.csv").write_text(text)
    return trips


# January to April 2024 (121 days): both layouts, every packing, mixed in one folder.
MONTHS = ((1, "legacy", "zip"), (2, "legacy", "csv"), (3, "current", "gz"), (4, "current", "zip"))


def write_history(folder: Path, months: tuple[tuple[int, str, str], ...] = MONTHS) -> pd.DataFrame:
    """Write the months' trip files (2024) into ``folder``; return all their trips."""
    return pd.concat(
        [write_month(folder, 2024, month, layout, packing) for month, layout, packing in months],
        ignore_index=True,
    )


def write_weather(path: Path, first: date = date(2024, 1, 1), days: int = 200) -> Path:
    """A daily weather table in raw units (temp_c, ..., weathersit) covering ``days`` dates."""
    rng = np.random.default_rng(7)
    dates = [first + timedelta(days=offset) for offset in range(days)]
    frame = pd.DataFrame(
        {
            "date": [day.isoformat() for day in dates],
            "temp_c": np.round(rng.uniform(0, 35, days), 2),
            "feels_like_c": np.round(rng.uniform(0, 40, days), 2),
            "humidity_pct": np.round(rng.uniform(20, 95, days), 1),
            "wind_kmh": np.round(rng.uniform(0, 40, days), 1),
            "weathersit": rng.integers(1, 4, days),
        }
    )
    path.write_text(frame.to_csv(index=False))
    return path


def daily_counts(trips: pd.DataFrame) -> pd.DataFrame:
    """What the day rows must say: casual, registered and cnt by local start date."""
    by_day = trips.assign(dteday=trips["start"].dt.strftime("%Y-%m-%d")).groupby("dteday")
    registered = by_day["member"].sum().astype(np.int64)
    cnt = by_day.size().astype(np.int64)
    return pd.DataFrame({"casual": cnt - registered, "registered": registered, "cnt": cnt})


def write_hourly_weather(path: Path, first: date = date(2024, 1, 1), days: int = 130) -> Path:
    """An hourly weather table in raw units: ``date``, ``hour`` 0-23 and the weather columns."""
    daily = write_weather(path, first, days)
    frame = pd.read_csv(daily).loc[lambda rows: rows.index.repeat(24)].reset_index(drop=True)
    frame.insert(1, "hour", np.tile(np.arange(24), days))
    path.write_text(frame.to_csv(index=False))
    return path
