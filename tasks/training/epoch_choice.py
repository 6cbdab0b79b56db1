"""The epoch rule, shared by the choice (``best_epoch``) and the retention (``keras_fit``).

No Prefect here: the training child applies the same rule when it deletes the checkpoints of
the epochs nobody will load (``retained_epochs``), and the child must not import Prefect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from schemas.errors import TrainingError
from tasks.storage.descriptors import EpochRecord


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


def retained_epochs(history: Sequence[EpochRecord]) -> tuple[int, ...]:
    """The epochs whose checkpoints a finished training keeps: the chosen one and the last.

    The chosen one is what ``select_best_epoch`` loads; the last is what a resume (or a refit's
    member) starts from. A diverged training keeps only its last: select refuses it anyway.
    """
    if not history:
        return ()
    last = history[-1].epoch
    try:
        chosen = history[best_epoch_index(history)].epoch
    except TrainingError:
        return (last,)
    return tuple(sorted({chosen, last}))
