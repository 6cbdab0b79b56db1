"""A generator of daily records with the real schema and realistic seasonality.

Tests and benchmarks use it instead of the real dataset, which is never committed. Demand
follows temperature (warm days are busy, hot days a little less), grows from one year to the
next, drops in bad weather and on non-working days for registered riders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.records import DAY_COLUMNS, FIRST_YEAR

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


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Serialise a frame the way the UCI files are written (comma-separated, no index)."""
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
