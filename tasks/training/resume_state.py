"""A JAX member's resume state: its arrays after an epoch, a small ``.npz`` in the store.

The JAX trainer (``jax_fit``) writes one of these every epoch instead of a ``.keras`` file
(which costs tens of milliseconds against an epoch's few): the trainable, non-trainable and
optimizer arrays, exactly the ``State`` lists the compiled program carries, so a resume from
one continues bit for bit. The epoch journal names each state with its digest (an incomplete
or altered file is never resumed from); only the states a resume or the final ``.keras``
files still need stay (``needed_epochs``), the others are deleted as training goes on. No
pickle: the arrays are plain numeric ones, loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from schemas.errors import ArtifactError, TrainingError
from tasks.storage.descriptors import EpochRecord
from tasks.storage.store import ArtifactStore, FileRef, verify
from tasks.training.epoch_choice import best_epoch_index

SUFFIX = ".npz"
# The three lists of a state (jax_steps.State), in order; each array's key is part + index.
PARTS = ("trainable", "non_trainable", "optimizer")

Arrays = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]


def save_state(store: ArtifactStore, arrays: Arrays) -> FileRef:
    """Store one member's arrays as an uncompressed ``.npz`` (written atomically, by digest)."""
    named = {
        f"{part}{index:04d}": np.asarray(value)
        for part, values in zip(PARTS, arrays, strict=True)
        for index, value in enumerate(values)
    }
    buffer = io.BytesIO()
    # A fixed timestamp on every member file, so equal arrays give equal bytes (np.savez
    # stamps the current time, which would make reruns' files differ for nothing).
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, value in named.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w") as handle:
                np.lib.format.write_array(handle, value, allow_pickle=False)
    return store.put_bytes(buffer.getvalue(), SUFFIX)


def load_state(ref: FileRef) -> Arrays:
    """The arrays of a verified state file (``ArtifactError`` if it is missing or altered)."""
    path = verify(ref)
    lists: Arrays = ([], [], [])
    with np.load(path, allow_pickle=False) as archive:
        for name in sorted(archive.files):
            part, index = name[:-4], int(name[-4:])
            if part not in PARTS:
                raise ArtifactError(f"resume state {path} holds an unknown array {name!r}")
            values = lists[PARTS.index(part)]
            if index != len(values):
                raise ArtifactError(f"resume state {path} lacks array {part}{len(values):04d}")
            values.append(archive[name])
    return lists


def needed_epochs(history: Sequence[EpochRecord]) -> set[int]:
    """The epochs whose states must stay: the last, the one before, and the best so far.

    The best so far is the epoch ``select_best_epoch`` will choose if no later one beats it
    (its ``.keras`` is written from its state at the end). The one before the last stays
    until the next epoch: a group's members journal one after the other, and a kill between
    two journal writes leaves some members one epoch behind the others, resuming from it.
    """
    if not history:
        return set()
    needed = {record.epoch for record in history[-2:]}
    # No finite validation loss yet (TrainingError): no best to keep.
    with contextlib.suppress(TrainingError):
        needed.add(history[best_epoch_index(history)].epoch)
    return needed


def delete_states(store: ArtifactStore, states: Sequence[FileRef], keep: set[str]) -> None:
    """Delete the store's own state files, except the paths in ``keep`` (still referenced)."""
    for state in states:
        path = Path(state.path)
        if state.path not in keep and path.parent.parent == store.objects:
            path.unlink(missing_ok=True)
