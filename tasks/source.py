"""Digests of our own source code, for cache keys and journal names (no Prefect imported)."""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path


@cache
def module_digest(module: str) -> str:
    """Return the sha256 of a module's source file, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot locate the source of module {module!r}")
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()
