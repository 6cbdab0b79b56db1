"""The command's progress: one plain line per step off a terminal, a live rich display on one,
and an epoch report that never fails a run when its display does."""

from __future__ import annotations

import logging
import re
from io import StringIO

from rich.console import Console

from tasks.progress import EpochProgress, listening, report_epoch
from tasks.progress_display import LiveDisplay, PlainDisplay, StepHandler, state_name

NEEDS_PREFECT = False


def _finished(step: str, run_name: str, state: str = "Completed()") -> logging.LogRecord:
    """A record as Prefect's task engine logs the end of a task run."""
    record = logging.LogRecord(
        "prefect.task_runs", logging.INFO, __file__, 1, f"Finished in state {state}", None, None
    )
    record.task_name = step
    record.task_run_name = run_name
    return record


def test_a_plain_line_per_finished_step_names_the_training_it_ran():
    out = StringIO()
    display = PlainDisplay(out)
    handler = StepHandler(display)
    for epoch in (1, 2, 3):
        display.epoch(EpochProgress("train_model-a1", "seed 1000", epoch, 3, 0.5 / epoch))

    handler.emit(_finished("ingest_source", "ingest_source-x", "Cached(type=COMPLETED)"))
    handler.emit(_finished("train_model", "train_model-a1"))
    other = _finished("train_model", "train_model-a1")
    other.msg = "epoch 3/3: loss=0.1 val_loss=0.1667 lr=0.001"
    handler.emit(other)

    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # one per finished step, none for an epoch or another message
    assert re.fullmatch(r"  \d:\d\d:\d\d  ingest_source {8}Cached", lines[0])
    assert re.fullmatch(
        r"  \d:\d\d:\d\d  train_model {10}Completed  seed 1000: 3 epochs, val_loss 0\.1667",
        lines[1],
    )


def test_state_names():
    assert state_name("Finished in state Completed()") == "Completed"
    assert state_name("Finished in state Failed('boom')") == "Failed"
    assert state_name("Finished in state Cached(type=COMPLETED)") == "Cached"


def test_the_live_display_shows_the_step_trainings_epochs_loss_and_eta_on_a_terminal():
    screen = StringIO()
    display = LiveDisplay(Console(force_terminal=True, file=screen, width=160))
    display.step_finished("check_new_data", "Completed", None)
    for training in ("train_model-a", "train_model-b"):
        for epoch in (1, 2):
            display.epoch(EpochProgress(training, f"seed {training[-1]}", epoch, 4, 0.25 * epoch))
    display.progress.refresh()
    display.stop()

    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "\x1b[" in screen.getvalue()  # drawn as a terminal display
    assert "check_new_data Completed" in shown
    assert "2 training(s) x 4 epochs" in shown
    assert "4/8" in shown  # epochs done over planned, across the trainings
    assert "seed b: epoch 2/4, val_loss 0.5000" in shown
    assert "ETA" in shown


def test_a_listener_that_raises_never_fails_the_training_that_reports():
    seen: list[EpochProgress] = []

    def broken(event: EpochProgress) -> None:
        raise RuntimeError("a display bug")

    with listening(broken), listening(seen.append):
        report_epoch("train_model-a", "seed 0", 1, 2, 0.5)
    report_epoch("train_model-a", "seed 0", 2, 2, 0.4)  # no listener left: nothing happens

    assert seen == [EpochProgress("train_model-a", "seed 0", 1, 2, 0.5)]
