"""Cache keys and the walk over cached records: the part of caching that needs no Prefect.

A step's key is the sha256 of its key material: its name, the digests of its code closure,
the versions of the libraries that shape its result (``tasks.storage.library_versions``) and its
inputs in canonical JSON (descriptors carry their artifacts' digests). The flow's
cache policy (``tasks.storage.cache_policy``) and ``bikeflow plan`` both build keys and follow the
rebuild chain here, over Prefect's result records seen through ``Records``: the flow through
Prefect's own result store, plan through ``tasks.plan.result_files`` without importing Prefect
(seconds on every call). They cannot disagree on a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from tasks.storage.atomic import write_file_atomic
from tasks.storage.code_digests import closure_digests
from tasks.storage.library_versions import library_versions
from tasks.storage.store import ArrayRef, FileRef, Ref, is_intact

# Bump to invalidate every cached step at once (e.g. after changing the descriptor format).
# 3: the key material names the library versions.
CACHE_FORMAT = 3
_MAX_REBUILDS = 64


def canonical(value: Any) -> Any:
    """Turn a step's inputs into plain JSON data with a stable form."""
    if isinstance(value, BaseModel):
        return {"__model__": type(value).__name__, **value.model_dump(mode="json")}
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot build a cache key from a {type(value).__name__}")


def iter_refs(value: Any) -> Iterator[Ref]:
    """Yield every artifact descriptor inside a task result."""
    if isinstance(value, ArrayRef | FileRef):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from iter_refs(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_refs(item)


class Records(Protocol):
    """Prefect's cached result records, by key."""

    @property
    def folder(self) -> Path | None:
        """The local folder the records are files in (None: they are not local files)."""

    def exists(self, key: str) -> bool:
        """Tell whether a usable (unexpired) record is stored under ``key``."""

    def read_result(self, key: str) -> Any:
        """The result kept in the record under ``key`` (raises if it cannot be read)."""


def _chain(key: str) -> str:
    return hashlib.sha256(f"{key}:rebuilt".encode()).hexdigest()


def material_key(material: dict[str, Any]) -> str:
    """The cache key: the sha256 of the key material's canonical JSON."""
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Resolved:
    """Where a key's usable record is (or would be written), and why earlier ones were passed.

    ``result`` is the usable record's result; ``stale`` the result of the first record that
    was passed over because its artifacts are broken (what a rebuild is expected to redo).
    """

    key: str
    problems: tuple[str, ...] = ()
    exists: bool = False
    result: Any = None
    stale: Any = None


def resolve_key(records: Records, key: str) -> Resolved:
    """Follow the rebuild chain from ``key`` past unreadable records and broken artifacts.

    The flow (``compute_key``) and ``bikeflow plan`` both call this, so they agree on which
    record a step would reuse, or why it must run.
    """
    problems: list[str] = []
    stale: Any = None
    for _ in range(_MAX_REBUILDS):
        if not records.exists(key):
            return Resolved(key, tuple(problems), stale=stale)
        try:
            cached = records.read_result(key)
        except Exception:  # an unreadable record is as good as a missing one
            problems.append(f"cached record {key[:12]} is unreadable")
            key = _chain(key)
            continue
        broken = [ref.path for ref in iter_refs(cached) if not is_intact(ref)]
        if not broken:
            return Resolved(key, tuple(problems), exists=True, result=cached, stale=stale)
        problems.append(f"cached artifact missing or corrupt: {', '.join(broken)}")
        if stale is None:
            stale = cached
        key = _chain(key)
    return Resolved(key, tuple(problems), stale=stale)


KEY_INDEX = ".keys"


def record_material(records: Records, key: str, material: dict[str, Any]) -> None:
    """Keep the parts of a key (inputs, parameters, code digests) so plan can diff against it."""
    if records.folder is None:
        return
    path = records.folder / KEY_INDEX / str(material["task"]) / f"{key}.json"
    if not path.exists():
        write_file_atomic(path, json.dumps({"key": key, "material": material}).encode())
    else:
        # The key's last use: bikeflow gc keeps the records recent runs used.
        with contextlib.suppress(OSError):
            os.utime(path)


def step_material(
    task_name: str,
    module: str,
    inputs: dict[str, Any],
    modules: tuple[str, ...] = (),
    libraries: tuple[str, ...] = (),
) -> dict[str, Any]:
    """What a step's key is a hash of: its name, code closure, library versions and inputs."""
    return {
        "format": CACHE_FORMAT,
        "task": task_name,
        "code": closure_digests(module, *modules),
        # An upgrade of one of these reruns the step (plan names it: tasks.plan.explain).
        "libraries": library_versions(libraries),
        "inputs": canonical(inputs),
    }
