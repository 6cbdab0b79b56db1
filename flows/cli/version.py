"""``bikeflow --version``: the package's version and those of the libraries that run it.

Read from the installed distributions' metadata (``importlib.metadata``): nothing heavy is
imported, so the answer comes in a fraction of a second even where TensorFlow takes seconds.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# The distributions whose versions shape a run, in the order they are printed.
LIBRARIES = ("prefect", "keras", "tensorflow")


def installed_version(distribution: str) -> str:
    """The installed version of a distribution, or ``not installed``."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def keras_backend() -> str:
    """The backend Keras will load, found as Keras finds it, without importing Keras.

    ``KERAS_BACKEND`` wins; else the ``backend`` of ``$KERAS_HOME/keras.json`` (default
    ``~/.keras``); else Keras' default, TensorFlow.
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        settings = json.loads((home / "keras.json").read_text())
    except (OSError, ValueError):
        return "tensorflow"
    backend = settings.get("backend") if isinstance(settings, dict) else None
    return str(backend) if backend else "tensorflow"


def version_text() -> str:
    """The lines ``bikeflow --version`` prints."""
    lines = [f"bikeflow {installed_version('bikeflow')}"]
    lines += [f"{name} {installed_version(name)}" for name in LIBRARIES]
    lines.append(f"keras backend {keras_backend()}")
    return "\n".join(lines)


class VersionAction(argparse.Action):
    """``--version``: print ``version_text`` and exit 0 (computed only when asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print the versions of bikeflow, Prefect, Keras (and its backend) and "
            "TensorFlow, then exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(version_text())
        parser.exit()
