"""The training child process: ``python -m tasks.training.child`` < request.json.

TensorFlow holds GPU memory until its process exits, so each training runs in a process of
its own that exits when the training ends. Parent and child speak JSON lines, never pickle:
the request arrives on stdin; the child writes one event per line to its protocol stream
(``log``, ``epoch``, then ``result`` or ``error``). Anything else the child or TensorFlow
prints goes to stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import IO, Any

from pydantic import BaseModel, ConfigDict

from schemas.config import ModelConfig, TrainingConfig
from tasks.prepare.statistics import NormalisedData


class TrainingRequest(BaseModel):
    """Everything the child needs: data descriptors, configs, and where to store checkpoints."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: NormalisedData
    model: ModelConfig
    training: TrainingConfig
    store_root: str


def _emit(stream: IO[str], event: str, **fields: Any) -> None:
    stream.write(json.dumps({"event": event, **fields}) + "\n")
    stream.flush()


def serve(request: TrainingRequest, protocol: IO[str]) -> None:
    """Run one training and report it as events on ``protocol``."""
    from tasks.storage.store import ArtifactStore, load_array
    from tasks.training.keras_fit import EpochJournal, StationInputs, journal_name
    from tasks.training.tf_core import train_arrays

    data = request.data
    store = ArtifactStore(request.store_root)
    stations = None
    vocabulary = data.statistics.stations
    if (vocabulary is None) != (data.station_train is None or data.station_validation is None):
        raise ValueError("station index arrays and the station vocabulary must come together")
    if vocabulary is not None and data.station_train and data.station_validation:
        stations = StationInputs(
            train=load_array(data.station_train, mmap=True),
            validation=load_array(data.station_validation, mmap=True),
            rows=vocabulary.size,
        )

    def on_epoch(record: Any) -> None:
        _emit(protocol, "epoch", record=record.model_dump(), epochs=request.training.epochs)

    # tf-core trains by hand; every other zoo entry goes through Keras fit.
    # Memory-mapped: fit_model loads small arrays and streams large ones block by block.
    run = train_arrays(
        load_array(data.x_train, mmap=True),
        load_array(data.y_train, mmap=True),
        load_array(data.x_validation, mmap=True),
        load_array(data.y_validation, mmap=True),
        request.model,
        request.training,
        store,
        log=lambda message: _emit(protocol, "log", message=message),
        on_epoch=on_epoch,
        # A retry or the next run of the same training resumes where a killed one stopped.
        journal=EpochJournal(store, journal_name(request)),
        stations=stations,
    )
    _emit(protocol, "result", run=run.model_dump(mode="json"))


def main() -> int:
    """Read a request from stdin, train, and exit (freeing every device the child used)."""
    # Keep the real stdout for the protocol and point fd 1 at stderr, so stray prints from
    # TensorFlow or user code land in the log rather than in the JSON stream.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        request = TrainingRequest.model_validate_json(sys.stdin.read())
        serve(request, protocol)
    except Exception as error:
        from schemas.errors import BikeflowError

        _emit(
            protocol,
            "error",
            type=type(error).__name__,
            message=str(error),
            user_error=isinstance(error, BikeflowError | ValueError),
            traceback=traceback.format_exc(),
        )
        return 1
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: TensorFlow's takes about a second and has nothing left
    # to save (every file is written and renamed, the result is sent); the OS frees the
    # devices either way.
    os._exit(status)
