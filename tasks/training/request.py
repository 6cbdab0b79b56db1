"""One training as a value: the request the task sends the child, and the job a trainer runs.

No Prefect and no TensorFlow here: the training child imports this module, and either would
add seconds to every cold run. ``FitRequest`` is the JSON the child reads on stdin (data
descriptors, configs, the store); ``FitRequest.job`` opens its arrays into a ``FitJob``, the one
value the trainers (``keras_fit.fit_model``, ``tf_core.fit_tf_core``) take.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from schemas.config import ModelConfig, TrainingConfig
from tasks.prepare.statistics import NormalisedData
from tasks.storage.code_digests import closure_digests
from tasks.storage.store import (
    ArtifactStore,
    FileRef,
    is_intact,
    load_array,
    read_journal,
    write_journal,
)
from tasks.training.keras_fit import EpochRecord


class EpochJournal:
    """The epochs a training has completed, each with its checkpoint, kept in the store.

    Written after every epoch (after its checkpoint is stored), so a training killed at any
    moment can resume from its last completed epoch; the history survives the crash.
    """

    def __init__(self, store: ArtifactStore, name: str) -> None:
        self.store = store
        self.name = name

    def completed(self) -> list[tuple[EpochRecord, FileRef]]:
        """The completed epochs, in order, up to the first whose checkpoint is not intact."""
        content = read_journal(self.store, self.name) or {}
        done: list[tuple[EpochRecord, FileRef]] = []
        for entry in content.get("epochs", []):
            record = EpochRecord.model_validate(entry["record"])
            checkpoint = FileRef.model_validate(entry["checkpoint"])
            if record.epoch != len(done) + 1 or not is_intact(checkpoint):
                break
            done.append((record, checkpoint))
        return done

    def record(self, done: list[tuple[EpochRecord, FileRef]]) -> None:
        """Replace the journal with these completed epochs."""
        epochs = [
            {"record": record.model_dump(), "checkpoint": checkpoint.model_dump()}
            for record, checkpoint in done
        ]
        write_journal(self.store, self.name, {"epochs": epochs})


@dataclass(frozen=True)
class StationInputs:
    """Each row's station index (int32, one column) for training and validation.

    ``rows`` is the embedding's row count, ``StationVocabulary.size`` (known stations + 1).
    """

    train: np.ndarray
    validation: np.ndarray
    rows: int


@dataclass(frozen=True)
class FitJob:
    """What a trainer trains on: the arrays, the two configs, and the store its epochs go to.

    ``journal`` (Keras trainer only) holds the completed epochs a retry resumes from;
    ``stations``, when given, feeds the station input beside the features.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_validation: np.ndarray
    y_validation: np.ndarray
    model: ModelConfig
    training: TrainingConfig
    store: ArtifactStore
    journal: EpochJournal | None = None
    stations: StationInputs | None = None

    def require_rows(self) -> None:
        """Refuse a job with no training or no validation rows."""
        if len(self.x_train) == 0 or len(self.x_validation) == 0:
            raise ValueError("training and validation rows must not be empty")


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
        material = json.dumps([self.model_dump(mode="json"), code], sort_keys=True)
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
