"""What a ``bikeflow`` command shows while its flow runs: a live display, a few lines, or nothing.

Default: Prefect's console shows warnings and errors only (the UI keeps every INFO line), and
the command shows its own progress: a live rich display when stdout is a terminal (the step
just finished, trainings x epochs with the latest validation loss, elapsed time and ETA), else
one plain line per finished step. ``--verbose``: Prefect's full console log, no display.
``--quiet``: no Prefect console at all and no display; the command prints its summary or error.

Steps come from Prefect's own "Finished in state ..." records on its task-run logger; epochs
from ``tasks.progress``. Every display call is guarded: a display bug never fails a run. A
loose module of ``tasks`` (like ``error_logs``), since ``flows/cli/common.py`` imports nothing of
``flows``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

from tasks.progress import EpochProgress, listening

VERBOSITIES = ("default", "quiet", "verbose")
_FINISHED = "Finished in state "
# Above CRITICAL: a handler at this level shows nothing.
_SILENT = logging.CRITICAL + 10


def elapsed_text(seconds: float) -> str:
    """``H:MM:SS`` of a duration in seconds."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def state_name(message: str) -> str:
    """``Completed`` from ``Finished in state Completed()``, ``Cached`` from ``Cached(...)``."""
    return message[len(_FINISHED) :].split("(", 1)[0].strip() or "Finished"


class Trainings:
    """Every training's latest epoch, keyed by its id (several run at once)."""

    def __init__(self) -> None:
        self.latest: dict[str, EpochProgress] = {}
        self.last: EpochProgress | None = None

    def add(self, event: EpochProgress) -> None:
        """Record one epoch."""
        self.latest[event.training] = event
        self.last = event

    @property
    def done(self) -> int:
        """Epochs finished, over every training."""
        return sum(event.epoch for event in self.latest.values())

    @property
    def total(self) -> int:
        """Epochs planned by the trainings started so far."""
        return sum(event.epochs for event in self.latest.values())

    def describe(self) -> str:
        """The latest epoch, as ``seed 1000: epoch 5/60, val_loss 0.0812``."""
        last = self.last
        if last is None:
            return ""
        return f"{last.label}: epoch {last.epoch}/{last.epochs}, val_loss {last.val_loss:.4f}"


class PlainDisplay:
    """One line per finished step (for a pipe, CI, a log file): never a line per epoch."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.trainings = Trainings()
        self._lock = threading.Lock()

    def step_line(self, step: str, state: str, training: EpochProgress | None) -> str:
        """``  0:00:41  train_model          Completed  seed 0: 60 epochs, val_loss 0.0812``."""
        line = f"  {elapsed_text(time.monotonic() - self.started)}  {step:<20} {state}"
        if training is not None:
            line += f"  {training.label}: {training.epoch} epochs, val_loss {training.val_loss:.4f}"
        return line

    def step_finished(self, step: str, state: str, training: EpochProgress | None) -> None:
        """Print the step's line."""
        with self._lock:
            print(self.step_line(step, state, training), file=self.stream or sys.stdout, flush=True)

    def epoch(self, event: EpochProgress) -> None:
        """Remember the epoch (its step's line names the last one)."""
        with self._lock:
            self.trainings.add(event)

    def stop(self) -> None:
        """Nothing to clear."""


