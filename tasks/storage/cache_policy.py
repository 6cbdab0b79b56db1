"""Prefect cache policies keyed on artifact digests, step parameters and step code.

Prefect's DEFAULT policy includes the run id, so it never hits across runs, and INPUTS on a
path hashes the string rather than the file. ``ArtifactCache`` hashes what a step really
depends on: the descriptors it receives (which carry sha256 digests), the parameters passed
to it, the source of the task's module and of every project module it imports (found
from the import graph, so no list can leave a helper out) and the installed versions of the
libraries the task names in ``libraries=`` (``tasks.storage.library_versions``); the keys
themselves are built in ``tasks.storage.keys``, which ``bikeflow plan`` shares. The parts of
each key are kept beside the records (``.keys/<task>/<key>.json``) so ``bikeflow plan`` can say
what changed.
Before it lets Prefect reuse a cached result it checks that every artifact the result refers
to is still intact; if one was deleted or altered, it moves to a fresh key so the step runs
again and rebuilds it.

Runs that share a cache (several workers on one store and one result storage) are isolated
with Prefect's SERIALIZABLE level: a task run holds a lock on its cache key while it computes
and writes the record, so a second run with the same key waits and then reads the finished
record instead of computing it again or reading a half-written one. The locks are ``flock``
locks (``FlockLockManager``): the kernel drops them when their process dies, so a run killed
while holding one cannot block every later run on that key, as a stale lock file would.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.filesystems import LocalFileSystem
from prefect.locking.protocol import LockManager
from prefect.logging import get_run_logger
from prefect.results import ResultStore
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH

from tasks.storage.keys import material_key, record_material, resolve_key, step_material
from tasks.storage.locks import flock_is_held

R = TypeVar("R")


def _in_a_thread(blocking: Callable[..., R]) -> Callable[..., Coroutine[Any, Any, R]]:
    """The async form of a blocking method: the same call, run in a worker thread."""

    async def in_a_thread(*args: Any, **kwargs: Any) -> R:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(functools.partial(blocking, *args, **kwargs))

    in_a_thread.__doc__ = f"Async form of ``{blocking.__name__}`` (run in a thread: flock blocks)."
    return in_a_thread


class FlockLockManager(LockManager):
    """Prefect lock manager on ``flock``: one lock file per cache key, freed when its process dies.

    The lock files live beside Prefect's cache records (``PREFECT_LOCAL_STORAGE_PATH``), read
    when first used, so every process that shares the records shares the locks.
    """

    _POLL_SECONDS = 0.05

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._directory = None if directory is None else Path(directory)
        self._held: dict[str, tuple[str, int]] = {}
        self._guard = threading.Lock()

    def __reduce__(self) -> tuple[type[FlockLockManager], tuple[Path | None]]:
        # A Dask or Ray runner ships tasks (and their cache policy) to worker processes; there
        # a manager starts with no locks held, since a flock belongs to this process's files.
        return (type(self), (self._directory,))

    def directory(self) -> Path:
        """The folder of the lock files."""
        if self._directory is not None:
            return self._directory
        return Path(PREFECT_LOCAL_STORAGE_PATH.value()).expanduser().resolve() / ".locks"

    def _path(self, key: str) -> Path:
        # Keys are hex digests; anything else is hashed so it cannot name a path.
        name = key if key.isalnum() else hashlib.sha256(key.encode()).hexdigest()
        return self.directory() / f"{name}.lock"

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``holder``, waiting up to ``acquire_timeout`` seconds."""
        with self._guard:
            held = self._held.get(key)
            if held is not None and held[0] == holder:
                return True
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(self._POLL_SECONDS)
        with self._guard:
            self._held[key] = (holder, fd)
        return True

    aacquire_lock = _in_a_thread(acquire_lock)

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``."""
        with self._guard:
            held = self._held.get(key)
            if held is None or held[0] != holder:
                raise ValueError(f"no lock held by {holder} for cache key {key}")
            del self._held[key]
        fcntl.flock(held[1], fcntl.LOCK_UN)
        os.close(held[1])

    def is_locked(self, key: str) -> bool:
        """Tell whether any process (this one included) holds the lock on ``key``."""
        with self._guard:
            if key in self._held:
                return True
        return flock_is_held(self._path(key))

    def is_lock_holder(self, key: str, holder: str) -> bool:
        """Tell whether ``holder`` holds the lock on ``key`` in this process."""
        with self._guard:
            held = self._held.get(key)
        return held is not None and held[0] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until nobody holds the lock on ``key``; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self._POLL_SECONDS)
        return True

    await_for_lock = _in_a_thread(wait_for_lock)


# One manager per process: it remembers which locks this process holds.
CACHE_LOCKS = FlockLockManager()


@dataclass(frozen=True)
class PrefectRecords:
    """Prefect's result store seen as ``tasks.storage.keys.Records`` (what the flow's tasks use)."""

    store: ResultStore

    @property
    def folder(self) -> Path | None:
        """The local storage's folder (None: the records are in a remote storage block)."""
        storage = self.store.result_storage
        if not isinstance(storage, LocalFileSystem) or storage.basepath is None:
            return None
        return Path(storage.basepath).expanduser().resolve()

    def exists(self, key: str) -> bool:
        """Tell whether the store holds a usable record under ``key``."""
        return self.store.exists(key)

    def read_result(self, key: str) -> Any:
        """The result in the record under ``key``."""
        return self.store.read(key).result


@dataclass
class ArtifactCache(CachePolicy):
    """Cache on input digests + parameters + the code of the task's module and its imports.

    The code part is the closure of project modules the task's module imports
    (``tasks.storage.code_digests.code_closure``); ``modules`` adds any the import graph cannot see.
    ``libraries`` names the libraries whose installed versions shape the result (``keras``
    brings its backend too); ``bikeflow plan`` reads both from the task's source, so they are
    written there as literal tuples.
    """

    modules: tuple[str, ...] = field(default_factory=tuple)
    libraries: tuple[str, ...] = field(default_factory=tuple)
    # Serializable isolation: runs sharing the cache never compute one key twice at once.
    isolation_level: Any = "SERIALIZABLE"
    lock_manager: LockManager | None = field(default_factory=lambda: CACHE_LOCKS)

    def key_material(self, task: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """Return everything the key is a hash of (None: do not cache); subclasses add to it."""
        return step_material(task.name, task.fn.__module__, inputs, self.modules, self.libraries)

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        material = self.key_material(task_ctx.task, inputs)
        if material is None:
            return None
        key = material_key(material)
        store = task_ctx.result_store
        if store is None:
            return key
        records = PrefectRecords(store)
        resolved = resolve_key(records, key)
        logger = get_run_logger()
        for problem in resolved.problems:
            logger.warning("%s; rebuilding", problem)
        record_material(records, resolved.key, material)
        return resolved.key
