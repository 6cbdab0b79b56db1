"""Trip files and weather tables rebuilt from the UCI hour.csv and day.csv (for acceptance tests).

hour.csv's casual and registered counts become one trip each, starting at a random second
inside its hour, written as monthly files in both layouts, plain, gzipped and zipped (one zip
holds a quarter, one member a month), all in one folder. The weather goes back to raw units
(temp * 41, atemp * 50, hum * 100, windspeed * 67); an hour missing from hour.csv takes the
weather of the nearest hour before it (or after it, at the start).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from tests.tasks.prepare.trips.trip_builder import fast_csv_text, write_trip_file

RAW_WEATHER = {
    "temp": "temp_c",
    "atemp": "feels_like_c",
    "hum": "humidity_pct",
    "windspeed": "wind_kmh",
}
DIVISORS = {"temp": 41.0, "atemp": 50.0, "hum": 100.0, "windspeed": 67.0}


def trips_from_hours(hours: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One trip per casual or registered count of each hour, at a random second inside it."""
    rng = np.random.default_rng(seed)
    casual = hours["casual"].to_numpy()
    registered = hours["registered"].to_numpy()
    moments = pd.to_datetime(hours["dteday"]).to_numpy().astype("datetime64[s]") + (
        hours["hr"].to_numpy() * 3600
    ).astype("timedelta64[s]")
    per_hour = casual + registered
    starts = np.repeat(moments, per_hour)
    starts = starts + rng.integers(0, 3600, len(starts)).astype("timedelta64[s]")
    # Within each hour the casual riders come first, then the members.
    offsets = np.arange(len(starts)) - np.repeat(np.cumsum(per_hour) - per_hour, per_hour)
    is_member = offsets >= np.repeat(casual, per_hour)
    minutes = rng.integers(1, 120, len(starts))  # some cross an hour, or midnight
    order = np.argsort(starts, kind="stable")
    starts, is_member, minutes = starts[order], is_member[order], minutes[order]
    return pd.DataFrame(
        {
            "start": starts,
            "end": starts + minutes.astype("timedelta64[m]"),
            "registered": is_member,
            "station": rng.integers(31000, 31300, len(starts)),
            "ride": np.strings.add("R", np.arange(len(starts)).astype(np.dtypes.StringDType())),
        }
    )


def write_monthly_files(trips: pd.DataFrame, folder: Path) -> list[Path]:
    """Monthly files, mixed: 2011 legacy (.csv, .csv.gz, a quarterly .zip), 2012 current."""
    folder.mkdir(parents=True, exist_ok=True)
    month = trips["start"].dt.to_period("M")
    written: list[Path] = []
    for index, (period, part) in enumerate(trips.groupby(month, sort=True)):
        layout = "legacy" if period.year == 2011 else "current"
        stamp = f"{period.year}{period.month:02d}"
        kind = index % 3
        if kind == 2:
            continue  # written below, inside its quarter's zip
        suffix = ".csv" if kind == 0 else ".csv.gz"
        written.append(
            write_trip_file(folder / f"{stamp}-tripdata{suffix}", fast_csv_text(part, layout))
        )
    # Every third month goes into a zip of its own quarter, one member a month.
    for quarter, part in trips.groupby(trips["start"].dt.to_period("Q"), sort=True):
        months = [
            (period, rows)
            for period, rows in part.groupby(part["start"].dt.to_period("M"), sort=True)
            if (period.year - 2011) * 12 + period.month - 1 in range(2, 24, 3)
        ]
        if not months:
            continue
        path = folder / f"{quarter.year}-Q{quarter.quarter}-tripdata.zip"
        deflated = {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 1}
        with zipfile.ZipFile(path, "w", **deflated) as archive:
            for period, rows in months:
                layout = "legacy" if period.year == 2011 else "current"
                member = f"{period.year}{period.month:02d}-tripdata.csv"
                archive.writestr(member, fast_csv_text(rows, layout))
        written.append(path)
    return sorted(written)


def _raw(frame: pd.DataFrame) -> pd.DataFrame:
    raw = pd.DataFrame({"date": frame["dteday"]})
    if "hr" in frame:
        raw["hour"] = frame["hr"].to_numpy()
    for name, column in RAW_WEATHER.items():
        raw[column] = frame[name].to_numpy() * DIVISORS[name]
    raw["weathersit"] = frame["weathersit"].to_numpy()
    return raw


def daily_weather(days: pd.DataFrame) -> str:
    """day.csv's weather as a raw-unit daily weather table (CSV text)."""
    return _raw(days).to_csv(index=False, float_format="%.10g", lineterminator="\n")


def hourly_weather(hours: pd.DataFrame) -> str:
    """hour.csv's weather in raw units, every hour of every day (gaps from a neighbour)."""
    days = pd.to_datetime(hours["dteday"]).drop_duplicates()
    grid = pd.DataFrame(
        {
            "dteday": np.repeat(days.dt.strftime("%Y-%m-%d").to_numpy(), 24),
            "hr": np.tile(np.arange(24), len(days)),
        }
    )
    full = grid.merge(hours, on=["dteday", "hr"], how="left")
    full = full.ffill().bfill()
    full["weathersit"] = full["weathersit"].astype(int)
    return _raw(full).to_csv(index=False, float_format="%.10g", lineterminator="\n")
