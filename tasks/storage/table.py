"""The descriptor of a validated table, handed from validation to every later step."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.config import Granularity
from tasks.storage.store import ArrayRef, FileRef


class TableData(BaseModel):
    """A validated table as arrays: dates, the features (float32) and the count (float32).

    Hourly and per-station tables have several rows per date, in date order; ``stations``
    holds each row's station id when the source has a station column.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    source_sha256: str
    rows: int
    first_date: str
    last_date: str
    feature_names: tuple[str, ...]
    dates: ArrayRef
    features: ArrayRef
    target: ArrayRef
    report: FileRef
    granularity: Granularity = "day"
    stations: ArrayRef | None = None
