"""The trip steps of prepare_data: list the trip files, count each (cached per file), join rows.

``list_trip_files`` runs in every run (a sync job may have added a file); ``aggregate_trips``
counts one file and is cached on that file's digest with the timezone, the granularity and
the stations choice, so a nightly run that finds one new monthly file counts only that file;
``assemble_trip_rows`` joins every file's counts with the weather and the calendar into the
UCI layout, a CSV in the store that ``validate_records`` then checks as it checks day.csv.
The counting itself is ``tasks/prepare/trips/`` (no Prefect).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from schemas.config import Granularity
from schemas.records import DATE_COLUMN
from schemas.trips_config import HolidayCalendar
from tasks.prepare.trip_descriptors import (
    AggregateSummary,
    TripCountsData,
    TripFile,
    TripFiles,
    check_unchanged,
    find_source_files,
)
from tasks.prepare.trip_rows import assemble_table, count_file
from tasks.prepare.trips.aggregate import CHUNK_ROWS
from tasks.prepare.trips.assemble import quiet_days
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import RawData
from tasks.storage.publish import publish_file
from tasks.storage.store import ArtifactStore, read_bytes

SHOWN_WARNINGS = 10


@task(name="list_trip_files", cache_policy=NO_CACHE, persist_result=False)
def list_trip_files(source: str) -> TripFiles:
    """List the trip files of the source folder or pattern, each with its sha256."""
    found = find_source_files(source)
    size = sum(file.size for file in found.files)
    get_run_logger().info(
        "%d trip file(s) under %s (%.1f MB)", len(found.files), found.pattern, size / 1e6
    )
    return found


@task(
    name="aggregate_trips",
    cache_policy=ArtifactCache(libraries=("pandas", "numpy")),
    persist_result=True,
    result_serializer="json",
)
def aggregate_trips(
    trip_file: TripFile, timezone: str, granularity: Granularity, stations: bool, store_root: str
) -> TripCountsData:
    """Count one trip file's trips by local start day or hour (and station), in chunks."""
    logger = get_run_logger()
    started = time.perf_counter()
    store = ArtifactStore(store_root)
    counted = count_file(trip_file, timezone, granularity, stations, CHUNK_ROWS, store)
    check_unchanged(trip_file)
    seconds = max(time.perf_counter() - started, 1e-9)
    logger.info(
        "counted %d trips of %s in %.1f s (%.0f trips/s)",
        counted.trips,
        trip_file.path,
        seconds,
        counted.trips / seconds,
    )
    for warning in counted.warnings[:SHOWN_WARNINGS]:
        logger.warning("%s", warning)
    if len(counted.warnings) > SHOWN_WARNINGS:
        logger.warning("... and %d more warnings", len(counted.warnings) - SHOWN_WARNINGS)
    return counted


@task(
    name="assemble_trip_rows",
    cache_policy=ArtifactCache(libraries=("pandas", "numpy")),
    persist_result=True,
    result_serializer="json",
)
def assemble_trip_rows(
    source: str,
    counts: tuple[TripCountsData, ...],
    weather: RawData,
    granularity: Granularity,
    holiday_calendar: HolidayCalendar,
    stations: bool,
    timezone: str,
    store_root: str,
) -> RawData:
    """Join every file's counts with the weather and the calendar: the UCI-layout table."""
    logger = get_run_logger()
    store = ArtifactStore(store_root)
    frame = assemble_table(counts, weather, granularity, holiday_calendar, stations, timezone)
    table = store.put_bytes(frame.to_csv(index=False, lineterminator="\n").encode(), ".csv")
    for warning in quiet_days(frame):
        logger.warning("%s: %s", source, warning)
    logger.info(
        "assembled %d %s rows from %d trips in %d file(s)",
        len(frame),
        granularity,
        sum(item.trips for item in counts),
        len(counts),
    )
    return RawData(source=source, fetched=table, table=table)


@task(name="write_trip_table", cache_policy=NO_CACHE, persist_result=False)
def write_trip_table(
    table: RawData, counts: tuple[TripCountsData, ...], field: str, output: str
) -> AggregateSummary:
    """Write the assembled table as CSV or Parquet, whole (a temporary name and a rename)."""
    path = Path(output).expanduser().resolve()
    data = read_bytes(table.table)
    frame = pd.read_csv(io.BytesIO(data), parse_dates=[DATE_COLUMN])
    if field == "output_parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    # Checked again at the last moment: the file may have appeared since the run began.
    publish_file(path, data, field)
    get_run_logger().info("wrote %d rows to %s", len(frame), path)
    return AggregateSummary(
        output=str(path),
        rows=len(frame),
        first_date=str(frame[DATE_COLUMN].min().date()) if len(frame) else "",
        last_date=str(frame[DATE_COLUMN].max().date()) if len(frame) else "",
        files=len(counts),
        trips=sum(item.trips for item in counts),
    )
