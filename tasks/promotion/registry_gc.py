"""Which registry versions ``bikeflow gc`` may delete: never the champion, the previous champion,
a pinned version, the newest ``keep_versions`` or one younger than the grace period.

Read defensively: a version, decision or pin that cannot be parsed keeps its version (and a
pointer that cannot be read keeps them all). No Prefect (``bikeflow gc`` answers quickly).
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tasks.promotion.registry import POINTER_FILE, VERSION_FILE, Registry
from tasks.storage.gc import Garbage

PIN_FILES = ("pins.json", "pinned.json")


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def protected_versions(registry: Registry) -> set[str] | None:
    """The champion, the previous champion and pinned versions (None: keep everything)."""
    protected: set[str] = set()
    pointer = registry.root / POINTER_FILE
    if pointer.exists():
        content = _read(pointer)
        if not isinstance(content, dict) or not isinstance(content.get("version"), str):
            return None
        protected.add(content["version"])
    # The previous champion: the one before the current in the decisions' order.
    champions: list[str] = []
    decisions = sorted(registry.decisions.glob("*.json")) if registry.decisions.is_dir() else []
    for path in decisions:  # named by time, so sorted by name is in order
        decision = _read(path)
        if not isinstance(decision, dict) or not isinstance(decision.get("champion_after"), str):
            return None
        if not champions or champions[-1] != decision["champion_after"]:
            champions.append(decision["champion_after"])
    protected |= set(champions[-2:])
    for name in PIN_FILES:
        pins = _read(registry.root / name)
        if isinstance(pins, dict):
            pins = pins.get("pinned", pins.get("versions", list(pins)))
        if isinstance(pins, list):
            protected |= {str(pin) for pin in pins}
    return protected


def plan_registry_gc(
    registry: Registry, keep_versions: int = 5, grace_seconds: float = 86_400.0
) -> list[Garbage]:
    """The version folders gc would delete (deletes nothing)."""
    if not registry.versions.is_dir():
        return []
    protected = protected_versions(registry)
    if protected is None:
        return []
    dated: list[tuple[float, Path]] = []
    for folder in registry.versions.iterdir():
        if not folder.is_dir() or folder.name.startswith("."):
            continue  # a staging folder: a registration under way
        record = _read(folder / VERSION_FILE)
        if not isinstance(record, dict) or record.get("pinned"):
            continue  # unreadable, or pinned in its own record: kept
        files = record.get("files")
        made = {VERSION_FILE, *files} if isinstance(files, dict) else set()
        if {path.name for path in folder.iterdir()} - made:
            continue  # holds a file bikeflow did not write there: not ours to delete
        try:
            when = datetime.fromisoformat(str(record["registered_at"])).timestamp()
        except (KeyError, ValueError):
            continue
        dated.append((when, folder))
    dated.sort(reverse=True)
    young = time.time() - grace_seconds
    return [
        Garbage("registry versions", folder, _folder_size(folder))
        for index, (when, folder) in enumerate(dated)
        if index >= keep_versions and when < young and folder.name not in protected
    ]


def apply_registry_gc(registry: Registry, garbage: list[Garbage]) -> int:
    """Delete the planned versions under the registry's lock, re-checking each; bytes freed."""
    freed = 0
    with registry.locked():
        protected = protected_versions(registry)
        if protected is None:
            return 0
        for item in garbage:
            if item.path.name in protected or item.path.parent != registry.versions:
                continue  # promoted or pinned since the plan was made
            shutil.rmtree(item.path, ignore_errors=True)
            freed += item.size
    return freed
