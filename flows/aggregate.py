"""The aggregate flow (``bikeflow aggregate``): trip files -> counted rows -> a CSV or Parquet file.

The same tasks, and so the same per-file cache, as a run's ``prepare_data`` (flows/trip_rows.py):
a store that a nightly run fills answers an aggregate at once, and the other way round.
"""

from __future__ import annotations

from prefect import flow

from flows.trip_rows import count_trip_files, trip_rows
from schemas.aggregate_config import AggregateConfig
from tasks.error_logs import install_user_error_filter
from tasks.prepare.trip_descriptors import AggregateSummary
from tasks.prepare.trip_tasks import write_trip_table

# A user error is logged by Prefect with its message and no traceback (tasks/error_logs.py).
install_user_error_filter()


@flow(name="aggregate-trips", result_serializer="json")
def aggregate_trips_table(config: AggregateConfig) -> AggregateSummary:
    """Count trip files into the UCI layout with weather and calendar; write it as a file."""
    counts = count_trip_files(config.trips, config.counting, config.granularity, config.store_root)
    table = trip_rows(config.trips, counts, config.counting, config.granularity, config.store_root)
    field, output = config.output
    return write_trip_table(table, counts, field, output)
