"""Trip history to rows as the flows wire it, shared by ``prepare_data`` and ``bikeflow aggregate``.

``count_trip_files`` lists the files and counts each one (a cached task per file, each record
kept as soon as its file is counted, so a failure in one file leaves the others cached);
``trip_rows`` ingests the weather and assembles the UCI-layout table.
"""

from __future__ import annotations

from schemas.config import Granularity
from schemas.trips_config import TripsConfig
from tasks.prepare.ingest import ingest_source
from tasks.prepare.trip_descriptors import TripCountsData
from tasks.prepare.trip_tasks import aggregate_trips, assemble_trip_rows, list_trip_files
from tasks.storage.descriptors import RawData

WEATHER_MEMBER = "weather.csv"  # the member taken when the weather is a zip


def count_trip_files(
    source: str, trips: TripsConfig, granularity: Granularity, store_root: str
) -> tuple[TripCountsData, ...]:
    """List the source's trip files and count each one (cached on the file's digest)."""
    found = list_trip_files(source)
    return tuple(
        aggregate_trips(file, trips.timezone, granularity, trips.stations, store_root)
        for file in found.files
    )


def trip_rows(
    source: str,
    counts: tuple[TripCountsData, ...],
    trips: TripsConfig,
    granularity: Granularity,
    store_root: str,
) -> RawData:
    """Ingest the weather and join it with the counts and the calendar: the rows, as a CSV."""
    weather = ingest_source(trips.weather, store_root, WEATHER_MEMBER)
    return assemble_trip_rows(
        source,
        counts,
        weather,
        granularity,
        trips.holiday_calendar,
        trips.stations,
        trips.timezone,
        store_root,
    )
