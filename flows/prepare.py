"""The prepare_data subflow: ingest -> validate -> split -> normalise, shared by retrain and sweep.

A trips source (a folder or pattern of trip files) is ingested as its counted rows: the files
listed and counted one by one (``flows/trip_rows.py``), then joined with weather and calendar.

Every task is called directly (see flows/retrain.py): a failing step raises here, fails this
subflow and, raised again in the calling flow, fails that run with the same error.
"""

from __future__ import annotations

from prefect import flow
from prefect.transactions import transaction
from pydantic import BaseModel, ConfigDict

from flows.trip_rows import count_trip_files, trip_rows
from schemas.config import FeatureConfig, RetrainConfig
from schemas.trips_config import is_trips_source
from tasks.prepare.ingest import ingest_source
from tasks.prepare.normalise import NormalisedData, normalise_features
from tasks.prepare.split import split_by_date
from tasks.prepare.validate import validate_records
from tasks.storage.descriptors import SplitPlan
from tasks.storage.table import TableData


class PreparedData(BaseModel):
    """The validated table, its split, and one normalisation per requested feature config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    table: TableData
    plan: SplitPlan
    normalised: tuple[NormalisedData, ...]

    @property
    def data(self) -> NormalisedData:
        """The normalisation of the first (for retrain: the only) feature config."""
        return self.normalised[0]


@flow(name="prepare_data", result_serializer="json")
def prepare_data(config: RetrainConfig, features: tuple[FeatureConfig, ...] = ()) -> PreparedData:
    """Ingest, validate and split the source; normalise it for each feature config."""
    root, granularity = config.store_root, config.granularity
    # Each trip file's counts are kept as soon as it is counted, outside the transaction
    # below: a bad file fails the run, and the files counted before it stay cached.
    counts = (
        count_trip_files(config.source, config.trips, granularity, root)
        if is_trips_source(config.source)
        else None
    )
    # One transaction: ingested bytes are cached only once they validate, so bad data leaves
    # no cache record behind.
    with transaction():
        raw = (
            ingest_source(config.source, root, f"{granularity}.csv")
            if counts is None
            else trip_rows(config.source, counts, config.trips, granularity, root)
        )
        table = validate_records(raw, config.split.test_days, config.store_root, config.granularity)
    plan = split_by_date(table, config.split)
    normalised = tuple(
        normalise_features(table, plan, config.store_root, wanted)
        for wanted in features or (config.features,)
    )
    return PreparedData(table=table, plan=plan, normalised=normalised)
