"""Garbage collection of the store: unreferenced objects, old cache records, stale journals.

No Prefect and no pipeline stage: ``bikeflow gc`` and the ``gc-weekly`` flow call it with the
folder of Prefect's result records. What stays:

- every record (and every object it names) used by the last ``keep_runs`` runs: a record's
  last use is the time of its key file under ``.keys/`` (``keys.record_material`` touches it
  whenever a run resolves the key, cached or not); a run's start is the last use of one of
  the flow's first step's keys (``ingest_source``);
- every object a kept journal names (a training that is running or was killed: its
  checkpoints and, on JAX, its resume states) and anything younger than ``grace_seconds``;
- everything while a flow holds a cache-key lock, except old records nobody holds: no
  unreferenced object and no temporary file is deleted then (a running step's outputs are
  unreferenced until its record is written).

A deleted artifact's record goes with it, so the next run recomputes the step.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.storage.keys import KEY_INDEX
from tasks.storage.locks import flock_is_held

# The flow's first cached step: each run resolves one of its keys first (its run start).
RUN_START_TASK = "ingest_source"
LOCKS = ".locks"


@dataclass(frozen=True)
class Garbage:
    """One thing gc would delete: its kind (checkpoints, arrays, ...), path and size."""

    kind: str
    path: Path
    size: int
    # A record's artifact paths and its key file (kept if a run uses the record meanwhile).
    refs: frozenset[str] = frozenset()
    key_file: Path | None = None


@dataclass
class GcPlan:
    """What a gc pass would delete, and what it kept because a flow was running."""

    garbage: list[Garbage] = field(default_factory=list)
    held_locks: int = 0
    # Records this reader could not read: what they name is unknown, so no object is "unreferenced".
    unreadable: int = 0
    planned_at: float = field(default_factory=time.time)

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """Per kind: (how many, bytes)."""
        totals: dict[str, tuple[int, int]] = {}
        for item in self.garbage:
            count, size = totals.get(item.kind, (0, 0))
            totals[item.kind] = (count + 1, size + item.size)
        return dict(sorted(totals.items()))

    def total_bytes(self) -> int:
        """Bytes the plan frees."""
        return sum(item.size for item in self.garbage)


def object_kind(path: Path) -> str:
    """The kind a store object is reported under, by its suffix."""
    kinds = {".keras": "checkpoints", ".npy": "arrays", ".json": "json", ".csv": "tables"}
    kinds |= {".png": "figures", ".zip": "downloads", ".md": "model cards"}
    kinds |= {".npz": "resume states"}  # a JAX training's (tasks.training.resume_state)
    return kinds.get(path.suffix, "other objects")


def referenced_paths(value: Any) -> Iterator[str]:
    """Every artifact path inside a decoded record or journal (a dict with path and sha256)."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str) and isinstance(value.get("sha256"), str):
            yield value["path"]
        for item in value.values():
            yield from referenced_paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from referenced_paths(item)


def _record_refs(path: Path) -> set[str] | None:
    """The artifact paths a result record names (None: not a readable JSON record)."""
    try:
        record = json.loads(path.read_bytes())
        result = record["result"]
        return set(referenced_paths(json.loads(result) if isinstance(result, str) else result))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_is_held(records_folder: Path, key: str) -> bool:
    """Tell whether a process holds the cache-key flock (``cache_policy.FlockLockManager``)."""
    return flock_is_held(records_folder / LOCKS / f"{key}.lock")


def _held_locks(records_folder: Path) -> int:
    folder = records_folder / LOCKS
    if not folder.is_dir():
        return 0
    return sum(lock_is_held(records_folder, path.stem) for path in folder.glob("*.lock"))


def _last_uses(records_folder: Path) -> dict[str, tuple[str, float]]:
    """Each key's (task, last use) from the key index."""
    uses: dict[str, tuple[str, float]] = {}
    index = records_folder / KEY_INDEX
    if index.is_dir():
        for path in index.glob("*/*.json"):
            uses[path.stem] = (path.parent.name, path.stat().st_mtime)
    return uses


def run_cutoff(records_folder: Path, keep_runs: int) -> float:
    """The start of the ``keep_runs``-th latest run (records used since then are kept)."""
    starts = sorted(
        (when for task, when in _last_uses(records_folder).values() if task == RUN_START_TASK),
        reverse=True,
    )
    if keep_runs <= 0:
        return float("inf")
    return starts[min(keep_runs, len(starts)) - 1] if starts else float("-inf")


def plan_gc(
    store_root: Path,
    records_folder: Path | None,
    keep_runs: int = 3,
    grace_seconds: float = 86_400.0,
    now: float | None = None,
) -> GcPlan:
    """What a gc pass would delete from the store and the records folder (deletes nothing)."""
    now = time.time() if now is None else now
    young = now - grace_seconds
    plan = GcPlan(planned_at=now)
    kept: set[str] = set()
    if records_folder is not None and records_folder.is_dir():
        plan.held_locks = _held_locks(records_folder)
        kept |= _plan_records(plan, records_folder, keep_runs, young, now)
    journals = store_root / "journals"
    if journals.is_dir():
        cutoff = min(young, _journal_cutoff(records_folder, keep_runs))
        for path in sorted(journals.glob("*.json")):
            if not path.stem.isalnum():
                continue  # journal names are hex digests (tasks.storage.journal)
            stat = path.stat()
            if stat.st_mtime >= cutoff or plan.held_locks:
                kept |= _journal_refs(path)
            else:
                plan.garbage.append(Garbage("journals", path, stat.st_size))
    _plan_objects(plan, store_root, kept, young, now)
    return plan


