"""What the trip steps hand on: the files found, and each file's counts as arrays in the store.

Prefect-free (like ``tasks/storage/descriptors.py``), so that ``bikeflow plan`` lists the files
and reads the cached records back into these classes without importing Prefect. A file's
counts are kept column by column as ``.npy`` arrays (no pickle: text becomes fixed-width
unicode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from schemas.errors import SourceError
from schemas.source import LocalSource, TripsSource
from schemas.sources import allowed_source, check_allowed
from tasks.prepare.source_access import file_digest
from tasks.prepare.trips.files import find_trip_files
from tasks.storage.store import ArrayRef, ArtifactStore, load_array


class TripFile(BaseModel):
    """One trip file found under the source: where it is, its sha256 and size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    size: int


class TripFiles(BaseModel):
    """The trip files a source names (a folder or pattern), sorted by path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str
    files: tuple[TripFile, ...]


class TripCountsData(BaseModel):
    """One trip file counted: its counts table (a column each), its rides' ids, what it spans."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: TripFile
    granularity: str
    stations: bool
    columns: dict[str, ArrayRef]
    ride_hashes: ArrayRef
    trips: int
    first_start: str | None
    last_start: str | None
    warnings: tuple[str, ...] = ()


def find_source_files(source: str) -> TripFiles:
    """The trip files a source names, each with its sha256 (read once per process while unchanged).

    The allow-list covers the folder and, again, each file found (a symlink may lead out of it).
    """
    parsed = allowed_source(source)
    if not isinstance(parsed, TripsSource):
        raise SourceError(f"source {source}: not a folder or glob pattern of trip files")
    files = []
    for path in find_trip_files(parsed.pattern):
        resolved = path.resolve()
        check_allowed(LocalSource(text=str(path), path=resolved))
        try:
            digest, size = file_digest(resolved), resolved.stat().st_size
        except OSError as error:
            raise SourceError(f"trip file {path}: cannot be read ({error.strerror})") from error
        files.append(TripFile(path=str(resolved), sha256=digest, size=size))
    return TripFiles(pattern=parsed.pattern, files=tuple(files))


def check_unchanged(trip_file: TripFile) -> None:
    """Refuse a trip file whose bytes changed since it was listed (a sync job mid-write)."""
    if file_digest(Path(trip_file.path)) != trip_file.sha256:
        raise SourceError(
            f"trip file {trip_file.path} changed while it was read (its sha256 is no longer "
            f"{trip_file.sha256[:12]}); run again once whatever writes it has finished"
        )


def store_frame(store: ArtifactStore, frame: pd.DataFrame) -> dict[str, ArrayRef]:
    """Store a table column by column as ``.npy`` arrays (text as fixed-width unicode)."""
    columns: dict[str, ArrayRef] = {}
    for name in frame.columns:
        values = frame[name]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_localize(None)  # wall-clock time: the zone is the config's
        array = values.to_numpy()
        if array.dtype.hasobject:
            array = array.astype(str)
        columns[str(name)] = store.put_array(array)
    return columns


def load_frame(columns: dict[str, ArrayRef]) -> pd.DataFrame:
    """The table ``store_frame`` stored, its columns in their order."""
    return pd.DataFrame({name: np.asarray(load_array(ref)) for name, ref in columns.items()})


class AggregateSummary(BaseModel):
    """What ``bikeflow aggregate`` wrote: the file, its rows and dates, the trips behind them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    output: str
    rows: int
    first_date: str
    last_date: str
    files: int
    trips: int
