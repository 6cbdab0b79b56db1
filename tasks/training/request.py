"""One training as the task asks for it: the JSON request the training child reads on stdin.

No Prefect and no TensorFlow here: the training child imports this module, and either would
add seconds to every cold run. ``FitRequest`` holds the data descriptors, the configs and the
store; ``FitRequest.job`` opens its arrays into a ``FitJob`` (``tasks.training.job``), the one
value the trainers take, and its content names the journal a retry resumes from.
``GroupFitRequest`` is several members on the same data and model (seeds differ), which the
JAX backend trains as one vectorised program in one child (``tasks.training.group_child``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.config import ModelConfig, TrainingConfig
from tasks.prepare.statistics import NormalisedData
from tasks.storage.code_digests import closure_digests
from tasks.storage.store import ArtifactStore, load_array
from tasks.training.job import EpochJournal, FitJob, StationInputs
from tasks.training.keras_calls import KerasCallRequest


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
            journal=EpochJournal(store, self.journal_name(), self.training.backend),
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


class GroupFitRequest(BaseModel):
    """Several members on the same data and model, trained together in one child.

    Each member's journal is named by the whole group and the member's place in it, never by
    its one-member ``FitRequest``: a vectorised program need not give a member the bits a
    training of its own would, so a group and a lone training never resume each other.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: NormalisedData
    model: ModelConfig
    trainings: tuple[TrainingConfig, ...] = Field(min_length=1)
    store_root: str

    def member(self, index: int) -> FitRequest:
        """Member ``index`` as a request of its own (its data, model, training and store)."""
        return FitRequest(
            data=self.data,
            model=self.model,
            training=self.trainings[index],
            store_root=self.store_root,
        )

    def journal_name(self, index: int) -> str:
        """Name member ``index``'s journal by the group, the member's place, and the code."""
        code = closure_digests("tasks.training.child")
        # As FitRequest: the timeout stops a training, it does not shape its epochs.
        fields = self.model_dump(mode="json")
        for training in fields["trainings"]:
            training.pop("timeout_minutes")
        material = json.dumps(["group", index, fields, code], sort_keys=True)
        return hashlib.sha256(material.encode()).hexdigest()

    def jobs(self) -> list[FitJob]:
        """One job per member; they share the same memory-mapped arrays (opened once)."""
        first = self.member(0).job()
        backend = None if first.journal is None else first.journal.backend
        return [
            dataclasses.replace(
                first,
                training=training,
                journal=EpochJournal(first.store, self.journal_name(index), backend),
            )
            for index, training in enumerate(self.trainings)
        ]


def read_request(text: str) -> FitRequest | GroupFitRequest | KerasCallRequest:
    """The child's request from its JSON: a group when it lists ``trainings``, Keras work
    (``tasks.training.keras_calls``) when it has ``work``, else one member."""
    content: Any = json.loads(text)
    # Validated from the text itself, in JSON mode, as the one-member request always was.
    if isinstance(content, dict) and "trainings" in content:
        return GroupFitRequest.model_validate_json(text)
    if isinstance(content, dict) and "work" in content:
        return KerasCallRequest.model_validate_json(text)
    return FitRequest.model_validate_json(text)
