"""The training child's group entry: several members trained as one vectorised JAX program.

``tasks.training.child`` hands a ``GroupFitRequest`` here. The members share the data, the
model and the batch size (seeds differ, and a refit's epoch counts may), so
``tasks.training.jax_fit.fit_members`` trains them as one ``jax.vmap`` program. Every event
names its member (``member``: its index in the request): each epoch as it ends, then one
``result`` per member. No Prefect here (the child's import contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tasks.training.request import GroupFitRequest

# How the child writes one event (``tasks.training.child._emit`` bound to its protocol stream).
Emit = Callable[..., None]


def serve_group(request: GroupFitRequest, emit: Emit) -> None:
    """Train the group's members together and report every member's epochs and result."""
    from tasks.training.jax_fit import fit_members
    from tasks.training.retention import retain_checkpoints

    def on_epoch(member: int, record: Any) -> None:
        epochs = request.trainings[member].epochs
        emit("epoch", member=member, record=record.model_dump(), epochs=epochs)

    jobs = request.jobs()
    runs = fit_members(jobs, log=lambda message: emit("log", message=message), on_epoch=on_epoch)
    for member, (job, run) in enumerate(zip(jobs, runs, strict=True)):
        # training.keep_checkpoints, member by member, as a training of its own keeps them.
        kept = retain_checkpoints(job, run)
        emit("result", member=member, run=kept.model_dump(mode="json"))
