"""Checkpoint retention: a finished training keeps its chosen epoch's checkpoint and its last.

No Prefect here (the training child runs it, after the trainer returns). With
``training.keep_checkpoints: all`` every epoch's stays. The journal is rewritten first, naming
the deleted checkpoints ``None``, so a resume never looks for a file that is gone; a crash
between the two leaves only unreferenced files, which ``bikeflow gc`` collects. tf-core runs
keep every epoch (their per-epoch ``tf.train.Checkpoint`` manifests go with them). The JAX
trainer writes only the retained epochs' ``.keras`` files in the first place (``jax_members``),
so here it finds nothing to delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tasks.storage.descriptors import EpochRecord, TrainingRun
from tasks.storage.store import FileRef
from tasks.training.epoch_choice import retained_epochs
from tasks.training.job import FitJob


def present_checkpoints(
    history: Sequence[EpochRecord], checkpoints: Sequence[FileRef | None]
) -> tuple[tuple[FileRef, ...], tuple[int, ...]]:
    """The checkpoints a run has (a journal's ``None`` is one deleted) and, if some are
    missing, their epochs (``TrainingRun.checkpoint_epochs``; empty: one per epoch)."""
    pairs = [(r.epoch, c) for r, c in zip(history, checkpoints, strict=True) if c is not None]
    epochs = () if len(pairs) == len(history) else tuple(epoch for epoch, _ in pairs)
    return tuple(c for _, c in pairs), epochs


def retain_checkpoints(job: FitJob, run: TrainingRun) -> TrainingRun:
    """Delete the checkpoints retention does not keep; the run naming only the kept ones."""
    if job.training.keep_checkpoints == "all" or run.tf_checkpoints:
        return run
    keep = set(retained_epochs(run.history))
    epochs = run.checkpoint_epochs or tuple(record.epoch for record in run.history)
    by_epoch = dict(zip(epochs, run.checkpoints, strict=True))
    if job.journal is not None:
        job.journal.record(
            [(r, by_epoch.get(r.epoch) if r.epoch in keep else None) for r in run.history]
        )
    kept = {epoch: c for epoch, c in by_epoch.items() if epoch in keep}
    kept_paths = {c.path for c in kept.values()}
    for epoch, checkpoint in by_epoch.items():
        path = Path(checkpoint.path)
        # Content-addressed: never a file a kept epoch shares; only the store's own objects.
        shared = checkpoint.path in kept_paths
        if epoch not in keep and not shared and path.parent.parent == job.store.objects:
            path.unlink(missing_ok=True)
    ordered = sorted(kept)
    return run.model_copy(
        update={
            "checkpoints": tuple(kept[epoch] for epoch in ordered),
            "checkpoint_epochs": tuple(ordered),
        }
    )
