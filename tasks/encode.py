"""Feature encodings and target transforms: how raw columns become model inputs and targets.

The seed encodes categorical columns as one-hot vectors and keeps ordinal ones as integers.
A station column becomes an index into a vocabulary of the training rows' station ids (the
model's Embedding input). The encoding and the vocabulary are recorded in the statistics
(``normalisation.json``), so they travel with the model: new rows are encoded exactly the way
the training rows were.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

# The categories of each one-hot column are the schema's domain, not the values seen in the
# training rows: a category absent from training (weathersit 4 in day.csv) still gets its
# column, so every later row encodes to the same width.
ONE_HOT_DOMAINS: dict[str, tuple[int, ...]] = {
    "season": (1, 2, 3, 4),
    "mnth": tuple(range(1, 13)),
    "weekday": tuple(range(7)),
    "weathersit": (1, 2, 3, 4),
}

TargetTransform = Literal["none", "log"]


class FeatureEncoding(BaseModel):
    """Which raw columns are expanded into indicator columns, and their categories."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ordinal", "one-hot"] = "ordinal"
    raw_names: tuple[str, ...] = ()
    categories: dict[str, tuple[int, ...]] = {}

    def encoded_names(self) -> tuple[str, ...]:
        """Names of the encoded columns, in order (a one-hot column becomes name=value)."""
        names: list[str] = []
        for name in self.raw_names:
            if name in self.categories:
                names += [f"{name}={value}" for value in self.categories[name]]
            else:
                names.append(name)
        return tuple(names)

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Encode raw feature rows (columns in ``raw_names`` order) as float32."""
        if not self.categories:
            return np.asarray(raw)  # ordinal: the raw columns as they are
        if raw.shape[1] != len(self.raw_names):
            raise ValueError(f"expected {len(self.raw_names)} raw columns, got {raw.shape[1]}")
        parts: list[np.ndarray] = []
        for index, name in enumerate(self.raw_names):
            column = np.asarray(raw[:, index])
            if name in self.categories:
                values = np.asarray(self.categories[name], dtype=column.dtype)
                parts.append((column[:, None] == values[None, :]).astype(np.float32))
            else:
                parts.append(column[:, None].astype(np.float32))
        return np.hstack(parts)


def fit_encoding(
    kind: Literal["ordinal", "one-hot"], raw_names: tuple[str, ...]
) -> FeatureEncoding:
    """Build the encoding for the table's columns (one-hot: the known categorical columns)."""
    if kind == "ordinal":
        return FeatureEncoding(kind=kind, raw_names=raw_names)
    categories = {name: ONE_HOT_DOMAINS[name] for name in raw_names if name in ONE_HOT_DOMAINS}
    return FeatureEncoding(kind=kind, raw_names=raw_names, categories=categories)


# The index of every station the training rows did not have (first seen in validation, test
# or a prediction input): they share one learned vector, "a station the model has not seen".
UNKNOWN_STATION = 0
STATION_CHUNK_ROWS = 1 << 20


class StationVocabulary(BaseModel):
    """The training rows' station ids, sorted: ``ids[i]`` has index ``i + 1``, 0 is unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ids: tuple[int, ...]

    @field_validator("ids")
    @classmethod
    def _sorted_and_unique(cls, ids: tuple[int, ...]) -> tuple[int, ...]:
        # searchsorted in ``index`` is only right on strictly increasing ids; a hand-edited
        # normalisation.json must not map stations to the wrong vectors silently.
        if not ids or any(b <= a for a, b in pairwise(ids)):
            raise ValueError("station ids must be a non-empty, strictly increasing list")
        return ids

    @property
    def size(self) -> int:
        """Rows of the embedding table: one per known station plus the unknown station."""
        return len(self.ids) + 1

    def index(self, stations: np.ndarray) -> np.ndarray:
        """Map station ids to int32 indices 1..V; an id not in the vocabulary maps to 0."""
        known = np.asarray(self.ids, dtype=np.int64)
        ids = np.asarray(stations, dtype=np.int64)
        position = np.searchsorted(known, ids)
        found = known[np.minimum(position, len(known) - 1)] == ids
        return np.where(found, position + 1, UNKNOWN_STATION).astype(np.int32)


def fit_station_vocabulary(
    stations: np.ndarray, chunk_rows: int = STATION_CHUNK_ROWS
) -> StationVocabulary:
    """The sorted unique station ids of these (training) rows, read chunk by chunk."""
    seen = np.empty(0, dtype=np.int64)
    for begin in range(0, len(stations), chunk_rows):
        chunk = np.asarray(stations[begin : begin + chunk_rows], dtype=np.int64)
        seen = np.union1d(seen, chunk)
    if not len(seen):
        raise ValueError("cannot fit a station vocabulary on zero rows")
    return StationVocabulary(ids=tuple(int(value) for value in seen))


def transform_target(target: np.ndarray, transform: TargetTransform) -> np.ndarray:
    """Counts to the scale the model learns on (log: log(1 + cnt))."""
    values = np.asarray(target, dtype=np.float64)
    if transform == "log":
        if np.any(values < 0):
            raise ValueError("a log target transform needs counts >= 0")
        return np.log1p(values)
    return values


def invert_target(values: np.ndarray, transform: TargetTransform) -> np.ndarray:
    """The model's scale back to counts (inverse of ``transform_target``)."""
    values = np.asarray(values, dtype=np.float64)
    return np.expm1(values) if transform == "log" else values