def _journal_cutoff(records_folder: Path | None, keep_runs: int) -> float:
    if records_folder is None or not records_folder.is_dir():
        return float("inf")  # no runs known: the grace period alone keeps a journal
    return run_cutoff(records_folder, keep_runs)


def _journal_refs(path: Path) -> set[str]:
    try:
        return set(referenced_paths(json.loads(path.read_bytes())))
    except (OSError, ValueError):
        return set()


def _plan_records(
    plan: GcPlan, records_folder: Path, keep_runs: int, young: float, now: float
) -> set[str]:
    """Add old records to the plan; return the artifact paths the kept ones name."""
    uses = _last_uses(records_folder)
    cutoff = run_cutoff(records_folder, keep_runs)
    kept: set[str] = set()
    for path in sorted(records_folder.iterdir()):
        if not path.is_file() or len(path.name) != 64 or not path.name.isalnum():
            continue  # Prefect's records are named by their hex key; nothing else is ours
        refs = _record_refs(path)
        if refs is None:
            plan.unreadable += 1
            continue
        task, used = uses.get(path.name, ("", path.stat().st_mtime))
        last = max(used, path.stat().st_mtime)
        if last >= cutoff or last >= young or last > now or lock_is_held(records_folder, path.name):
            kept |= refs
            continue
        index = records_folder / KEY_INDEX / task / f"{path.name}.json"
        key_file = index if task and index.is_file() else None
        size = path.stat().st_size + (index.stat().st_size if key_file else 0)
        plan.garbage.append(Garbage("cache records", path, size, frozenset(refs), key_file))
    return kept


def _plan_objects(plan: GcPlan, store_root: Path, kept: set[str], young: float, now: float) -> None:
    """Add the unreferenced, old objects (and stale temporary files) to the plan."""
    if plan.held_locks or plan.unreadable:
        return  # a running step's outputs are unreferenced until its record is written
    objects = store_root / "objects"
    if objects.is_dir():
        for path in sorted(objects.glob("*/*")):
            stat = path.stat()
            if str(path) in kept or stat.st_mtime >= young or stat.st_mtime > now:
                continue
            if not _is_object_name(path):
                continue  # not named by the store (<sha[:2]>/<sha256><suffix>): not ours
            plan.garbage.append(Garbage(object_kind(path), path, stat.st_size))
    temporary = store_root / "tmp"
    if temporary.is_dir():
        for path in sorted(temporary.iterdir()):
            stat = path.stat()
            if _is_temporary_name(path) and stat.st_mtime < young and stat.st_mtime <= now:
                plan.garbage.append(Garbage("temporary files", path, stat.st_size))


def _is_object_name(path: Path) -> bool:
    digest = path.name.split(".", 1)[0]
    hexdigits = set("0123456789abcdef")
    return (
        path.is_file()
        and len(digest) == 64
        and set(digest) <= hexdigits
        and (path.parent.name == digest[:2])
    )


def _is_temporary_name(path: Path) -> bool:
    # ArtifactStore.temp_path: uuid4().hex and a suffix.
    stem = path.name.split(".", 1)[0]
    return path.is_file() and len(stem) == 32 and set(stem) <= set("0123456789abcdef")


def apply_gc(plan: GcPlan, records_folder: Path | None) -> int:
    """Delete what the plan names, records first (each under its key lock); the bytes freed.

    A record a run used since the plan (its key file touched) stays, and so do its files.
    """
    freed = 0
    spared: set[str] = set()
    # Records before objects: a run that resolves a key meanwhile finds no record and
    # recomputes, rather than a record whose artifacts are gone.
    for item in plan.garbage:
        if item.kind != "cache records" or records_folder is None:
            continue
        if _used_since(item, plan.planned_at) or not _delete_unlocked(records_folder, item):
            spared |= item.refs
            continue
        freed += item.size
    for item in plan.garbage:
        if item.kind == "cache records" or str(item.path) in spared:
            continue
        try:
            item.path.unlink()
        except FileNotFoundError:
            continue
        freed += item.size
    return freed


def _used_since(item: Garbage, moment: float) -> bool:
    try:
        return item.key_file is not None and item.key_file.stat().st_mtime > moment
    except OSError:
        return False


def _delete_unlocked(records_folder: Path, item: Garbage) -> bool:
    """Delete a record (and its key file) holding its key's lock; False if a run holds it."""
    lock = records_folder / LOCKS / f"{item.path.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    try:
        item.path.unlink(missing_ok=True)
        if item.key_file is not None:
            item.key_file.unlink(missing_ok=True)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return True
