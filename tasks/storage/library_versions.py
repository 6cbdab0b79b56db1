"""The installed versions of the libraries that shape a step's result, for keys and journals.

Read from the installed distributions' metadata (``importlib.metadata``), never by importing the
library: ``bikeflow plan`` builds every key without TensorFlow (seconds saved on each call).
``keras`` stands for Keras, the name of its backend and the backend library's version, since a
backend swap changes every number Keras computes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

# What the trainer's epochs depend on; train_model's cache policy lists the same libraries
# (tests/tasks/storage/test_library_versions.py checks it), and the epoch journal records them.
TRAINING_LIBRARIES = ("tensorflow", "keras", "numpy")
NOT_INSTALLED = "not installed"
KERAS_BACKEND = "keras backend"
# The distributions a library may be installed as, in the order they are looked for.
_DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos")}
# A Keras backend's name and the library it runs on.
_BACKEND_LIBRARIES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
# The backends a training config can choose (training.backend): wherever Keras is listed, their
# libraries' versions are recorded whatever this process's own backend is, since a key built
# here (in the flow, on the environment's backend) may be for a training the config puts on JAX.
TRAINING_BACKEND_LIBRARIES = ("tensorflow", "jax")


@cache
def installed_version(library: str) -> str:
    """The installed version of ``library``, or ``not installed``.

    Cached: a process keeps the version it read first, as it keeps the modules it imported.
    """
    for distribution in _DISTRIBUTIONS.get(library, (library,)):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return NOT_INSTALLED


def keras_backend() -> str:
    """The backend Keras will load, by Keras's own rule, without importing Keras.

    ``KERAS_BACKEND`` if set, else ``backend`` in ``$KERAS_HOME/keras.json`` (``~/.keras``, or
    ``/tmp/.keras`` when the home folder is not writable), else ``tensorflow``.
    """
    chosen = os.environ.get("KERAS_BACKEND")
    if chosen:
        return chosen
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        # Keras's own fallback when the home folder is read-only (a path, not a file made here).
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")  # noqa: S108
    try:
        config: Any = json.loads((Path(home).expanduser() / "keras.json").read_text())
    except (OSError, ValueError):
        return "tensorflow"
    backend = config.get("backend") if isinstance(config, dict) else None
    return backend if isinstance(backend, str) and backend else "tensorflow"


def library_versions(libraries: Iterable[str], backend: str | None = None) -> dict[str, str]:
    """Each library's installed version by name (``keras`` adds its backend and its library).

    ``backend``: the Keras backend the result is computed on (a config's
    ``training.backend``); None reads it from the environment (``keras_backend``). With
    ``keras``, the libraries of every backend a training config can choose are listed too.
    """
    versions: dict[str, str] = {}
    for library in libraries:
        versions[library] = installed_version(library)
        if library == "keras":
            chosen = backend or keras_backend()
            versions[KERAS_BACKEND] = chosen
            others = [_BACKEND_LIBRARIES.get(chosen), *TRAINING_BACKEND_LIBRARIES]
            for other in others:
                if other is not None:
                    versions[other] = installed_version(other)
    return versions


def describe_change(library: str, was: str | None, now: str | None) -> str:
    """One library's change in words: ``tensorflow 2.21.0 -> 2.22.0``."""
    if was is None:
        return f"{library} {now} (not recorded before)"
    if now is None:
        return f"{library} {was} (no longer recorded)"
    return f"{library} {was} -> {now}"


def version_changes(was: dict[str, str], now: dict[str, str]) -> list[str]:
    """The libraries whose versions differ between two records, each in words, by name."""
    return [
        describe_change(library, was.get(library), now.get(library))
        for library in sorted(set(was) | set(now))
        if was.get(library) != now.get(library)
    ]


def resume_refusal(
    content: Any, libraries: Iterable[str], backend: str | None = None
) -> str | None:
    """Why a journal's epochs cannot be resumed here (None: they can, or there are none).

    Epochs trained on other library versions (or another Keras backend, ``backend`` as in
    ``library_versions``) would be continued by different numerics, so a journal written
    under others (or before journals recorded them) is not resumed.
    """
    if not isinstance(content, dict) or not content.get("epochs"):
        return None
    now = library_versions(libraries, backend)
    was = content.get("libraries")
    if was == now:
        return None
    changes = (
        ", ".join(version_changes(was, now))
        if isinstance(was, dict)
        else "the journal records no library versions"
    )
    return (
        f"not resuming the {len(content['epochs'])} journaled epoch(s): they were trained "
        f"with other library versions ({changes}); training this member afresh"
    )
