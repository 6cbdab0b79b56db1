"""Select: the epoch with the lowest validation loss becomes the run's model."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import BestEpoch
from tasks.training.epoch_choice import best_epoch_index
from tasks.training.task import TrainingRun

__all__ = ["best_epoch_index", "select_best_epoch"]


@task(
    name="select_best_epoch",
    cache_policy=ArtifactCache(),
    persist_result=True,
    result_serializer="json",
)
def select_best_epoch(run: TrainingRun) -> BestEpoch:
    """Pick the epoch with the lowest validation loss (never looks at the test window)."""
    record = run.history[best_epoch_index(run.history)]
    get_run_logger().info("best epoch %d: val_loss=%.4f", record.epoch, record.val_loss)
    # A retained-away epoch has no checkpoint (training.keep_checkpoints), the chosen one has.
    model = run.checkpoint_of(record.epoch)
    return BestEpoch(epoch=record.epoch, val_loss=record.val_loss, loss=record.loss, model=model)
