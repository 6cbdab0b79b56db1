"""The one rule for every path a run writes, as types the config models share.

``OutputFolder`` is a folder replaced whole (retrain's ``output_dir``, the sweep's
``leaderboard_dir``), ``OutputFile`` a file replaced whole (the prediction's ``output_csv``),
``DataFolder`` a folder written into and never replaced (``store_root``, ``registry_root``).
Each resolves (``~``, ``..``, symlinks) under ``$BIKEFLOW_ROOTS``; an output is never a root,
the working folder or a folder that holds either, and an existing one is replaced only if
bikeflow made it (``schemas/ownership.py``). A new path field just uses one of the types.

The same checks run again at flow start (``tasks/preflight.py``) and right before a folder or
file is swapped in (``tasks/storage/store.py``), so a folder that appears meanwhile is still safe.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ValidationInfo

from schemas.errors import PathRefusedError
from schemas.ownership import file_refusal, folder_refusal
from schemas.source import LocalSource, TripsSource, parse_source

# The folders that a run's output, store and registry paths must stay under. Set by whoever
# runs the worker, never by a run's parameters: a run from the UI is as trusted as its form.
ROOTS_ENV = "BIKEFLOW_ROOTS"

# Validation context of a config whose output_dir this run does not write (a sweep's base and
# trials): that field is then only checked against the roots, not on disk.
OUTPUT_NOT_WRITTEN = {"unwritten": ("output_dir",)}


def allowed_roots() -> tuple[Path, ...]:
    """The configured roots: ``$BIKEFLOW_ROOTS`` (os.pathsep-separated), else the working folder."""
    configured = [part for part in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if part]
    return tuple(Path(part).expanduser().resolve() for part in configured or [os.getcwd()])


def resolve(value: str, field: str) -> Path:
    """The absolute path a path field names (``~``, ``..`` and symlinks resolved)."""
    if "\x00" in value:
        raise PathRefusedError(f"{field}: a path cannot contain a NUL byte")
    return Path(value).expanduser().resolve()


def contained_path(value: str, field: str, strictly_inside: bool = False) -> str:
    """Check that a path resolves (symlinks and ``..`` included) under a configured root."""
    resolved = resolve(value, field)
    roots = allowed_roots()
    for root in roots:
        if resolved == root and not strictly_inside:
            return value
        if resolved != root and resolved.is_relative_to(root):
            return value
    where = " or ".join(str(root) for root in roots)
    inside = "strictly inside" if strictly_inside else "under"
    raise PathRefusedError(
        f"{field}: {value!r} resolves to {resolved}, which is not {inside} {where} "
        f"(the folders allowed by {ROOTS_ENV})"
    )


def _refuse(field: str, path: Path, reason: str) -> PathRefusedError:
    return PathRefusedError(f"{field}: refusing to replace {path}: {reason}")


def check_output_folder(value: str, field: str, on_disk: bool = True) -> str:
    """Refuse a folder to replace whole that is not bikeflow's to replace; return ``value``."""
    path = resolve(value, field)
    working = Path.cwd().resolve()
    if path == working:
        raise _refuse(field, path, "it is the working folder")
    if path in allowed_roots():
        raise _refuse(field, path, f"it is a folder listed in {ROOTS_ENV}, not one inside it")
    contained_path(value, field, strictly_inside=True)
    if working.is_relative_to(path):
        raise _refuse(field, path, "it holds the working folder")
    for root in allowed_roots():
        if root.is_relative_to(path):
            raise _refuse(field, path, f"it holds {root}, a folder listed in {ROOTS_ENV}")
    reason = folder_refusal(path) if on_disk else None
    if reason is not None:
        raise _refuse(field, path, f"{reason}; choose a new folder or move this one away")
    return value


def check_output_file(value: str, field: str) -> str:
    """Refuse a file to replace whole that is not bikeflow's to replace; return ``value``."""
    contained_path(value, field, strictly_inside=True)
    path = resolve(value, field)
    reason = file_refusal(path)
    if reason is not None:
        raise _refuse(field, path, f"{reason}; choose a new file name or move this one away")
    return value


def check_data_folder(value: str, field: str) -> str:
    """Refuse a store or registry root outside the roots or where a file is; return ``value``."""
    contained_path(value, field)
    path = resolve(value, field)
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            raise PathRefusedError(f"{field}: {place} is an existing file, not a folder")
    return value


def check_holds_none(
    field: str, value: str, others: Mapping[str, str], source: str | None = None
) -> None:
    """Refuse an output that is, or holds, the store, the registry or the local source."""
    output = resolve(value, field)
    places = {name: resolve(other, name) for name, other in others.items()}
    parsed = None if source is None else parse_source(source)
    if isinstance(parsed, LocalSource | TripsSource):
        places["source"] = parsed.path
    for name, place in places.items():
        if place == output or place.is_relative_to(output):
            raise _refuse(field, output, f"it holds {name} {place}")


def _written(info: ValidationInfo) -> bool:
    context = info.context if isinstance(info.context, dict) else {}
    return info.field_name not in context.get("unwritten", ())


def _folder(value: str, info: ValidationInfo) -> str:
    return check_output_folder(value, str(info.field_name), on_disk=_written(info))


def _file(value: str, info: ValidationInfo) -> str:
    return check_output_file(value, str(info.field_name))


def _data(value: str, info: ValidationInfo) -> str:
    return check_data_folder(value, str(info.field_name))


OutputFolder = Annotated[str, AfterValidator(_folder)]
OutputFile = Annotated[str, AfterValidator(_file)]
DataFolder = Annotated[str, AfterValidator(_data)]


def check_path_fields(config: BaseModel, unwritten: tuple[str, ...] = ()) -> None:
    """Run every path field's check on its value, defaults included, nested models too.

    Pydantic validates only the values it is given, and a preset or zoo entry resolves a full
    config back to the fields that differ from the defaults, so a default path (``runs/latest``)
    is never checked by validation alone; the flows' first task calls this.
    """
    for name, info in type(config).model_fields.items():
        value = getattr(config, name)
        if isinstance(value, BaseModel):
            check_path_fields(value, unwritten)
            continue
        for item in info.metadata:
            check = getattr(item, "func", None)
            if check is _folder:
                check_output_folder(value, name, on_disk=name not in unwritten)
            elif check is _file:
                check_output_file(value, name)
            elif check is _data:
                check_data_folder(value, name)
