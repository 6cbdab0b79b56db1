"""Trip history files built in code, in either published layout, as .csv, .csv.gz or .zip."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.prepare.trips.layouts import CURRENT, LEGACY


def timestamps(values: np.ndarray, suffix: str = "") -> np.ndarray:
    """datetime64 values as 'YYYY-MM-DD HH:MM:SS' text (plus e.g. 'Z' or '+00:00')."""
    text = np.char.replace(
        np.datetime_as_string(values.astype("datetime64[s]"), unit="s"), "T", " "
    )
    return np.char.add(text, suffix) if suffix else text


def make_trips(
    starts: np.ndarray,
    minutes: np.ndarray,
    registered: np.ndarray,
    stations: np.ndarray | None = None,
    first_ride: int = 0,
) -> pd.DataFrame:
    """A neutral trip table: start, end (datetime64), registered, station, ride (unique ids)."""
    starts = np.asarray(starts).astype("datetime64[s]")
    count = len(starts)
    return pd.DataFrame(
        {
            "start": starts,
            "end": starts + np.asarray(minutes).astype("timedelta64[m]"),
            "registered": np.asarray(registered, dtype=bool),
            "station": np.full(count, 31000) if stations is None else np.asarray(stations),
            "ride": [f"{index:016X}" for index in range(first_ride, first_ride + count)],
        }
    )


def random_trips(
    first_day: str, days: int, count: int, seed: int = 0, skip_days: Sequence[int] = ()
) -> pd.DataFrame:
    """``count`` trips starting at random local times over ``days`` days (none on skip_days)."""
    rng = np.random.default_rng(seed)
    allowed = np.array([day for day in range(days) if day not in set(skip_days)])
    day = rng.choice(allowed, count)
    seconds = rng.integers(0, 86_400, count)
    starts = np.datetime64(first_day, "s") + (day * 86_400 + seconds).astype("timedelta64[s]")
    starts = np.sort(starts)
    return make_trips(
        starts,
        rng.integers(2, 90, count),
        rng.random(count) < 0.8,
        rng.choice([31000, 31001, 31002, 31017], count),
        first_ride=seed * 1_000_000,
    )


def in_layout(trips: pd.DataFrame, layout: str, suffix: str = "") -> pd.DataFrame:
    """The trips as a published file has them (legacy or current columns, in order)."""
    count = len(trips)
    start = timestamps(trips["start"].to_numpy(), suffix)
    end = timestamps(trips["end"].to_numpy(), suffix)
    if layout == "legacy":
        duration = (trips["end"] - trips["start"]).dt.total_seconds().astype(int)
        columns = {
            "Duration": duration.to_numpy(),
            "Start date": start,
            "End date": end,
            "Start station number": trips["station"].to_numpy(),
            "Start station": np.full(count, "Somewhere St & 1st St NW"),
            "End station number": trips["station"].to_numpy(),
            "End station": np.full(count, "Elsewhere, Ave"),
            "Bike number": np.full(count, "W00001"),
            "Member type": np.where(trips["registered"], "Member", "Casual"),
        }
        return pd.DataFrame(columns)[list(LEGACY.columns)]
    columns = {
        "ride_id": trips["ride"].to_numpy(),
        "rideable_type": np.full(count, "classic_bike"),
        "started_at": start,
        "ended_at": end,
        "start_station_name": np.full(count, "Somewhere St & 1st St NW"),
        "start_station_id": trips["station"].to_numpy(),
        "end_station_name": np.full(count, "Elsewhere"),
        "end_station_id": trips["station"].to_numpy(),
        "start_lat": np.full(count, 38.9),
        "start_lng": np.full(count, -77.0),
        "end_lat": np.full(count, 38.9),
        "end_lng": np.full(count, -77.0),
        "member_casual": np.where(trips["registered"], "member", "casual"),
    }
    return pd.DataFrame(columns)[list(CURRENT.columns)]


def csv_text(frame: pd.DataFrame) -> str:
    """A frame as CSV text, as the systems publish it."""
    return frame.to_csv(index=False, lineterminator="\n")


def write_trip_file(path: Path, *members: pd.DataFrame | str) -> Path:
    """Write .csv, .csv.gz or .zip (one member per frame); a str member is CSV text as is."""
    texts = [member if isinstance(member, str) else csv_text(member) for member in members]
    if path.name.endswith(".zip"):
        deflated = {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 1}
        with zipfile.ZipFile(path, "w", **deflated) as archive:
            for index, text in enumerate(texts):
                name = f"{path.stem}.csv" if len(texts) == 1 else f"{path.stem}-{index + 1}.csv"
                archive.writestr(name, text)
            # What macOS adds to the zips it makes: never a trip file.
            archive.writestr(f"__MACOSX/._{path.stem}.csv", b"\x00\x05\x16\x07")
    elif path.name.endswith(".gz"):
        with gzip.open(path, "wt", compresslevel=1, encoding="utf-8", newline="") as handle:
            handle.write("".join(texts))
    else:
        path.write_text("".join(texts), encoding="utf-8", newline="")
    return path


def expected_counts(trips: pd.DataFrame, granularity: str, stations: bool) -> pd.DataFrame:
    """The counts computed plainly from the trip table (local start times)."""
    frame = pd.DataFrame(
        {
            "dteday": trips["start"].dt.floor("D").astype("datetime64[ns]"),
            "registered": trips["registered"].astype(np.int64),
        }
    )
    keys = ["dteday"]
    if granularity == "hour":
        frame["hr"] = trips["start"].dt.hour.astype(np.int64)
        keys.append("hr")
    if stations:
        frame["station"] = trips["station"].astype(np.int64)
        keys.append("station")
    grouped = frame.groupby(keys)["registered"].agg(["sum", "size"]).reset_index()
    result = grouped[keys].copy()
    result["casual"] = grouped["size"] - grouped["sum"]
    result["registered"] = grouped["sum"]
    result["cnt"] = grouped["size"]
    return result.astype({name: np.int64 for name in ("casual", "registered", "cnt")})


def weather_text(
    days: Sequence[str] | pd.DatetimeIndex, hourly: bool = False, seed: int = 0
) -> str:
    """A weather table in raw units for ``days`` (every hour of each, when hourly)."""
    rng = np.random.default_rng(seed)
    index = pd.DatetimeIndex(pd.to_datetime(list(days)))
    hours = range(24) if hourly else [None]
    out = io.StringIO()
    out.write(
        "date,"
        + ("hour," if hourly else "")
        + "temp_c,feels_like_c,humidity_pct,wind_kmh,weathersit\n"
    )
    for day in index:
        for hour in hours:
            values = (
                rng.uniform(1, 40), rng.uniform(1, 49), rng.uniform(10, 100), rng.uniform(0, 60),
                int(rng.integers(1, 4)),
            )  # fmt: skip
            lead = f"{day:%Y-%m-%d}," + (f"{hour}," if hourly else "")
            out.write(lead + ",".join(f"{value:.4f}" for value in values[:4]) + f",{values[4]}\n")
    return out.getvalue()


_TEXT = np.dtypes.StringDType()
_TIMES_OF_DAY: list[np.ndarray] = []


def _times_of_day() -> np.ndarray:
    if not _TIMES_OF_DAY:
        labels = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
        _TIMES_OF_DAY.append(np.array(labels, dtype=_TEXT))
    return _TIMES_OF_DAY[0]


def fast_timestamps(values: np.ndarray) -> np.ndarray:
    """'YYYY-MM-DD HH:MM:SS' of many datetime64 values, from a table of days and of seconds."""
    seconds = np.asarray(values).astype("datetime64[s]")
    days = seconds.astype("datetime64[D]")
    first = days.min()
    day_labels = np.datetime_as_string(np.arange(first, days.max() + 1), unit="D").astype(_TEXT)
    day_labels = np.strings.add(day_labels, " ")
    return np.strings.add(
        day_labels[(days - first).astype(np.int64)],
        _times_of_day()[(seconds - days).astype(np.int64)],
    )


def fast_csv_text(trips: pd.DataFrame, layout: str) -> str:
    """The trips as CSV text in a layout, built column-wise (millions of trips in seconds)."""
    if not len(trips):
        return ",".join(LEGACY.columns if layout == "legacy" else CURRENT.columns) + "\n"
    start = fast_timestamps(trips["start"].to_numpy())
    end = fast_timestamps(trips["end"].to_numpy())
    station = trips["station"].to_numpy().astype(_TEXT)
    if layout == "legacy":
        seconds = (trips["end"] - trips["start"]).dt.total_seconds().astype(np.int64)
        member = np.where(trips["registered"], "Member", "Casual").astype(_TEXT)
        parts = [
            seconds.to_numpy().astype(_TEXT), ",", start, ",", end, ",", station,
            ",Somewhere St & 1st St NW,", station, ",Elsewhere,W00001,", member,
        ]  # fmt: skip
        header = ",".join(LEGACY.columns)
    else:
        member = np.where(trips["registered"], "member", "casual").astype(_TEXT)
        parts = [
            trips["ride"].to_numpy().astype(_TEXT), ",classic_bike,", start, ",", end,
            ",Somewhere St & 1st St NW,", station, ",Elsewhere,", station,
            ",38.9,-77.0,38.9,-77.0,", member,
        ]  # fmt: skip
        header = ",".join(CURRENT.columns)
    rows = parts[0]
    for part in parts[1:]:
        rows = np.strings.add(rows, part)
    return header + "\n" + "\n".join(rows.tolist()) + "\n"
