"""Between the trip steps and the counting (``tasks/prepare/trips/``): one file's counts, the rows.

The steps keep a file's counts in the store (``trip_descriptors``); the counting works on
``TripCounts`` values. This module turns one into the other and back, so the steps stay wiring.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from schemas.config import Granularity
from schemas.errors import TripDataError, WeatherDataError
from schemas.trips_config import HolidayCalendar
from tasks.prepare.trip_descriptors import TripCountsData, TripFile, load_frame, store_frame
from tasks.prepare.trips.aggregate import TripCounts, aggregate_trip_file, duplicate_rides
from tasks.prepare.trips.assemble import assemble_rows
from tasks.prepare.trips.weather import read_weather
from tasks.storage.descriptors import RawData
from tasks.storage.store import ArtifactStore, load_array, verify


def count_file(
    trip_file: TripFile,
    timezone: str,
    granularity: Granularity,
    stations: bool,
    chunk_rows: int,
    store: ArtifactStore,
) -> TripCountsData:
    """Count one trip file into the store (``TripDataError`` naming file, line and value)."""
    counted = aggregate_trip_file(Path(trip_file.path), timezone, granularity, stations, chunk_rows)
    return TripCountsData(
        file=trip_file,
        granularity=granularity,
        stations=stations,
        columns=store_frame(store, counted.counts),
        ride_hashes=store.put_array(np.asarray(counted.ride_hashes, dtype=np.uint64)),
        trips=counted.trips,
        first_start=_text(counted.first_start),
        last_start=_text(counted.last_start),
        warnings=counted.warnings,
    )


def _text(moment: pd.Timestamp | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _moment(text: str | None) -> pd.Timestamp | None:
    return None if text is None else pd.Timestamp(text)


def trip_counts(data: TripCountsData) -> TripCounts:
    """The counting's value back from a file's stored counts."""
    granularity: Granularity = "hour" if data.granularity == "hour" else "day"
    return TripCounts(
        file=data.file.path,
        granularity=granularity,
        stations=data.stations,
        counts=load_frame(data.columns),
        first_start=_moment(data.first_start),
        last_start=_moment(data.last_start),
        trips=data.trips,
        warnings=data.warnings,
        ride_hashes=load_array(data.ride_hashes),
    )


def assemble_table(
    counts: tuple[TripCountsData, ...],
    weather: RawData,
    granularity: Granularity,
    holiday_calendar: HolidayCalendar,
    stations: bool,
    timezone: str,
) -> pd.DataFrame:
    """Every file's counts, joined with the weather and the calendar, in the UCI layout."""
    values = [trip_counts(item) for item in counts]
    duplicates = duplicate_rides(values)
    if duplicates:
        raise TripDataError.from_problems(counts[-1].file.path, duplicates)
    stored = verify(weather.table)
    try:
        table = read_weather(stored, granularity)
    except WeatherDataError as error:
        # Name the user's weather file, not its copy in the store.
        named = str(error).replace(str(stored), weather.source)
        raise WeatherDataError(named, file=weather.source) from None
    return assemble_rows(values, table, granularity, holiday_calendar, stations, timezone)
