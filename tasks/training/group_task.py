"""Train a group: the Prefect task that fits several members in ONE child process on JAX.

The members share the data and the model; only their seeds (and a refit's epoch counts) differ.
The child (``tasks.training.group_child``) trains them as one vectorised program
(``tasks.training.jax_fit.fit_members``), so a run pays one child's start-up and one
compilation instead of one per member. Cached like ``train_model``: the key is the data, the
model, every member's training and the code, so a rerun of the same ensemble is Cached.
"""

from __future__ import annotations

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
from tasks.training.child_process import run_child
from tasks.training.request import GroupFitRequest
from tasks.training.task import EpochRecord, TrainingRun, preload_evaluation

if TYPE_CHECKING:
    from uuid import UUID

# A member's epoch as the child reports it: (member index, record, that member's epochs).
OnMemberEpoch = Callable[[int, EpochRecord, int], None]


def run_group_process(
    request: GroupFitRequest, on_epoch: OnMemberEpoch, log: Callable[[str], None]
) -> list[TrainingRun]:
    """Train the group in one child process (``tasks.training.child``); one run per member."""
    members = len(request.trainings)
    results: dict[int, TrainingRun] = {}
    epochs_done, last_epoch = 0, 0

    def on_event(event: dict[str, Any]) -> None:
        nonlocal epochs_done, last_epoch
        kind = event["event"]
        if kind == "epoch":
            epochs_done += 1
            record = EpochRecord.model_validate(event["record"])
            last_epoch = max(last_epoch, record.epoch)
            on_epoch(int(event["member"]), record, int(event["epochs"]))
        elif kind == "log":
            log(event["message"])
        elif kind == "result":
            results[int(event["member"])] = TrainingRun.model_validate(event["run"])

    # The members train at once, so one member's timeout is the group's.
    timeout = max(training.timeout_minutes for training in request.trainings)
    backend = keras_backend_of(request.member(0))  # the members share their backend
    outcome = run_child(request.model_dump_json(), timeout, on_event, backend=backend)
    if outcome.timed_out:
        raise group_timeout_error(request, timeout, last_epoch)
    outcome.raise_reported_error()
    if outcome.code != 0 or sorted(results) != list(range(members)):
        raise outcome.ended_early(epochs_done)
    return [results[member] for member in range(members)]


def group_timeout_error(
    request: GroupFitRequest, timeout_minutes: float, last_epoch: int
) -> TrainingTimeoutError:
    """The one paragraph for a group stopped at its timeout: its members and the epoch."""
    seeds = ", ".join(str(training.seed) for training in request.trainings)
    epochs = max(training.epochs for training in request.trainings)
    reached = (
        f"after epoch {last_epoch} of {epochs}"
        if last_epoch
        else f"before it finished an epoch (of {epochs})"
    )
    return TrainingTimeoutError(
        f"training timed out: the {len(request.trainings)} {request.model.architecture} "
        f"members with seeds {seeds}, trained together in one process, ran past "
        f"training.timeout_minutes ({timeout_minutes:g} min) and were stopped {reached}; "
        "their process was killed. Raise training.timeout_minutes if it was only slow: a "
        "rerun resumes from their last checkpoints."
    )


@task(
    name="train_member_group",
    cache_policy=ArtifactCache(libraries=("tensorflow", "keras", "numpy")),
    persist_result=True,
    result_serializer="json",
)
def train_member_group(
    data: NormalisedData,
    model: ModelConfig,
    trainings: list[TrainingConfig],
    store_root: str,
) -> list[TrainingRun]:
    """Train the members together in one child (one vectorised JAX program); a run each."""
    logger = get_run_logger()
    # Called from sync code, Prefect's dual sync/async function returns the id itself.
    progress = cast(
        "UUID", create_progress_artifact(progress=0.0, description="Training epochs completed")
    )
    run_name = str(task_run.name or progress)
    total = sum(training.epochs for training in trainings)
    done = [0] * len(trainings)

    def on_epoch(member: int, record: EpochRecord, epochs: int) -> None:
        seed = trainings[member].seed
        logger.info(
            "seed %d epoch %d/%d: loss=%.4f val_loss=%.4f lr=%.3g",
            seed,
            record.epoch,
            epochs,
            record.loss,
            record.val_loss,
            record.learning_rate,
        )
        done[member] = record.epoch
        update_progress_artifact(progress, 100.0 * sum(done) / total)
        # One line of the command's display per member (tasks/progress.py).
        training = f"{run_name} member {member + 1}"
        report_epoch(training, f"seed {seed}", record.epoch, epochs, record.val_loss)

    request = GroupFitRequest(
        data=data, model=model, trainings=tuple(trainings), store_root=store_root
    )
    preload_evaluation(keras_backend_of(request.member(0)))
    return run_group_process(request, on_epoch, logger.info)
