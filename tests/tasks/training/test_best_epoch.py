import pytest

from schemas.errors import TrainingError
from tasks.storage.store import FileRef
from tasks.training.best_epoch import best_epoch_index, select_best_epoch
from tasks.training.task import DeviceInfo, EpochRecord, TrainingRun


def _history(*val_losses: float) -> list[EpochRecord]:
    return [
        EpochRecord(epoch=i + 1, loss=1.0, val_loss=v, learning_rate=0.1)
        for i, v in enumerate(val_losses)
    ]


def test_lowest_validation_loss_wins():
    assert best_epoch_index(_history(0.9, 0.3, 0.5, 0.31)) == 1


def test_tie_goes_to_the_earlier_epoch():
    assert best_epoch_index(_history(0.9, 0.4, 0.6, 0.4)) == 1


def test_non_finite_losses_are_skipped():
    assert best_epoch_index(_history(float("nan"), 0.8, float("inf"))) == 1


def test_diverged_training_is_an_error():
    with pytest.raises(TrainingError, match="diverged"):
        best_epoch_index(_history(float("nan"), float("nan")))


def test_task_returns_the_chosen_checkpoint():
    from prefect.logging import disable_run_logger

    checkpoints = tuple(FileRef(path=f"/m{i}.keras", sha256=str(i) * 64, size=1) for i in range(3))
    device = DeviceInfo(
        device="/cpu:0", strategy="x", visible_gpus=(), tensorflow_version="t", keras_version="k"
    )
    run = TrainingRun(
        history=tuple(_history(0.5, 0.2, 0.3)), checkpoints=checkpoints, device=device, seconds=1.0
    )
    with disable_run_logger():
        best = select_best_epoch.fn(run)
    assert (best.epoch, best.model) == (2, checkpoints[1])
