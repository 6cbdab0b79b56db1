"""JAX's persistent compilation cache for the training child: compiled programs kept on disk.

Every JAX child compiles its programs (an epoch of training, validation, prediction) before its
first epoch: about 1.2 s of a tutorial child's 2 s of training on the 2-core machine, paid again
by every run although a scheduled retraining compiles the very same programs each night. JAX's
own cache (https://docs.jax.dev/en/latest/persistent_compilation_cache.html) keeps them:

- where: ``JAX_COMPILATION_CACHE_DIR`` when the environment sets it (an empty value turns the
  cache off), else a folder of bikeflow's in the user's cache (``platformdirs``: on Linux
  ``~/.cache/bikeflow/jax``), made readable and writable by the user only, since JAX trusts
  what it loads from there;
- what: every program, however quick to compile (JAX's default keeps only those over 1 s);
- how much: at most ``CACHE_BYTES``; JAX drops the least recently used programs beyond it
  (``JAX_COMPILATION_CACHE_MAX_SIZE`` sets another bound).

Only environment variables are set, before JAX is imported (as ``KERAS_BACKEND`` is), so the
child imports nothing more for it. A program loaded from the cache computes what a fresh
compile computes: the same seed still gives the same history, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

from platformdirs import user_cache_path

DIRECTORY = "JAX_COMPILATION_CACHE_DIR"
CACHE_BYTES = 256 * 1024 * 1024  # a tutorial run's programs take about 0.3 MB
SETTINGS = {
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(CACHE_BYTES),
}


def default_directory() -> Path:
    """bikeflow's folder for JAX's cache in the user's cache folder."""
    return user_cache_path("bikeflow") / "jax"


def use_compile_cache(environ: MutableMapping[str, str] | None = None) -> Path | None:
    """Point JAX at its compilation cache (before JAX is imported); the folder, or None when
    the environment turned the cache off (``JAX_COMPILATION_CACHE_DIR`` set but empty)."""
    environ = os.environ if environ is None else environ
    if DIRECTORY in environ:
        given = environ[DIRECTORY]
        if not given:
            return None
        folder = Path(given)
    else:
        folder = default_directory()
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            return None  # no cache folder to be had here: compile as before
        environ[DIRECTORY] = str(folder)
    for name, value in SETTINGS.items():
        environ.setdefault(name, value)
    return folder
