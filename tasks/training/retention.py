"""Checkpoint retention: a finished training keeps its chosen epoch's checkpoint and its last.

No Prefect here (the training child runs it). ``training.keep_checkpoints: all`` keeps every
epoch's. The journal is rewritten first, naming the deleted checkpoints ``None``, so a resume
never looks for a file that is gone; a crash between the two leaves only unreferenced files,
which ``bikeflow gc`` collects.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tasks.storage.descriptors import EpochRecord
from tasks.storage.store import FileRef
from tasks.training.epoch_choice import retained_epochs
from tasks.training.job import FitJob


def retain_checkpoints(
    job: FitJob, history: Sequence[EpochRecord], checkpoints: Sequence[FileRef | None]
) -> tuple[tuple[FileRef, ...], tuple[int, ...]]:
    """Delete the checkpoints retention does not keep: (the kept ones, their epochs)."""
    if job.training.keep_checkpoints == "all" and all(c is not None for c in checkpoints):
        return tuple(c for c in checkpoints if c is not None), ()
    keep = set(retained_epochs(history))
    if job.training.keep_checkpoints == "all":
        keep = {record.epoch for record in history}
    pairs = list(zip(history, checkpoints, strict=True))
    kept = [(r, c) for r, c in pairs if r.epoch in keep and c is not None]
    dropped = [c for r, c in pairs if r.epoch not in keep and c is not None]
    if job.journal is not None:
        job.journal.record([(r, c if r.epoch in keep else None) for r, c in pairs])
    kept_paths = {c.path for _, c in kept}
    for checkpoint in dropped:
        # Content-addressed: never delete a file a kept epoch shares; only the store's objects.
        path = Path(checkpoint.path)
        if checkpoint.path not in kept_paths and path.parent.parent == job.store.objects:
            path.unlink(missing_ok=True)
    return tuple(c for _, c in kept), tuple(r.epoch for r, _ in kept)
