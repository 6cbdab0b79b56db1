"""The model bundle: a published model and its statistics, turning raw input rows into bikes.

One small API serves every caller that predicts (evaluation, the registry's re-scoring, batch
prediction, the benchmarks)::

    bundle = ModelBundle.from_directory("runs/latest")        # model.keras + normalisation.json
    bikes = bundle.predict(frame)                              # dteday + raw columns [+ station]

Everything between a raw row and a count comes from the statistics stored with the model
(``tasks.prepare.statistics`` / ``tasks.prepare.encode``): the encoding (one-hot, holiday
windows), the scaling, the target transform and its inverse, and the station vocabulary. The
model may be one network or an ensemble averaging its members (``tasks.training.ensemble``);
both load the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from schemas.records import DATE_COLUMN, STATION_COLUMN
from tasks.prepare.statistics import Statistics

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"
STATISTICS_FILE = "normalisation.json"
PREDICT_BATCH_SIZE = 4096


class ModelBundle:
    """A ``.keras`` model (loaded in safe mode, once) with the statistics it was trained with."""

    def __init__(self, model_path: str | Path, statistics: Statistics) -> None:
        self.model_path = Path(model_path)
        self.statistics = statistics
        self._model: keras.Model | None = None

    def __repr__(self) -> str:
        return f"ModelBundle({str(self.model_path)!r})"

    @classmethod
    def from_files(cls, model_path: str | Path, statistics: Statistics | str | Path) -> ModelBundle:
        """A bundle of a model file and its statistics (a ``Statistics`` or its JSON file)."""
        if not isinstance(statistics, Statistics):
            statistics = Statistics.model_validate_json(Path(statistics).read_bytes())
        return cls(model_path, statistics)

    @classmethod
    def from_directory(cls, path: str | Path) -> ModelBundle:
        """The bundle of a run's output folder or a registry version folder."""
        folder = Path(path)
        return cls.from_files(folder / MODEL_FILE, folder / STATISTICS_FILE)

    @property
    def raw_columns(self) -> tuple[str, ...]:
        """The raw feature columns the model reads, in order (e.g. day.csv's 11, or 12 with hr)."""
        # A one-hot model's feature_names are its encoded columns; its raw columns are these.
        return self.statistics.encoding.raw_names or self.statistics.feature_names

    @property
    def has_stations(self) -> bool:
        """Whether the model takes a station input (rows then need a ``station`` column)."""
        return self.statistics.stations is not None

    @property
    def model(self) -> keras.Model:
        """The Keras model, loaded on first use with ``safe_mode=True``."""
        if self._model is None:
            import keras

            self._model = keras.saving.load_model(self.model_path, safe_mode=True)
        return self._model

    def predict_arrays(
        self, features: np.ndarray, dates: np.ndarray | None = None, stations: Any = None
    ) -> np.ndarray:
        """Bike counts (float64, one per row) for raw feature rows in ``raw_columns`` order.

        ``dates`` (one per row) feed the holiday windows; ``stations`` are raw station ids
        (an id the training rows did not have is the unknown station).
        """
        from tasks.models.zoo import model_inputs

        raw = np.asarray(features, dtype=np.float64)
        self.check_rows(raw, stations)
        # The raw station ids also place each row's day before (a previous-day encoding).
        ids = None if stations is None else np.asarray(stations)
        x = self.statistics.prepare_features(raw, None if dates is None else np.asarray(dates), ids)
        indices = None if stations is None else self.statistics.station_indices(stations)
        output = self.model.predict(
            model_inputs(self.model, x, indices), batch_size=PREDICT_BATCH_SIZE, verbose=0
        )
        return self.statistics.denormalise_target(output).ravel()

    def check_rows(self, features: np.ndarray, stations: Any = None) -> None:
        """Raise ``ValueError`` unless the rows fit the model: its raw columns, its stations."""
        shape = np.shape(features)
        if len(shape) != 2 or shape[1] != len(self.raw_columns):
            raise ValueError(
                f"{self} reads {len(self.raw_columns)} raw columns {self.raw_columns}, "
                f"got an array of shape {list(shape)}"
            )
        if self.has_stations and stations is None:
            raise ValueError(f"{self} takes a station input; the rows have no station ids")
        if not self.has_stations and stations is not None:
            raise ValueError(f"{self} was trained without stations; the rows have station ids")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Bike counts for raw input rows: ``dteday``, the raw columns, ``station`` if needed."""
        missing = [name for name in (DATE_COLUMN, *self.raw_columns) if name not in frame.columns]
        if self.has_stations and STATION_COLUMN not in frame.columns:
            missing.append(STATION_COLUMN)
        if missing:
            raise ValueError(f"{self}: the rows lack the column(s) {missing}")
        dates = pd.to_datetime(frame[DATE_COLUMN]).to_numpy().astype("datetime64[D]")
        stations = None
        if STATION_COLUMN in frame.columns:
            stations = frame[STATION_COLUMN].to_numpy(dtype=np.int64)
        return self.predict_arrays(
            frame[list(self.raw_columns)].to_numpy(dtype=np.float64), dates, stations
        )
