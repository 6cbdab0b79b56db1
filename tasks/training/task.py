"""Train: the Prefect task that fits the model in a child process, a checkpoint every epoch."""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger
from prefect.runtime import task_run

from schemas.config import ModelConfig, TrainingConfig
from schemas.errors import TrainingTimeoutError
from tasks.prepare.normalise import NormalisedData
from tasks.progress import report_epoch
from tasks.storage.cache_policy import ArtifactCache
from tasks.training.child import keras_backend_of
from tasks.training.child_process import TrainingProcessError, run_child
from tasks.training.job import EpochJournal, FitJob, StationInputs

# The trainer's names, importable from here as before the split into tasks.training.keras_fit.
# Its tuning constants are not re-exported: they are read, and must be set, in keras_fit.
from tasks.training.keras_fit import (
    DeviceInfo,
    EpochRecord,
    TrainingRun,
    checkpoint_saver,
    choose_strategy,
    epoch_order,
    fit_model,
    import_tensorflow,
    make_dataset,
    steps_per_execution,
)
from tasks.training.keras_work import in_child
from tasks.training.request import FitRequest

if TYPE_CHECKING:
    from uuid import UUID

__all__ = [
    "DeviceInfo",
    "EpochJournal",
    "EpochRecord",
    "FitJob",
    "FitRequest",
    "StationInputs",
    "TrainingProcessError",
    "TrainingRun",
    "checkpoint_saver",
    "choose_strategy",
    "epoch_order",
    "fit_model",
    "import_tensorflow",
    "make_dataset",
    "preload_evaluation",
    "run_training_process",
    "steps_per_execution",
    "train_model",
]


def run_training_process(
    request: FitRequest,
    on_epoch: Callable[[EpochRecord, int], None],
    log: Callable[[str], None],
) -> TrainingRun:
    """Train in a child process (``tasks.training.child``) and return its result."""
    result: TrainingRun | None = None
    epochs_done, last_epoch = 0, 0

    def on_event(event: dict[str, Any]) -> None:
        nonlocal result, epochs_done, last_epoch
        kind = event["event"]
        if kind == "epoch":
            epochs_done += 1
            record = EpochRecord.model_validate(event["record"])
            last_epoch = record.epoch
            on_epoch(record, event["epochs"])
        elif kind == "log":
            log(event["message"])
        elif kind == "result":
            result = TrainingRun.model_validate(event["run"])

    backend = keras_backend_of(request)
    timeout = request.training.timeout_minutes
    outcome = run_child(request.model_dump_json(), timeout, on_event, backend=backend)
    if outcome.timed_out:
        raise timeout_error(request, last_epoch)
    outcome.raise_reported_error()
    if outcome.code != 0 or result is None:
        raise outcome.ended_early(epochs_done)
    return result


def timeout_error(request: FitRequest, last_epoch: int) -> TrainingTimeoutError:
    """The one paragraph for a training stopped at its timeout: the member and its epoch."""
    training = request.training
    reached = (
        f"after epoch {last_epoch} of {training.epochs}"
        if last_epoch
        else f"before it finished an epoch (of {training.epochs})"
    )
    return TrainingTimeoutError(
        f"training timed out: the {request.model.architecture} member with seed "
        f"{training.seed} ran past training.timeout_minutes ({training.timeout_minutes:g} "
        f"min) and was stopped {reached}; its process was killed. Raise "
        "training.timeout_minutes if it was only slow: a rerun resumes from its last "
        "checkpoint."
    )


_preload: threading.Thread | None = None


def preload_evaluation(backend: str) -> threading.Thread | None:
    """Start importing what the evaluation needs in this process, in the background (once).

    While a child trains, this process only waits for its events; the evaluation after it then
    imports matplotlib for its plot and, on TensorFlow, Keras (and TensorFlow) to predict: a
    cold run paid those imports after training, one after the other. Started when training
    starts, they overlap the child's start and its epochs. On JAX Keras is never imported here
    (the run's child predicts: ``tasks.training.keras_work``). Only a task that trains calls
    it, so a fully cached rerun still imports neither.
    """
    global _preload
    if _preload is not None:
        return _preload

    def load() -> None:
        # A failed import here is raised again, with its traceback, where it is needed.
        with contextlib.suppress(Exception):
            import matplotlib

            matplotlib.use("Agg")  # the evaluation's file-only backend (figures.new_figure)
            import matplotlib.pyplot
        if not in_child(backend) and "keras" not in sys.modules:
            with contextlib.suppress(Exception):
                import keras  # noqa: F401

    _preload = threading.Thread(target=load, name="bikeflow-evaluation-preload", daemon=True)
    _preload.start()
    # Joined at exit, so a run that ends early never tears down a half-done import.
    atexit.register(_preload.join)
    return _preload


@task(
    name="train_model",
    cache_policy=ArtifactCache(libraries=("tensorflow", "keras", "numpy")),
    persist_result=True,
    result_serializer="json",
)
def train_model(
    data: NormalisedData, model: ModelConfig, training: TrainingConfig, store_root: str
) -> TrainingRun:
    """Train the configured model in a child process, saving a checkpoint every epoch."""
    logger = get_run_logger()
    # Called from sync code, Prefect's dual sync/async function returns the id itself.
    progress = cast(
        "UUID", create_progress_artifact(progress=0.0, description="Training epochs completed")
    )

    run_name = str(task_run.name or progress)

    def on_epoch(record: EpochRecord, epochs: int) -> None:
        logger.info(
            "epoch %d/%d: loss=%.4f val_loss=%.4f lr=%.3g",
            record.epoch,
            epochs,
            record.loss,
            record.val_loss,
            record.learning_rate,
        )
        update_progress_artifact(progress, 100.0 * record.epoch / epochs)
        # For the command's own display (tasks/progress.py); a no-op on a worker.
        report_epoch(run_name, f"seed {training.seed}", record.epoch, epochs, record.val_loss)

    request = FitRequest(data=data, model=model, training=training, store_root=store_root)
    preload_evaluation(keras_backend_of(request))
    return run_training_process(request, on_epoch, logger.info)
