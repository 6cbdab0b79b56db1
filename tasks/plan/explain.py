"""Why a step will run: the differences between its key's material and the nearest cached key's.

The key parts are kept in ``.keys/`` beside the records (``tasks.storage.keys.KEY_INDEX``); the
differences are named in words a user can act on: the source's digest, a parameter, a module's
file, a library's version (``tensorflow 2.21.0 -> 2.22.0``), an upstream step's output.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.storage.keys import Records


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            if key == "__model__":
                continue
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return json.dumps(value) if isinstance(value, str) else str(value)


def _is_parameter(inputs: dict[str, Any], name: str) -> bool:
    """A plain value or a config model, not an upstream step's output (a descriptor)."""
    value = inputs.get(name)
    if isinstance(value, dict):
        return str(value.get("__model__", "")).endswith("Config")
    return True


def _code_reason(path: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """A module of the step's code closure: newly imported, no longer imported, or changed."""
    from tasks.storage.code_digests import module_path

    module = path[len("code.") :]
    try:
        name = module_path(module)
    except ValueError:
        name = module
    if path not in before:
        return f"code: {name} is newly imported"
    if path not in after:
        return f"code: {name} is no longer imported"
    return f"code changed: {name}"


def _library_reason(path: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """A library the step's result depends on: upgraded, downgraded, or newly recorded."""
    from tasks.storage.library_versions import describe_change

    return describe_change(path[len("libraries.") :], before.get(path), after.get(path))


def _reason(path: str, was: Any, now: Any) -> str:
    """One differing key part that is neither code nor a step's input, in words."""
    if path == "format":
        return f"the cache format changed ({was} -> {now})"
    if path == "source" or path.startswith("source["):
        return f"the source's digest changed ({_short(was)} -> {_short(now)})"
    if path == "store":
        return f"store_root changed ({was} -> {now})"
    return f"{path} changed ({_short(was)} -> {_short(now)})"


def explain(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Name, in words a user can act on, what differs between two keys' material."""
    before, after = _flatten(old), _flatten(new)
    reasons: list[str] = []
    digests: list[str] = []
    for path in sorted(set(before) | set(after)):
        if before.get(path, None) == after.get(path, None) and (path in before) == (path in after):
            continue
        was, now = before.get(path, "(none)"), after.get(path, "(none)")
        if path.startswith("code."):
            reasons.append(_code_reason(path, before, after))
            continue
        if path.startswith("libraries."):
            reasons.append(_library_reason(path, before, after))
            continue
        if path.startswith("inputs."):
            name = path[len("inputs.") :]
            if _is_parameter(new.get("inputs", {}), name.split(".")[0].split("[")[0]):
                reasons.append(f"a parameter changed: {name} {_short(was)} -> {_short(now)}")
            elif name.endswith(".sha256"):
                # An upstream step's output (a descriptor): its digest says it all.
                digests.append(name)
            continue
        reasons.append(_reason(path, was, now))
    if digests:
        shown = ", ".join(digests[:3]) + (
            f" and {len(digests) - 3} more" if len(digests) > 3 else ""
        )
        reasons.append(f"an input artifact differs from the cached run's: {shown}")
    return reasons


def _index_entries(records: Records, task_name: str) -> list[dict[str, Any]]:
    from tasks.storage.keys import KEY_INDEX

    if records.folder is None or not (records.folder / KEY_INDEX / task_name).is_dir():
        return []
    entries = []
    for path in (records.folder / KEY_INDEX / task_name).glob("*.json"):
        try:
            entries.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return entries


def nearest_reasons(records: Records, material: dict[str, Any]) -> list[str]:
    """Why a key has no record: its differences from the nearest key that has one."""
    task_name = str(material["task"])
    best: tuple[int, list[str]] | None = None
    for entry in _index_entries(records, task_name):
        if not records.exists(entry["key"]):
            continue
        reasons = explain(material, entry["material"])
        distance = len(_flatten(material).items() ^ _flatten(entry["material"]).items())
        if best is None or distance < best[0]:
            best = (distance, reasons)
    if best is None:
        return ["no cached run of this step yet"]
    return best[1] or ["no record under this key (the nearest cached run has the same key parts)"]
