"""Prefect's local result records, found and read without importing Prefect (for ``bikeflow plan``).

Importing Prefect takes seconds, and ``plan`` should answer in about one. On the embedded
default the records are JSON files under Prefect's local storage path, one per cache key,
written by ``ResultStore`` with the task's JSON serializer. ``local_result_files`` returns
them only when Prefect's settings can be known from the environment alone; whenever another
source could change them (an API, a storage block, a ``.env``, ``prefect.toml`` or
``[tool.prefect]`` file, a profile that sets them) it returns None and the caller asks Prefect
itself. tests/tasks/test_result_files.py checks both against Prefect's own answers.
"""

from __future__ import annotations

import importlib
import json
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

# Settings that move or replace the result storage, by every name Prefect reads them under.
_STORAGE_SETTINGS = (
    "PREFECT_API_URL",
    "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK",
    "PREFECT_DEFAULT_RESULT_STORAGE_BLOCK",
)
_LOCATION_SETTINGS = ("PREFECT_RESULTS_LOCAL_STORAGE_PATH", "PREFECT_LOCAL_STORAGE_PATH")
_SETTINGS_FILES = (".env", "prefect.toml")
# Prefect's JSON serializer as the tasks use it (``result_serializer="json"``).
_JSON_SERIALIZER = {
    "type": "json",
    "jsonlib": "json",
    "object_encoder": "prefect.serializers.prefect_json_object_encoder",
    "object_decoder": "prefect.serializers.prefect_json_object_decoder",
}


class UnknownRecordFormatError(Exception):
    """A record this reader does not decode as Prefect would: ask Prefect instead."""


def _home(environ: dict[str, str]) -> Path:
    return Path(environ.get("PREFECT_HOME") or "~/.prefect").expanduser()


def _profile_settings(environ: dict[str, str]) -> dict[str, Any] | None:
    """The active profile's settings (empty: no profiles file); None if it cannot be read."""
    # Prefect substitutes $PREFECT_HOME in this one setting.
    named = environ.get("PREFECT_PROFILES_PATH", "").replace("$PREFECT_HOME", str(_home(environ)))
    path = Path(named).expanduser() if named else _home(environ) / "profiles.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    active = environ.get("PREFECT_PROFILE") or data.get("active") or "ephemeral"
    profile = data.get("profiles", {}).get(active, {})
    return profile if isinstance(profile, dict) else None


def local_result_folder(
    environ: dict[str, str] | None = None, cwd: Path | None = None
) -> Path | None:
    """Prefect's local result storage folder, when the environment alone decides it, else None."""
    environ = dict(os.environ if environ is None else environ)
    cwd = Path.cwd() if cwd is None else cwd
    if any(environ.get(name) for name in _STORAGE_SETTINGS):
        return None
    if any((cwd / name).exists() for name in _SETTINGS_FILES):
        return None
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file() and "tool.prefect" in pyproject.read_text(errors="replace"):
        return None
    profile = _profile_settings(environ)
    moved = (*_STORAGE_SETTINGS, *_LOCATION_SETTINGS, "PREFECT_HOME")
    if profile is None or any(name in profile for name in moved):
        return None
    for name in _LOCATION_SETTINGS:  # Prefect's own order of precedence
        if environ.get(name):
            return Path(environ[name]).expanduser().resolve()
    return (_home(environ) / "storage").resolve()


def _decode_object(value: dict[str, Any]) -> Any:
    # What Prefect's ``prefect_json_object_decoder`` does with the objects it encoded.
    if "__class__" not in value:
        return value
    module, _, name = str(value["__class__"]).rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return value
    return TypeAdapter(cls).validate_python(value["data"])


@dataclass(frozen=True)
class ResultFiles:
    """The records in one local folder, as ``tasks.storage.keys.Records`` (what plan reads)."""

    folder: Path

    def _record(self, key: str) -> dict[str, Any] | None:
        """The record under ``key`` (None: no file); one this reader cannot decode raises
        ``UnknownRecordFormatError``, from ``exists`` too: ``resolve_key`` counts errors in
        reading as an unreadable record, and this one must reach plan, to ask Prefect."""
        path = self.folder / key
        if not path.is_file():
            return None
        record = json.loads(path.read_bytes())
        if not isinstance(record, dict) or not isinstance(record.get("metadata"), dict):
            raise ValueError(f"{path} is not a result record")
        serializer = record["metadata"].get("serializer", {})
        if {name: serializer.get(name) for name in _JSON_SERIALIZER} != _JSON_SERIALIZER or (
            serializer.get("loads_kwargs") or serializer.get("dumps_kwargs")
        ):
            raise UnknownRecordFormatError(f"record {key[:12]}: serializer {serializer!r}")
        if not isinstance(record.get("result"), str):
            raise UnknownRecordFormatError(f"record {key[:12]}: result is not serialized JSON")
        return record

    def exists(self, key: str) -> bool:
        """Tell whether an unexpired record is stored under ``key`` (Prefect's ``exists``)."""
        try:
            record = self._record(key)
        except (OSError, ValueError):
            return False
        if record is None:
            return False
        expiration = record["metadata"].get("expiration")
        return expiration is None or datetime.fromisoformat(expiration) > datetime.now(UTC)

    def read_result(self, key: str) -> Any:
        """The record's result, decoded into the classes it was written from."""
        record = self._record(key)
        if record is None:
            raise FileNotFoundError(self.folder / key)
        return json.loads(record["result"], object_hook=_decode_object)


def local_result_files() -> ResultFiles | None:
    """The records of the embedded default as files, or None when Prefect must be asked."""
    folder = local_result_folder()
    return None if folder is None else ResultFiles(folder)
