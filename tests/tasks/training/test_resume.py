"""Crash and resume: SIGKILL the training process mid-epoch; the next attempt resumes from the
last completed epoch's checkpoint and ends exactly where an uninterrupted training ends."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from schemas.config import ModelConfig, TrainingConfig
from schemas.errors import TrainingError
from tasks.prepare.normalise import NormalisedData, Statistics
from tasks.storage.journal import read_journal, write_journal
from tasks.storage.library_versions import TRAINING_LIBRARIES, library_versions
from tasks.storage.store import ArtifactStore
from tasks.training.request import FitRequest
from tasks.training.task import EpochJournal, run_training_process

pytestmark = pytest.mark.slow

EPOCHS = 4


def _request(root: Path, train_rows: int = 1600, keep: str = "chosen") -> FitRequest:
    rng = np.random.default_rng(0)
    rows = train_rows + 200
    x = rng.normal(0, 1, (rows, 11)).astype(np.float32)
    y = (x[:, :1] * 0.8 - x[:, 7:8] * 0.5 + rng.normal(0, 0.1, (rows, 1))).astype(np.float32)
    store = ArtifactStore(root)
    arrays = {
        "x_train": x[:train_rows],
        "y_train": y[:train_rows],
        "x_validation": x[train_rows:],
        "y_validation": y[train_rows:],
        "x_test": x[train_rows:],
        "y_test": y[train_rows:],
    }
    stats = Statistics(
        feature_names=tuple("abcdefghijk"),
        feature_mean=(0.0,) * 11,
        feature_std=(1.0,) * 11,
        target_mean=0.0,
        target_std=1.0,
        train_rows=train_rows,
    )
    data = NormalisedData(
        statistics=stats,
        statistics_file=store.put_json({}),
        **{name: store.put_array(array) for name, array in arrays.items()},
    )
    # The seed's batch size 4: 400 steps an epoch, long enough to be killed in the middle.
    # Keras fit on TensorFlow: the JAX trainer's resume has its own tests (test_jax_fit.py).
    training = TrainingConfig(
        epochs=EPOCHS,
        batch_size=4,
        learning_rate=0.02,
        seed=11,
        keep_checkpoints=keep,
        backend="tensorflow",
    )
    return FitRequest(data=data, model=ModelConfig(), training=training, store_root=str(root))


def _children_running(module: str) -> list[int]:
    """Pids of this process's children whose command line runs ``module``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and module in cmdline:
            found.append(int(entry.name))
    return found


def test_killed_training_resumes_from_its_last_epoch_with_identical_results(tmp_path: Path):
    uninterrupted = run_training_process(_request(tmp_path / "a"), lambda r, n: None, print)
    assert uninterrupted.resumed_from == 0

    request = _request(tmp_path / "b")
    store = ArtifactStore(tmp_path / "b")
    name = request.journal_name()
    killed: dict[str, float] = {}

    def kill_in_the_middle_of_epoch_three() -> None:
        deadline = time.monotonic() + 600
        finished: dict[int, float] = {}
        while time.monotonic() < deadline and 2 not in finished:
            journal = read_journal(store, name) or {}
            finished.setdefault(len(journal.get("epochs", [])), time.monotonic())
            time.sleep(0.005)
        started = time.monotonic()
        # Early in epoch 3 (10% of epoch 2's time): late enough to be inside it, and far from
        # its end even when a busy machine makes epochs uneven.
        time.sleep(0.1 * (finished[2] - finished.get(1, finished[2] - 1.0)))
        for pid in _children_running("tasks.training.child"):
            os.kill(pid, signal.SIGKILL)
            killed["after"] = time.monotonic() - started

    killer = threading.Thread(target=kill_in_the_middle_of_epoch_three)
    killer.start()
    seen: list[int] = []
    with pytest.raises(TrainingError, match="killed by signal 9"):
        run_training_process(request, lambda record, total: seen.append(record.epoch), print)
    killer.join()
    assert "after" in killed
    # Killed during epoch 3: two epochs were reported, and their history survived the crash.
    assert seen == [1, 2]
    survived = EpochJournal(store, name, request.training.backend).completed()
    assert [record.epoch for record, _ in survived] == [1, 2]
    assert [r for r, _ in survived] == list(uninterrupted.history[:2])

    resumed = run_training_process(request, lambda r, n: None, print)
    assert resumed.resumed_from == 2  # not started over
    assert [r.epoch for r in resumed.history] == list(range(1, EPOCHS + 1))
    # Same seed on CPU: the very same losses, learning rates and hence the same best epoch.
    assert resumed.history == uninterrupted.history
    best = min(resumed.history, key=lambda r: (r.val_loss, r.epoch))
    assert best == min(uninterrupted.history, key=lambda r: (r.val_loss, r.epoch))
    # keep_checkpoints: chosen (the default): once finished, only the chosen and last remain.
    assert resumed.checkpoint_epochs == tuple(sorted({best.epoch, EPOCHS}))
    assert {str(p) for p in (tmp_path / "b").rglob("*.keras")} == {
        c.path for c in resumed.checkpoints
    }


def test_a_damaged_checkpoint_resumes_from_the_epoch_before_it(tmp_path: Path):
    # Every epoch's checkpoint kept, so the one before the damaged one is there.
    request = _request(tmp_path, train_rows=400, keep="all")
    request = request.model_copy(
        update={"training": request.training.model_copy(update={"epochs": 2})}
    )
    first = run_training_process(request, lambda r, n: None, print)
    Path(first.checkpoints[1].path).write_bytes(b"damaged")
    again = run_training_process(request, lambda r, n: None, print)
    assert again.resumed_from == 1 and again.history == first.history


def test_a_journal_written_under_other_library_versions_is_not_resumed(tmp_path: Path):
    request = _request(tmp_path, train_rows=400)
    request = request.model_copy(
        update={"training": request.training.model_copy(update={"epochs": 2})}
    )
    first = run_training_process(request, lambda r, n: None, print)
    store, name = ArtifactStore(tmp_path), request.journal_name()
    journal = read_journal(store, name)
    now = library_versions(TRAINING_LIBRARIES)
    assert journal["libraries"] == now
    # The same journal as a training under another TensorFlow would have left it.
    journal["libraries"]["tensorflow"] = "2.0.0"
    write_journal(store, name, journal)

    said: list[str] = []
    again = run_training_process(request, lambda r, n: None, said.append)
    assert again.resumed_from == 0 and again.history == first.history  # started afresh
    refusals = [message for message in said if "not resuming" in message]
    assert len(refusals) == 1 and f"tensorflow 2.0.0 -> {now['tensorflow']}" in refusals[0]
    assert read_journal(store, name)["libraries"] == now  # the new epochs, under these versions
