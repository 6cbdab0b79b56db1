"""How trip history becomes day or hour rows: the ``trips`` part of a retrain config (issue 23).

A run's ``source`` may be trip files (a folder or glob pattern: ``schemas/source.py``'s
``TripsSource``); these fields say how they are counted. ``granularity`` (day or hour) stays
the run's own field, since it shapes a day.csv source too.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.source import LocalSource, TripsSource, parse_source
from schemas.sources import OptionalSource

# The holidays of trip-built rows: federal plus DC Emancipation Day (the UCI files' own), federal.
HolidayCalendar = Literal["us-dc", "us-federal", "none"]
DEFAULT_TIMEZONE = "America/New_York"


class TripsConfig(BaseModel):
    """Trip history as a source: the weather joined on, the clock, the holidays, per station."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weather: OptionalSource = Field(
        "",
        max_length=4096,
        description="Trips source only, and required there: the weather CSV (a local path or "
        "an http(s) URL, same allow-list as source), a row a date (or hour): temp_c, "
        "feels_like_c, humidity_pct, wind_kmh, weathersit 1-4. Empty: none (a day.csv "
        "source carries its own weather).",
    )
    timezone: str = Field(
        DEFAULT_TIMEZONE,
        min_length=1,
        max_length=64,
        description="Trips source: the IANA time zone whose wall-clock time counts a trip's "
        "start into its day or hour (Capital Bikeshare: America/New_York).",
    )
    holiday_calendar: HolidayCalendar = Field(
        "us-dc",
        description="Trips source: the rows' holiday column. us-dc: the federal holidays plus "
        "DC Emancipation Day, observed (the UCI files' own); us-federal; none. "
        "(features.holidays is another field: holiday-window features.)",
    )
    stations: bool = Field(
        False,
        description="Trips source: count trips per start station (a station column, a row "
        "per station and day/hour) instead of one row per day/hour for the whole system.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"{value!r} is not an IANA time zone name (e.g. America/New_York, "
                f"Europe/London): {type(error).__name__}"
            ) from None
        return value


def is_trips_source(source: str) -> bool:
    """Tell whether a source string names trip files (a local folder or glob pattern)."""
    return isinstance(parse_source(source), TripsSource)


def check_trips_fit(source: str, trips: TripsConfig, field: str = "trips") -> None:
    """Refuse weather without a trips source, a trips source without weather (ValueError).

    ``field`` is where the config keeps the ``TripsConfig`` (the messages name its fields).
    """
    given = bool(trips.weather.strip())
    if is_trips_source(source):
        if not given:
            raise ValueError(
                f"{field}.weather: source {source!r} is trip files (a folder or pattern), and "
                "their rows need a weather table: give weather, a CSV of the dates' weather"
            )
        return
    if given:
        parsed = parse_source(source)
        missing = isinstance(parsed, LocalSource) and not parsed.path.exists()
        what = (
            f"no file or folder {parsed.path} exists"
            if isinstance(parsed, LocalSource) and missing
            else "it is one file whose rows carry their own weather"
        )
        raise ValueError(
            f"{field}.weather: only a trips source (an existing folder or a glob pattern of "
            f"trip files) reads a weather table, and source {source!r} is none: {what}"
        )
    if trips.stations:
        raise ValueError(
            f"{field}.stations: only a trips source is counted per station; source {source!r} "
            "is one file (a station column in it is read as it is)"
        )