class LiveDisplay:
    """A live rich display on a terminal: steps, trainings x epochs, elapsed and ETA."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        self.trainings = Trainings()
        self._lock = threading.Lock()
        self.steps_done = 0

        # The numbers keep their width on a narrow terminal; the texts give way.
        def numbers(width: int) -> Column:
            return Column(no_wrap=True, min_width=width)

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn(
                "{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis")
            ),
            BarColumn(bar_width=20),
            MofNCompleteColumn(table_column=numbers(7)),
            TimeElapsedColumn(table_column=numbers(7)),
            TextColumn("ETA"),
            TimeRemainingColumn(table_column=numbers(7)),
            # The detail takes what the numbers leave of a narrow terminal.
            TextColumn(
                "{task.fields[detail]}",
                table_column=Column(no_wrap=True, overflow="ellipsis"),
            ),
            console=console,
            transient=True,
        )
        self.steps = self.progress.add_task("steps", total=None, detail="starting")
        self.epochs = self.progress.add_task("epochs", total=None, detail="", visible=False)
        self.progress.start()

    def step_finished(self, step: str, state: str, training: EpochProgress | None) -> None:
        """Count the step and name it."""
        with self._lock:
            self.steps_done += 1
            self.progress.update(
                self.steps,
                description=f"step {self.steps_done}",
                completed=self.steps_done,
                detail=f"{step} {state}",
            )

    def epoch(self, event: EpochProgress) -> None:
        """Advance the epochs bar; show the latest validation loss."""
        with self._lock:
            self.trainings.add(event)
            count = len(self.trainings.latest)
            self.progress.update(
                self.epochs,
                description=f"{count} training(s) x {event.epochs} epochs",
                total=self.trainings.total,
                completed=self.trainings.done,
                detail=self.trainings.describe(),
                visible=True,
            )

    def stop(self) -> None:
        """Clear the display (the summary follows)."""
        self.progress.stop()


Display = PlainDisplay | LiveDisplay


class StepHandler(logging.Handler):
    """Tells a display each task run that finished, from Prefect's own task-run records."""

    def __init__(self, display: Display) -> None:
        super().__init__(level=logging.INFO)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        """A "Finished in state ..." record of a task run becomes one finished step."""
        try:
            message = record.getMessage()
            if not message.startswith(_FINISHED):
                return
            step = str(getattr(record, "task_name", "") or "").strip()
            if not step or step == "<unknown>":
                return
            run_name = str(getattr(record, "task_run_name", ""))
            training = self.display.trainings.latest.get(run_name)
            self.display.step_finished(step, state_name(message), training)
        except Exception:  # a display bug must never fail a run
            return


@contextlib.contextmanager
def prefect_console_level(verbosity: str) -> Iterator[None]:
    """Within: Prefect's console handlers show warnings (default), nothing (quiet) or all."""
    from prefect.logging.handlers import PrefectConsoleHandler

    level = {"default": logging.WARNING, "quiet": _SILENT}.get(verbosity)
    handlers = [
        handler
        for logger in (logging.getLogger(), logging.getLogger("prefect"))
        for handler in logger.handlers
        if isinstance(handler, PrefectConsoleHandler)
    ]
    before = [handler.level for handler in handlers]
    if level is not None:
        for handler in handlers:
            # Only the console: the loggers keep INFO, so the UI's log keeps every line.
            handler.setLevel(max(level, handler.level))
    try:
        yield
    finally:
        for handler, old in zip(handlers, before, strict=True):
            handler.setLevel(old)


def make_display(verbosity: str, stream: TextIO | None = None) -> Display | None:
    """The display for this verbosity and stdout (None for --quiet and --verbose)."""
    if verbosity != "default":
        return None
    out = stream or sys.stdout
    if out.isatty():
        from rich.console import Console

        return LiveDisplay(Console(file=out))
    return PlainDisplay(stream)


@contextlib.contextmanager
def showing_progress(verbosity: str) -> Iterator[None]:
    """Within: the run's progress shows as ``verbosity`` asks (see the module's docstring)."""
    with prefect_console_level(verbosity):
        try:
            display = make_display(verbosity)
        except Exception:  # no display rather than no run
            display = None
        if display is None:
            yield
            return
        handler = StepHandler(display)
        task_runs = logging.getLogger("prefect.task_runs")
        task_runs.addHandler(handler)

        def on_epoch(event: EpochProgress) -> None:
            display.epoch(event)

        try:
            with listening(on_epoch):
                yield
        finally:
            task_runs.removeHandler(handler)
            with contextlib.suppress(Exception):
                display.stop()
