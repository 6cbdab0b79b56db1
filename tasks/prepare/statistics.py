"""The fitted statistics and the normalised arrays: plain data, shared by tasks and workers.

Kept apart from ``tasks.prepare.normalise`` (which holds the Prefect task) so that the training
child process can read a ``NormalisedData`` without importing Prefect.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from tasks.prepare.encode import (
    FeatureEncoding,
    StationVocabulary,
    TargetTransform,
    invert_target,
    transform_target,
)
from tasks.storage.store import ArrayRef, FileRef


class Statistics(BaseModel):
    """Per-column mean and standard deviation of the training rows (population std)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature_names: tuple[str, ...]
    feature_mean: tuple[float, ...]
    feature_std: tuple[float, ...]
    target_mean: float
    target_std: float
    train_rows: int
    # How raw columns were encoded and the count transformed; defaults = the seed's plain path.
    encoding: FeatureEncoding = FeatureEncoding()
    target_transform: TargetTransform = "none"
    # The training rows' station ids when the table has a station column (None: no station
    # input); the model's Embedding is indexed by ``station_indices``.
    stations: StationVocabulary | None = None

    def normalise_features(self, features: np.ndarray) -> np.ndarray:
        """Scale raw features the way the training rows were scaled."""
        mean = np.asarray(self.feature_mean, dtype=np.float64)
        std = np.asarray(self.feature_std, dtype=np.float64)
        return ((features - mean) / std).astype(np.float32)

    def prepare_features(
        self,
        raw: np.ndarray,
        dates: np.ndarray | None = None,
        stations: np.ndarray | None = None,
        previous: np.ndarray | None = None,
    ) -> np.ndarray:
        """Encode and scale raw feature rows (in the table's column order) for the model.

        A previous-day encoding derives each row's day before from ``dates`` and the raw
        ``stations`` ids unless ``previous`` gives those rows (see ``FeatureEncoding.encode``).
        """
        return self.normalise_features(self.encoding.encode(raw, dates, previous, stations))

    def station_indices(self, stations: np.ndarray) -> np.ndarray:
        """Map raw station ids to the model's station input: int32, one column, 0 = unknown."""
        if self.stations is None:
            raise ValueError("these statistics were fitted on a table without stations")
        return self.stations.index(stations).reshape(-1, 1)

    def normalise_target(self, target: np.ndarray) -> np.ndarray:
        """Scale raw counts the way the training counts were scaled."""
        values = transform_target(target, self.target_transform)
        return ((values - self.target_mean) / self.target_std).astype(np.float32)

    def denormalise_target(self, target: np.ndarray) -> np.ndarray:
        """Turn model outputs back into bike counts (undoing the target transform too)."""
        values = np.asarray(target, dtype=np.float64) * self.target_std + self.target_mean
        return invert_target(values, self.target_transform)


class NormalisedData(BaseModel):
    """The normalised arrays of the three splits (x rank 2, y rank 2) and their statistics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    statistics: Statistics
    statistics_file: FileRef
    x_train: ArrayRef
    y_train: ArrayRef
    x_validation: ArrayRef
    y_validation: ArrayRef
    x_test: ArrayRef
    y_test: ArrayRef
    # Each row's station index (int32, rank 2) when the table has stations.
    station_train: ArrayRef | None = None
    station_validation: ArrayRef | None = None
    station_test: ArrayRef | None = None
