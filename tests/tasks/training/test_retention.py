"""Checkpoint retention: a finished training keeps the chosen epoch's checkpoint and its last
(``training.keep_checkpoints: chosen``), with the same history and choice as keeping all."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import ArtifactError
from tasks.storage.descriptors import DeviceInfo, EpochRecord, TrainingRun
from tasks.storage.store import ArtifactStore, FileRef
from tasks.training.epoch_choice import best_epoch_index, retained_epochs
from tasks.training.job import EpochJournal
from tasks.training.task import run_training_process
from tests.tasks.training.test_resume import _request

DEVICE = DeviceInfo(
    device="/cpu:0", strategy="x", visible_gpus=(), tensorflow_version="t", keras_version="k"
)


def _history(*val_losses: float) -> tuple[EpochRecord, ...]:
    return tuple(
        EpochRecord(epoch=i + 1, loss=1.0, val_loss=v, learning_rate=0.1)
        for i, v in enumerate(val_losses)
    )


def test_retained_epochs_are_the_chosen_one_and_the_last():
    history = _history(0.9, 0.3, 0.5, 0.4)
    assert history[best_epoch_index(history)].epoch == 2
    assert retained_epochs(history) == (2, 4)
    assert retained_epochs(_history(0.9, 0.3)) == (2,)  # the chosen one is the last
    assert retained_epochs(_history(float("nan"), float("nan"))) == (2,)  # diverged
    assert retained_epochs(()) == ()


def test_a_run_names_the_checkpoints_it_kept_by_epoch():
    kept = (
        FileRef(path="/b.keras", sha256="b" * 64, size=1),
        FileRef(path="/d.keras", sha256="d" * 64, size=1),
    )
    run = TrainingRun(
        history=_history(0.9, 0.3, 0.5, 0.4),
        checkpoints=kept,
        checkpoint_epochs=(2, 4),
        device=DEVICE,
        seconds=1.0,
    )
    assert run.checkpoint_of(2) == kept[0] and run.checkpoint_of(4) == kept[1]
    with pytest.raises(ArtifactError, match="epoch 3's checkpoint was not kept"):
        run.checkpoint_of(3)
    # A record from before retention: one checkpoint per epoch, in order.
    every = tuple(FileRef(path=f"/{i}.keras", sha256=str(i) * 64, size=1) for i in range(4))
    old = TrainingRun(history=run.history, checkpoints=every, device=DEVICE, seconds=1.0)
    assert old.checkpoint_of(3) == every[2]


def test_the_journal_keeps_the_records_of_epochs_without_checkpoints(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    journal = EpochJournal(store, "abc")
    history = _history(0.9, 0.3, 0.5)
    refs = [store.put_bytes(f"epoch {i}".encode(), ".keras") for i in range(3)]
    journal.record([(history[0], None), (history[1], refs[1]), (history[2], refs[2])])
    assert journal.completed() == [(history[0], None), (history[1], refs[1]), (history[2], refs[2])]
    # A resume loads the last entry's checkpoint: the list ends at one that has it.
    journal.record([(history[0], refs[0]), (history[1], refs[1]), (history[2], None)])
    assert journal.completed() == [(history[0], refs[0]), (history[1], refs[1])]
    Path(refs[1].path).write_bytes(b"damaged")
    assert journal.completed() == [(history[0], refs[0])]


def _keras_files(root: Path) -> set[str]:
    return {str(path) for path in root.rglob("*.keras")}


@pytest.mark.slow
def test_a_finished_training_keeps_the_chosen_and_last_checkpoint_only(tmp_path: Path):
    request = _request(tmp_path / "chosen", train_rows=400)
    every = request.model_copy(
        update={"training": request.training.model_copy(update={"keep_checkpoints": "all"})}
    )
    every = every.model_copy(update={"store_root": str(tmp_path / "all")})
    full = run_training_process(every, lambda r, n: None, print)
    assert len(full.checkpoints) == len(full.history) == 4 and full.checkpoint_epochs == ()

    run = run_training_process(request, lambda r, n: None, print)
    assert run.history == full.history  # retention changes no number
    kept = retained_epochs(run.history)
    assert run.checkpoint_epochs == kept and len(run.checkpoints) == len(kept)
    # The store holds exactly the kept checkpoints.
    assert _keras_files(tmp_path / "chosen") == {c.path for c in run.checkpoints}
    assert len(_keras_files(tmp_path / "all")) == 4
    # The journal names the deleted ones None; running the training again reads it whole.
    store = ArtifactStore(tmp_path / "chosen")
    journal = EpochJournal(store, request.journal_name(), request.training.backend)
    assert [c is not None for _, c in journal.completed()] == [e in kept for e in range(1, 5)]
    again = run_training_process(request, lambda r, n: None, print)
    assert again.resumed_from == 4 and again.history == run.history
    assert again.checkpoints == run.checkpoints and again.checkpoint_epochs == kept
