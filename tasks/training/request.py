"""One training as the task asks for it: the JSON request the training child reads on stdin.

No Prefect and no TensorFlow here: the training child imports this module, and either would
add seconds to every cold run. ``FitRequest`` holds the data descriptors, the configs and the
store; ``FitRequest.job`` opens its arrays into a ``FitJob`` (``tasks.training.job``), the one
value the trainers take, and its content names the journal a retry resumes from.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict

from schemas.config import ModelConfig, TrainingConfig
from tasks.prepare.statistics import NormalisedData
from tasks.storage.code_digests import closure_digests
from tasks.storage.store import ArtifactStore, load_array
from tasks.training.job import EpochJournal, FitJob, StationInputs


class FitRequest(BaseModel):
    """Everything the child needs: data descriptors, configs, and where to store checkpoints."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: NormalisedData
    model: ModelConfig
    training: TrainingConfig
    store_root: str

    def journal_name(self) -> str:
        """Name the training's journal by everything that determines its epochs, code included."""
        # The training child's module and everything it imports (code_digests.code_closure).
        code = closure_digests("tasks.training.child")
        # The timeout decides when a training is stopped, not its epochs: a rerun with a longer
        # one resumes the same journal.
        fields = self.model_dump(mode="json", exclude={"training": {"timeout_minutes"}})
        material = json.dumps([fields, code], sort_keys=True)
        return hashlib.sha256(material.encode()).hexdigest()

    def job(self) -> FitJob:
        """The job, its arrays memory-mapped, with the journal a retry of it resumes from."""
        store = ArtifactStore(self.store_root)
        stations = self._stations()
        # Memory-mapped: fit_model loads small arrays and streams large ones block by block.
        data = self.data
        refs = (data.x_train, data.y_train, data.x_validation, data.y_validation)
        x_train, y_train, x_validation, y_validation = (load_array(r, mmap=True) for r in refs)
        return FitJob(
            x_train=x_train,
            y_train=y_train,
            x_validation=x_validation,
            y_validation=y_validation,
            model=self.model,
            training=self.training,
            store=store,
            # A retry or the next run of the same training resumes where a killed one stopped.
            journal=EpochJournal(store, self.journal_name()),
            stations=stations,
        )

    def _stations(self) -> StationInputs | None:
        data = self.data
        vocabulary = data.statistics.stations
        if (vocabulary is None) != (data.station_train is None or data.station_validation is None):
            raise ValueError("station index arrays and the station vocabulary must come together")
        if vocabulary is None or not data.station_train or not data.station_validation:
            return None
        return StationInputs(
            train=load_array(data.station_train, mmap=True),
            validation=load_array(data.station_validation, mmap=True),
            rows=vocabulary.size,
        )
