"""What bikeflow may replace: the marker it leaves in what it writes (no Prefect, no numpy).

Every folder bikeflow publishes holds a small JSON file, ``.bikeflow-output``, saying what
made it and when. Every single file it writes (the batch prediction CSV) gets a sidecar
beside it, ``.<name>.bikeflow-output``, that also records the file's sha256. An existing
folder is replaced only if it holds the marker (or is empty: nothing in it to lose); an
existing file only if its sidecar records the digest it has now, so a file the user put there,
or edited since bikeflow wrote it, is the user's and is never replaced.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

MARKER = ".bikeflow-output"
_MADE_BY = "bikeflow"


def marker_bytes(kind: str, sha256: str | None = None) -> bytes:
    """The marker's content: who made the folder (or file), what it is, when."""
    record: dict[str, str] = {
        "made_by": _MADE_BY,
        "kind": kind,
        "written_at": datetime.now(UTC).isoformat(),
    }
    if sha256 is not None:
        record["sha256"] = sha256
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8")


def sidecar_path(path: Path) -> Path:
    """Where the marker of a single file bikeflow wrote lives: beside it, hidden."""
    return path.with_name(f".{path.name}{MARKER}")


def _read_marker(path: Path) -> dict[str, object] | None:
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("made_by") != _MADE_BY:
        return None
    return record


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _place_refusal(path: Path, folder: bool) -> str | None:
    """Why a folder (or a file) cannot stand at ``path``: a file above it, or the other kind."""
    # A file where a parent folder should be: mkdir would fail half-way through the run.
    for ancestor in path.parents:
        if ancestor.exists() and not ancestor.is_dir():
            return f"{ancestor} is an existing file, not a folder"
    if path.exists() and path.is_dir() != folder:
        found, wanted = ("folder", "file") if path.is_dir() else ("file", "folder")
        return f"it is an existing {found}, not a {wanted}"
    return None


def folder_refusal(path: Path) -> str | None:
    """Why a resolved path may not be replaced by a folder bikeflow publishes (None: it may)."""
    refusal = _place_refusal(path, folder=True)
    if refusal is not None or not path.exists():
        return refusal
    if _read_marker(path / MARKER) is not None:
        return None
    try:
        empty = not any(path.iterdir())
    except OSError as error:
        return f"it cannot be listed ({error.strerror})"
    if empty:
        return None
    return f"it already exists and bikeflow did not make it (there is no {MARKER} inside)"


def file_refusal(path: Path) -> str | None:
    """Why a resolved path may not be replaced by a file bikeflow writes (None: it may)."""
    refusal = _place_refusal(path, folder=False)
    if refusal is not None or not path.exists():
        return refusal
    record = _read_marker(sidecar_path(path))
    if record is None:
        return (
            f"it already exists and bikeflow did not write it "
            f"(there is no {sidecar_path(path).name} beside it)"
        )
    try:
        if record.get("sha256") == _file_digest(path):
            return None
    except OSError as error:
        return f"it cannot be read ({error.strerror})"
    return "it was changed since bikeflow wrote it (its sha256 no longer matches)"
