"""What a trainer trains on: the arrays, the configs, the store, and the journal it resumes from.

``FitJob`` is the one value the trainers (``keras_fit.fit_model``, ``tf_core.fit_tf_core``)
take; ``tasks.training.request.FitRequest.job`` opens one from the child's JSON request. No
Prefect, no TensorFlow, and not the data descriptors either: ``keras_fit`` names this module,
and every step whose descriptors name ``TrainingRun`` has it in its code closure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.config import ModelConfig, TrainingConfig
from tasks.storage.descriptors import EpochRecord
from tasks.storage.journal import read_journal, write_journal
from tasks.storage.library_versions import TRAINING_LIBRARIES, library_versions, resume_refusal
from tasks.storage.store import ArtifactStore, FileRef, is_intact


class EpochJournal:
    """The epochs a training has completed, each with its checkpoint, kept in the store.

    Written after every epoch (after its checkpoint, or on JAX its resume state, is stored),
    so a training killed at any moment can resume from its last completed epoch; the history
    survives the crash. It
    records the training libraries' versions: epochs trained on others are not resumed.
    """

    def __init__(self, store: ArtifactStore, name: str, backend: str | None = None) -> None:
        self.store = store
        self.name = name
        # The Keras backend its epochs are trained on (training.backend; None: the
        # environment's, which the training child sets from the config).
        self.backend = backend

    def completed(
        self, log: Callable[[str], None] = lambda message: None
    ) -> list[tuple[EpochRecord, FileRef | None]]:
        """The completed epochs, in order, up to the first whose checkpoint is not intact.

        An epoch whose checkpoint retention deleted (``None``) keeps its record; the list
        ends at an epoch a resume can load (its checkpoint, or on JAX its resume state).
        Empty when they were trained under other library versions (``log`` says which).
        """
        return [(record, checkpoint) for record, checkpoint, _ in self.resumable(log)]

    def resumable(
        self, log: Callable[[str], None] = lambda message: None
    ) -> list[tuple[EpochRecord, FileRef | None, FileRef | None]]:
        """``completed`` with each epoch's resume state too (``None``: none kept).

        The JAX trainer writes a small state every epoch rather than a ``.keras`` file
        (``tasks.training.resume_state``); an epoch whose named checkpoint or state is not
        intact ends the list, as does the last epoch that has either.
        """
        content = read_journal(self.store, self.name) or {}
        refusal = resume_refusal(content, TRAINING_LIBRARIES, self.backend)
        if refusal is not None:
            log(refusal)
            return []
        done: list[tuple[EpochRecord, FileRef | None, FileRef | None]] = []
        for entry in content.get("epochs", []):
            record = EpochRecord.model_validate(entry["record"])
            checkpoint, state = _file_ref(entry.get("checkpoint")), _file_ref(entry.get("state"))
            if record.epoch != len(done) + 1 or any(
                ref is not None and not is_intact(ref) for ref in (checkpoint, state)
            ):
                break
            done.append((record, checkpoint, state))
        while done and done[-1][1] is None and done[-1][2] is None:
            done.pop()
        return done

    def record(
        self,
        done: list[tuple[EpochRecord, FileRef | None]],
        states: Sequence[FileRef | None] = (),
    ) -> None:
        """Replace the journal with these completed epochs (None: a checkpoint not kept).

        ``states``: the epochs' resume states, in the same order (missing or None: none).
        """
        epochs = []
        for index, (record, checkpoint) in enumerate(done):
            entry = {
                "record": record.model_dump(),
                "checkpoint": None if checkpoint is None else checkpoint.model_dump(),
            }
            state = states[index] if index < len(states) else None
            if state is not None:
                entry["state"] = state.model_dump()
            epochs.append(entry)
        libraries = library_versions(TRAINING_LIBRARIES, self.backend)
        write_journal(self.store, self.name, {"epochs": epochs, "libraries": libraries})


def _file_ref(value: Any) -> FileRef | None:
    return None if value is None else FileRef.model_validate(value)


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
