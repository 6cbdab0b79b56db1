"""The weather table (raw units) read, checked, and normalised as the UCI Readme states."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.errors import WeatherDataError
from schemas.records import Granularity
from tasks.prepare.trips.layouts import clean_column
from tasks.prepare.trips.problems import Problems

DATE = "date"
HOUR = "hour"
WEATHERSIT = "weathersit"
# raw column -> (UCI column, the divisor of the UCI Readme). The records' schema keeps each
# normalised value in [0, 1], so a raw value must lie in [0, divisor].
NORMALISED: dict[str, tuple[str, float]] = {
    "temp_c": ("temp", 41.0),
    "feels_like_c": ("atemp", 50.0),
    "humidity_pct": ("hum", 100.0),
    "wind_kmh": ("windspeed", 67.0),
}
WEATHER_COLUMNS: tuple[str, ...] = ("temp", "atemp", "hum", "windspeed")


def weather_columns(granularity: Granularity) -> tuple[str, ...]:
    """The columns a daily (date, ...) or hourly (date, hour, ...) weather table needs."""
    keys = (DATE, HOUR) if granularity == "hour" else (DATE,)
    return (*keys, *NORMALISED, WEATHERSIT)


def _read_text(source: str | Path | bytes) -> tuple[str, str]:
    """(label, text) of a path, or of CSV text given directly."""
    if isinstance(source, bytes):
        return "weather table", source.decode("utf-8-sig")
    if isinstance(source, str) and "\n" in source:
        return "weather table", source
    path = Path(source)
    try:
        return str(path), path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise WeatherDataError(f"{path}: the weather table cannot be read ({error})") from error


def read_weather(source: str | Path | bytes, granularity: Granularity = "day") -> pd.DataFrame:
    """Read and check a weather table; return dteday, (hr,) weathersit, temp, atemp, hum, windspeed.

    ``source`` is a path or the CSV text. Columns: ``date`` (YYYY-MM-DD), ``hour`` (0-23,
    hourly), ``temp_c``, ``feels_like_c``, ``humidity_pct``, ``wind_kmh``, ``weathersit``
    (1-4); others are ignored. Normalised as the UCI Readme: temp = temp_c / 41, atemp =
    feels_like_c / 50, hum = humidity_pct / 100, windspeed = wind_kmh / 67. Every broken rule
    is a WeatherDataError paragraph naming the line and value. Sorted by date (and hour).
    """
    label, text = _read_text(source)
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame.columns = [clean_column(name) for name in frame.columns]
    needed = weather_columns(granularity)
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        found = ", ".join(frame.columns) or "(no header)"
        raise WeatherDataError(
            f"{label}: the {granularity}ly weather table lacks the column(s) "
            f"{', '.join(missing)}. Columns found: {found}. Expected: {', '.join(needed)}.",
            file=label,
        )
    problems = Problems()
    lines = np.arange(2, len(frame) + 2, dtype=np.int64)
    dates = pd.to_datetime(frame[DATE].str.strip(), format="%Y-%m-%d", errors="coerce")
    problems.add_rows(
        label, "date", DATE, lines, frame[DATE], dates.isna().to_numpy(), "is not a YYYY-MM-DD date"
    )
    result: dict[str, object] = {"dteday": dates.to_numpy(dtype="datetime64[ns]")}
    checks: list[tuple[str, float, float, str]] = [
        (WEATHERSIT, 1, 4, "is not a weather situation 1, 2, 3 or 4"),
        *(
            (raw, 0.0, divisor, f"is outside 0..{divisor:g} (UCI's {name} = {raw} / {divisor:g})")
            for raw, (name, divisor) in NORMALISED.items()
        ),
    ]
    if granularity == "hour":
        checks.insert(0, (HOUR, 0, 23, "is not an hour 0..23"))
    numbers: dict[str, np.ndarray] = {}
    for column, low, high, says in checks:
        values = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(dtype=float)
        broken = ~((values >= low) & (values <= high))  # NaN (not a number) breaks it too
        if column in (HOUR, WEATHERSIT):
            broken |= ~np.isnan(values) & (values != np.round(values))
        problems.add_rows(label, column, column, lines, frame[column], broken, says)
        numbers[column] = values
    if granularity == "hour":
        result["hr"] = numbers[HOUR]
    result[WEATHERSIT] = numbers[WEATHERSIT]
    for raw, (name, divisor) in NORMALISED.items():
        result[name] = numbers[raw] / divisor
    table = pd.DataFrame(result)
    if not problems.failed:
        table = table.astype({key: np.int64 for key in ("hr", WEATHERSIT) if key in table})
        keys = ["dteday", "hr"] if granularity == "hour" else ["dteday"]
        repeated = table.duplicated(keys, keep="first").to_numpy()
        values = frame[DATE] + (" hour " + frame[HOUR] if granularity == "hour" else "")
        problems.add_rows(
            label, "repeat", " and ".join([DATE, HOUR][: len(keys)]), lines, values, repeated,
            "appears twice (one weather row per " + granularity + ")",
        )  # fmt: skip
    if problems.failed:
        raise WeatherDataError.from_problems(label, problems.paragraphs())
    keys = ["dteday", "hr"] if granularity == "hour" else ["dteday"]
    return table.sort_values(keys, kind="stable").reset_index(drop=True)
