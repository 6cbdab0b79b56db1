"""Atomic writes: a file swapped in whole by a rename, and write failures as the user's error.

The lowest layer of the storage package: the artifact store, the journals and the published
outputs all write through here, so a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from schemas.errors import ArtifactError


def write_error(place: Path, error: OSError, outcome: str = "nothing was kept") -> ArtifactError:
    """Turn a failed write (disk full, read-only, no permission) into the user's error."""
    reason = error.strerror or str(error)
    return ArtifactError(f"could not write to {place}: {reason} ({outcome})")


def fsync_directory(directory: Path) -> None:
    """Flush a folder's entries to disk (after a rename into it)."""
    # Makes the rename itself durable; some filesystems refuse to open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write a file through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise write_error(path, error) from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
