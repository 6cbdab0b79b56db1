"""A run's training progress, told to a display in the same process (the ``bikeflow`` command).

The training task reports each epoch here with one call; the command's display listens. The
module imports nothing of Prefect or of the project, and a listener that raises is ignored:
a display must never fail a run. Without a listener (a worker, a test, a notebook) a report
costs a lock and an empty loop.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class EpochProgress:
    """One finished epoch of one training."""

    training: str  # the training's task run name (unique in its flow run)
    label: str  # what a person reads: "seed 1000"
    epoch: int
    epochs: int
    val_loss: float


Listener = Callable[[EpochProgress], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def report_epoch(training: str, label: str, epoch: int, epochs: int, val_loss: float) -> None:
    """Tell every listener that a training finished an epoch; never raises."""
    with _lock:
        listeners = list(_listeners)
    if not listeners:
        return
    event = EpochProgress(training, label, epoch, epochs, val_loss)
    for listener in listeners:
        with contextlib.suppress(Exception):
            listener(event)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Within: ``listener`` receives every epoch reported in this process."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
