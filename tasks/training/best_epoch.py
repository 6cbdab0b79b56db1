"""Select: the epoch with the lowest validation loss becomes the run's model."""

from __future__ import annotations

import math
from collections.abc import Sequence

from prefect import task
from prefect.logging import get_run_logger

from schemas.errors import TrainingError
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import BestEpoch
from tasks.training.task import EpochRecord, TrainingRun


def best_epoch_index(history: Sequence[EpochRecord]) -> int:
    """Index of the lowest finite validation loss; a tie goes to the earlier epoch."""
    best: int | None = None
    for index, record in enumerate(history):
        if not math.isfinite(record.val_loss):
            continue
        # Strictly lower only, so an equal later loss never displaces an earlier epoch.
        if best is None or record.val_loss < history[best].val_loss:
            best = index
    if best is None:
        raise TrainingError(
            f"no epoch of {len(history)} has a finite validation loss: training diverged "
            "(try a lower learning_rate)"
        )
    return best


@task(
    name="select_best_epoch",
    cache_policy=ArtifactCache(),
    persist_result=True,
    result_serializer="json",
)
def select_best_epoch(run: TrainingRun) -> BestEpoch:
    """Pick the epoch with the lowest validation loss (never looks at the test window)."""
    if len(run.history) != len(run.checkpoints):
        raise TrainingError(
            f"{len(run.history)} epochs were recorded but {len(run.checkpoints)} checkpoints saved"
        )
    index = best_epoch_index(run.history)
    record = run.history[index]
    get_run_logger().info("best epoch %d: val_loss=%.4f", record.epoch, record.val_loss)
    return BestEpoch(
        epoch=record.epoch, val_loss=record.val_loss, loss=record.loss, model=run.checkpoints[index]
    )
