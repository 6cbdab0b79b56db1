"""Published outputs: a folder or a file that bikeflow owns, swapped in whole.

Outside the store, so each output carries the ownership marker (schemas/ownership.py) that
lets a later run replace it, and nothing else, without asking.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from schemas.ownership import MARKER, marker_bytes, sidecar_path
from schemas.paths import check_output_file, check_output_folder
from tasks.storage.atomic import fsync_directory, write_error, write_file_atomic
from tasks.storage.store import Ref, verify


def swap_in_folder(staging: Path, destination: Path, field: str) -> None:
    """Rename a finished folder into place, retiring the bikeflow folder it replaces."""
    parent = destination.parent
    retired: Path | None = None
    if destination.exists():
        # Again at the last moment: the folder may have appeared since the work began.
        check_output_folder(str(destination), field)
        retired = parent / f".{destination.name}.{uuid.uuid4().hex}.old"
        os.replace(destination, retired)
    os.replace(staging, destination)
    fsync_directory(parent)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def publish_directory(
    destination: Path, files: dict[str, Ref | bytes], field: str = "output folder"
) -> None:
    """Build a directory of named files beside ``destination``, then swap it into place.

    A failure part-way leaves ``destination`` as it was; a reader sees the old directory or
    the new one, never a mix. The new folder holds the ownership marker; an existing folder
    without it is refused (``PathRefusedError``, naming ``field``), checked before any file is
    copied and again right before the swap.
    """
    destination = destination.resolve()
    if MARKER in files:
        raise ValueError(f"{MARKER} is the ownership marker, not a published file")
    check_output_folder(str(destination), field)
    parent = destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{destination.name}.{uuid.uuid4().hex}.staging"
    staging.mkdir()
    try:
        for name, content in files.items():
            target = staging / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(verify(content), target)
        (staging / MARKER).write_bytes(marker_bytes(field))
        swap_in_folder(staging, destination, field)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise write_error(destination, error, "the previous folder is unchanged") from error
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_file(path: Path, data: bytes, field: str = "output file") -> None:
    """Write a file whole (temporary name + rename) with its ownership sidecar beside it.

    An existing file is replaced only if its sidecar says bikeflow wrote it as it is now
    (``PathRefusedError``, naming ``field``, otherwise); never a folder.
    """
    path = path.resolve()
    check_output_file(str(path), field)
    write_file_atomic(path, data)
    digest = hashlib.sha256(data).hexdigest()
    write_file_atomic(sidecar_path(path), marker_bytes(field, digest))
