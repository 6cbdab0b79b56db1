"""Journals: the store's named JSON files that change in place (e.g. a training's epochs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.errors import ArtifactError
from tasks.storage.atomic import write_file_atomic
from tasks.storage.store import ArtifactStore


def _journal_path(root: Path, name: str) -> Path:
    if not name or not name.isalnum():
        raise ArtifactError(f"invalid journal name {name!r}")
    return root / "journals" / f"{name}.json"


def read_journal(store: ArtifactStore, name: str) -> Any | None:
    """Return a named, mutable JSON journal of the store (None if missing or unreadable).

    Journals are the one kind of store file that changes in place (e.g. the epochs a training
    has completed); each write replaces the whole file atomically.
    """
    path = _journal_path(store.root, name)
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def write_journal(store: ArtifactStore, name: str, content: Any) -> None:
    """Replace a named journal atomically (a reader sees the old content or the new)."""
    text = json.dumps(content, sort_keys=True, indent=1, allow_nan=True)
    write_file_atomic(_journal_path(store.root, name), text.encode("utf-8"))
