"""The JAX trainer's members and their files: resume states each epoch, ``.keras`` at the end.

``jax_fit`` trains; this module keeps what each member must keep of it. With
``training.keep_checkpoints: chosen`` a member's epoch leaves a resume state
(``resume_state``) and only the states still needed stay; ``write_retained`` writes the
``.keras`` files retention keeps from them when training ends. With ``all``, ``jax_fit``
saves a ``.keras`` file every epoch as before. No Prefect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tasks.storage.descriptors import EpochRecord
from tasks.storage.store import FileRef
from tasks.training.epoch_choice import retained_epochs
from tasks.training.jax_steps import State
from tasks.training.keras_fit import checkpoint_saver
from tasks.training.resume_state import (
    Arrays,
    delete_states,
    load_state,
    needed_epochs,
    save_state,
)

if TYPE_CHECKING:
    import keras

    from tasks.training.job import FitJob

# A journaled epoch: its record, its .keras checkpoint and its resume state (None: not kept).
Done = tuple[EpochRecord, FileRef | None, FileRef | None]


@dataclass
class Member:
    """One member's Keras model (its checkpoints are written from it) and its records."""

    job: FitJob
    model: keras.Model
    history: list[EpochRecord] = field(default_factory=list)
    checkpoints: list[FileRef | None] = field(default_factory=list)
    states: list[FileRef | None] = field(default_factory=list)
    # The arrays of the epochs still needed (needed_epochs), for the final .keras files.
    arrays: dict[int, Arrays] = field(default_factory=dict)
    # Epochs taken from the journal (TrainingRun.resumed_from).
    resumed: int = 0

    @property
    def sparse(self) -> bool:
        """Whether only the retained epochs get a .keras file (keep_checkpoints: chosen)."""
        return self.job.training.keep_checkpoints != "all"


def member_arrays(host: State, index: int | None) -> Arrays:
    """One member's arrays (copies) from the host copy of the program's state."""
    trainable, non_trainable, optimizer = (
        [np.array(value if index is None else value[index]) for value in part] for part in host
    )
    return trainable, non_trainable, optimizer


def keep_state(member: Member, arrays: Arrays) -> list[FileRef]:
    """Record the epoch's state (a file when journaled); return the states no longer needed."""
    epoch = member.history[-1].epoch
    journaled = member.job.journal is not None
    member.checkpoints.append(None)
    member.states.append(save_state(member.job.store, arrays) if journaled else None)
    member.arrays[epoch] = arrays
    needed = needed_epochs(member.history)
    member.arrays = {e: a for e, a in member.arrays.items() if e in needed}
    superseded = []
    for position, state in enumerate(member.states):
        if state is not None and position + 1 not in needed:
            superseded.append(state)
            member.states[position] = None
    return superseded


def delete_unreferenced(members: list[Member], states: list[FileRef]) -> None:
    """Delete these state files unless a member still names one (equal arrays, one file)."""
    if states:
        live = {s.path for member in members for s in member.states if s is not None}
        delete_states(members[0].job.store, states, live)


def write_retained(members: list[Member], log: Callable[[str], None]) -> None:
    """Write the .keras files retention keeps from their states, then drop the states.

    The last epoch's first (each model holds it after training), then the chosen one's. The
    journal names the files before the states go, so a kill in between resumes as before.
    """
    superseded: list[FileRef] = []
    for member in members:
        if not member.sparse or not member.history:
            continue
        save = checkpoint_saver(member.job.store)
        for epoch in sorted(retained_epochs(member.history), reverse=True):
            if member.checkpoints[epoch - 1] is not None:
                continue  # written by an earlier attempt, before it was killed
            if epoch != member.history[-1].epoch:
                arrays, state = member.arrays.get(epoch), member.states[epoch - 1]
                if arrays is None and state is not None:
                    arrays = load_state(state)  # a resumed training: from its file
                if arrays is None:
                    log(f"epoch {epoch}'s state was not kept: no checkpoint for it")
                    continue
                write_back(member.model, arrays, None)
            member.checkpoints[epoch - 1] = save(member.model)
        superseded += [state for state in member.states if state is not None]
        member.states = [None] * len(member.states)
        journal = member.job.journal
        if journal is not None:
            journal.record(list(zip(member.history, member.checkpoints, strict=True)))
    delete_unreferenced(members, superseded)


def write_back(model: keras.Model, state: State, index: int | None) -> None:
    """Put one member's arrays into its Keras model (and optimizer), ready to be saved."""
    variables = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
    )
    for targets, values in zip(variables, state, strict=True):
        for target, value in zip(targets, values, strict=True):
            target.assign(value if index is None else value[index])
