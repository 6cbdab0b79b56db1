"""A training that hangs for real (its child stopped with SIGSTOP) is killed at
training.timeout_minutes, and the run is Failed with one paragraph naming the member and epoch."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from prefect import flow

from schemas.errors import TrainingTimeoutError
from tasks.storage.journal import read_journal
from tasks.storage.store import ArtifactStore
from tasks.training.request import FitRequest
from tasks.training.task import train_model
from tests.tasks.training.test_resume import _children_running, _request

pytestmark = pytest.mark.slow

# Long enough for a busy machine to start TensorFlow and finish epoch 1 before it fires.
TIMEOUT_MINUTES = 0.5
OTHER_EPOCHS = 9


@flow(name="train-with-timeout")
def _train(request: FitRequest) -> None:
    train_model(request.data, request.model, request.training, request.store_root)


def test_a_hung_training_is_killed_at_its_timeout_and_the_run_fails(tmp_path: Path):
    request = _request(tmp_path, train_rows=400)
    training = request.training.model_copy(
        update={"epochs": 50, "timeout_minutes": TIMEOUT_MINUTES}
    )
    request = request.model_copy(update={"training": training})
    store, name = ArtifactStore(tmp_path), request.journal_name()
    stopped: list[int] = []

    def hang_after_epoch_one() -> None:
        deadline = time.monotonic() + 60 * TIMEOUT_MINUTES
        while time.monotonic() < deadline:
            if (read_journal(store, name) or {}).get("epochs"):
                for pid in _children_running("tasks.training.child"):
                    os.kill(pid, signal.SIGSTOP)  # alive, silent: a hang, not a crash
                    stopped.append(pid)
                return
            time.sleep(0.01)

    hanger = threading.Thread(target=hang_after_epoch_one)
    hanger.start()
    started = time.monotonic()
    state = _train(request, return_state=True)
    hanger.join()

    assert stopped, "the training finished no epoch before its timeout"
    assert state.is_failed()
    assert time.monotonic() - started < 60 * TIMEOUT_MINUTES + 30
    message = state.message or ""
    with pytest.raises(TrainingTimeoutError) as raised:
        state.result()
    epoch = len(read_journal(store, name)["epochs"])
    for words in ("seed 11", f"after epoch {epoch} of 50", "training.timeout_minutes (0.5 min)"):
        assert words in str(raised.value) and words in message
    assert "\n" not in str(raised.value)
    assert _children_running("tasks.training.child") == []
    for pid in stopped:  # killed and reaped: no process of that id is left
        assert not Path(f"/proc/{pid}").exists()


def test_a_longer_timeout_resumes_the_same_journal(tmp_path: Path):
    request = _request(tmp_path, train_rows=40)
    longer = request.training.model_copy(update={"timeout_minutes": 600.0})
    assert request.model_copy(update={"training": longer}).journal_name() == request.journal_name()
    more_epochs = request.training.model_copy(update={"epochs": OTHER_EPOCHS})
    assert request.model_copy(update={"training": more_epochs}).journal_name() != (
        request.journal_name()
    )
