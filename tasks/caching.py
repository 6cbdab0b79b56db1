"""Prefect cache policies keyed on artifact digests, step parameters and step code.

Prefect's DEFAULT policy includes the run id, so it never hits across runs, and INPUTS on a
path hashes the string rather than the file. ``ArtifactCache`` hashes what a step really
depends on: the descriptors it receives (which carry sha256 digests), the parameters passed
to it, and the source of the modules that implement it. Before it lets Prefect reuse a cached
result it checks that every artifact the result refers to is still intact; if one was
deleted or altered, it moves to a fresh key so the step runs again and rebuilds it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger
from pydantic import BaseModel

from tasks.store import ArrayRef, FileRef, Ref, is_intact

# Bump to invalidate every cached step at once (e.g. after changing the descriptor format).
CACHE_FORMAT = 1
_MAX_REBUILDS = 64


@cache
def module_digest(module: str) -> str:
    """Return the sha256 of a module's source file, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot locate the source of module {module!r}")
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


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


def _chain(key: str) -> str:
    return hashlib.sha256(f"{key}:rebuilt".encode()).hexdigest()


@dataclass
class ArtifactCache(CachePolicy):
    """Cache on input digests + parameters + the code of the listed modules."""

    modules: tuple[str, ...] = field(default_factory=tuple)

    def key_material(
        self, task_ctx: TaskRunContext, inputs: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Return everything the key is a hash of (None: do not cache); subclasses add to it."""
        task = task_ctx.task
        modules = sorted({task.fn.__module__, "tasks.store", "tasks.caching", *self.modules})
        return {
            "format": CACHE_FORMAT,
            "task": task.name,
            "code": {name: module_digest(name) for name in modules},
            "inputs": canonical(inputs),
        }

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        material = self.key_material(task_ctx, inputs)
        if material is None:
            return None
        key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
        store = task_ctx.result_store
        if store is None:
            return key
        logger = get_run_logger()
        for _ in range(_MAX_REBUILDS):
            if not store.exists(key):
                return key
            try:
                cached = store.read(key).result
            except Exception:  # an unreadable record is as good as a missing one
                logger.warning("cached record %s is unreadable; rebuilding", key)
                key = _chain(key)
                continue
            broken = [ref.path for ref in iter_refs(cached) if not is_intact(ref)]
            if not broken:
                return key
            logger.warning(
                "cached result refers to missing or altered artifacts (%s); rebuilding",
                ", ".join(broken),
            )
            key = _chain(key)
        return key
