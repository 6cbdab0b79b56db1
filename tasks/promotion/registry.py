"""Model registry: versioned models, a champion pointer and the decisions, on disk.

Layout under the registry root::

    versions/<version>/model.keras            the model (loaded with safe_mode=True)
    versions/<version>/normalisation.json     the training rows' statistics
    versions/<version>/metrics.json           the run's metrics.json
    versions/<version>/version.json           data digest, file digests, lineage, when registered
    versions/<version>/model_card.md          the run's model card (when the run handed one in)
    champion.json                             the pointer: which version predicts, whether it
                                              is pinned, and the decision that put it there
    decisions/<time>-<version>.json           one record per decision, with its evidence
    .lock                                     serialises promotions (flock)

A version folder is assembled under a staging name and renamed into place, so it is either
complete or absent. The pointer is written to a temporary sibling and swapped in with
``os.replace``: a crash at any moment leaves it naming the old champion or the new one, and
the version it names is complete because versions are written before the pointer moves.
The pointer holds the decision that moved it, so one rename commits both; the copy under
``decisions/`` is written next, and ``decision_history`` (and the next locked operation, which
writes the missing copy) reads the pointer's decision when a crash came between the two.
Versions are never deleted; a rejected or failed run never touches the pointer.

Storage only: the rule that decides whether a challenger replaces the champion is in
tasks/promotion/policy.py. This module does not import Prefect: ``bikeflow plan`` reads the
champion through it and answers in about a second.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.config import PromotionConfig
from schemas.errors import ArtifactError, NoChampionError, RegistryLockTimeoutError
from tasks.evaluation.lineage import Lineage
from tasks.models.bundle import ModelBundle
from tasks.prepare.statistics import Statistics
from tasks.promotion.records import ChampionPointer, Decision, ModelVersion, StoredFile
from tasks.storage.atomic import fsync_directory, write_file_atomic
from tasks.storage.descriptors import Window
from tasks.storage.store import FileRef, sha256_file, verify

MODEL_FILE = "model.keras"
STATISTICS_FILE = "normalisation.json"
METRICS_FILE = "metrics.json"
VERSION_FILE = "version.json"
POINTER_FILE = "champion.json"
MODEL_CARD_FILE = "model_card.md"
DEFAULT_PROMOTION = PromotionConfig()


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S%fZ")


class Registry:
    """A model registry folder; safe for several workers sharing one root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.versions = self.root / "versions"
        self.decisions = self.root / "decisions"
        self.pointer = self.root / POINTER_FILE

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    def _prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise ArtifactError(f"model registry root {self.root} exists and is not a folder")
        self.versions.mkdir(parents=True, exist_ok=True)
        self.decisions.mkdir(parents=True, exist_ok=True)

    # How long locked() waits (promotion.lock_timeout_minutes; tasks/promotion/task.py sets it).
    lock_timeout_minutes: float = 10.0

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's promotion lock, waiting at most ``lock_timeout_minutes`` for it."""
        self._prepare()
        lock_file = self.root / ".lock"
        with open(lock_file, "a+b") as handle:
            # flock has no timeout: try without blocking until the deadline. The kernel drops
            # a dead process's lock, so a lock still held is held by a live process.
            deadline = time.monotonic() + 60.0 * self.lock_timeout_minutes
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise RegistryLockTimeoutError(
                            f"the model registry's lock {lock_file} stayed held by another "
                            f"process for {self.lock_timeout_minutes:g} minute(s), so this run "
                            "did not promote: another bikeflow run is promoting into this "
                            "registry (or hung doing so); wait for it or stop it, or raise "
                            "promotion.lock_timeout_minutes"
                        ) from None
                    time.sleep(0.1)
            try:
                self._settle()
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def version_dir(self, version: str) -> Path:
        """The folder of one version."""
        if not version or "/" in version or version.startswith("."):
            raise ArtifactError(f"invalid model version name {version!r}")
        return self.versions / version

    def find_by_model(self, model_sha256: str) -> ModelVersion | None:
        """Return the registered version whose model has this digest, if there is one."""
        if not self.versions.is_dir():
            return None
        for folder in sorted(self.versions.glob(f"*-{model_sha256[:16]}")):
            version = self.read_version(folder.name)
            if version.files[MODEL_FILE].sha256 == model_sha256:
                return version
        return None

    def register(
        self,
        model: FileRef,
        statistics: FileRef,
        metrics: dict[str, Any],
        data_sha256: str,
        test_window: Window,
        lineage: Lineage | None = None,
        card: str | None = None,
    ) -> ModelVersion:
        """Store a model with its statistics and metrics as a new version (or the same one)."""
        # Under the lock so that two runs handing in the same model register it once.
        with self.locked():
            return self._register(
                model, statistics, metrics, data_sha256, test_window, lineage, card
            )

    def _register(
        self,
        model: FileRef,
        statistics: FileRef,
        metrics: dict[str, Any],
        data_sha256: str,
        test_window: Window,
        lineage: Lineage | None,
        card: str | None,
    ) -> ModelVersion:
        existing = self.find_by_model(model.sha256)
        if existing is not None:
            # A fully cached rerun hands in the very same model: one version is enough.
            return existing
        moment = _now()
        name = f"{_stamp(moment)}-{model.sha256[:16]}"
        staging = self.versions / f".{name}.{uuid.uuid4().hex}.staging"
        staging.mkdir()
        try:
            shutil.copyfile(verify(model), staging / MODEL_FILE)
            shutil.copyfile(verify(statistics), staging / STATISTICS_FILE)
            metrics_bytes = json.dumps(metrics, indent=2, allow_nan=False).encode()
            (staging / METRICS_FILE).write_bytes(metrics_bytes)
            names = [MODEL_FILE, STATISTICS_FILE, METRICS_FILE]
            if card is not None:
                (staging / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
                names.append(MODEL_CARD_FILE)
            files = {}
            for file in names:
                path = staging / file
                with open(path, "rb+") as handle:
                    os.fsync(handle.fileno())
                files[file] = StoredFile(sha256=sha256_file(path), size=path.stat().st_size)
            if files[MODEL_FILE].sha256 != model.sha256:
                raise ArtifactError(f"model {model.path} changed while it was being registered")
            version = ModelVersion(
                version=name,
                registered_at=moment.isoformat(),
                data_sha256=data_sha256,
                files=files,
                test_window=test_window,
                metrics=metrics,
                lineage=lineage,
            )
            write_file_atomic(
                staging / VERSION_FILE, version.model_dump_json(indent=2).encode("utf-8")
            )
            os.rename(staging, self.version_dir(name))
            fsync_directory(self.versions)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version

    def read_version(self, version: str) -> ModelVersion:
        """Read a version's record and check that every file still has its digest."""
        folder = self.version_dir(version)
        record = folder / VERSION_FILE
        if not record.is_file():
            raise ArtifactError(f"model version {version} is missing from {self.versions}")
        try:
            found = ModelVersion.model_validate_json(record.read_bytes())
        except ValidationError as error:
            raise ArtifactError(f"{record} is not a valid version record: {error}") from error
        for name, stored in found.files.items():
            self.file_ref(found, name, stored)
        return found

    def file_ref(
        self, version: ModelVersion, name: str, stored: StoredFile | None = None
    ) -> FileRef:
        """A verified descriptor of one file of a version."""
        stored = stored or version.files[name]
        ref = FileRef(
            path=str(self.version_dir(version.version) / name),
            sha256=stored.sha256,
            size=stored.size,
        )
        verify(ref)
        return ref

    def statistics(self, version: ModelVersion) -> Statistics:
        """The normalisation statistics a version was trained with."""
        path = verify(self.file_ref(version, STATISTICS_FILE))
        return Statistics.model_validate_json(path.read_bytes())

    def champion_pointer(self) -> ChampionPointer | None:
        """The champion pointer, or None when no model was ever promoted."""
        if not self.pointer.is_file():
            return None
        try:
            return ChampionPointer.model_validate_json(self.pointer.read_bytes())
        except ValidationError as error:
            raise ArtifactError(
                f"{self.pointer} is not a valid champion pointer: {error}"
            ) from error

    def champion(self) -> ModelVersion | None:
        """The champion version (verified), or None when there is none yet."""
        pointer = self.champion_pointer()
        return None if pointer is None else self.read_version(pointer.version)

    def require_champion(self) -> ModelVersion:
        """The champion version, or ``NoChampionError`` saying how to get one."""
        champion = self.champion()
        if champion is None:
            raise NoChampionError(
                f"the model registry {self.root} has no champion yet: run the retrain flow "
                "(bikeflow run --registry-root ..., or the retrain-adhoc deployment) first"
            )
        return champion

    def bundle(self, version: ModelVersion) -> ModelBundle:
        """The version's model and statistics (both verified) as a ``ModelBundle``."""
        return ModelBundle(verify(self.file_ref(version, MODEL_FILE)), self.statistics(version))

    def version_names(self) -> list[str]:
        """Every registered version's name, oldest first (names start with their time)."""
        if not self.versions.is_dir():
            return []
        return sorted(
            folder.name
            for folder in self.versions.iterdir()
            if not folder.name.startswith(".") and (folder / VERSION_FILE).is_file()
        )

    def write_pointer(self, pointer: ChampionPointer) -> None:
        """Swap the champion pointer in one rename."""
        write_file_atomic(self.pointer, pointer.model_dump_json(indent=2).encode("utf-8"))

    def decision_path(self, decision: Decision) -> Path:
        """Where a decision's record lives under ``decisions/``."""
        moment = datetime.fromisoformat(decision.decided_at)
        return self.decisions / f"{_stamp(moment)}-{decision.challenger}.json"

    def write_decision(self, decision: Decision) -> Path:
        """Keep a decision record under ``decisions/``."""
        path = self.decision_path(decision)
        record = decision.model_copy(update={"record": str(path)})
        write_file_atomic(path, record.model_dump_json(indent=2).encode("utf-8"))
        return path

    def commit(self, decision: Decision, pointer: ChampionPointer | None = None) -> Decision:
        """Record a decision and, when it writes one, the pointer: one rename commits both.

        Call it holding ``locked()``. The pointer carries its decision, so a crash after its
        rename and before the copy under ``decisions/`` loses nothing: ``decision_history``
        reads the pointer's copy, and the next locked operation writes the missing file.
        """
        record = decision.model_copy(update={"record": str(self.decision_path(decision))})
        if pointer is not None:
            self.write_pointer(pointer.model_copy(update={"decision": record}))
        self.write_decision(record)
        return record

    def _settle(self) -> None:
        """Write the pointer's decision under ``decisions/`` if a crash kept it from there."""
        with contextlib.suppress(ArtifactError):
            pointer = self.champion_pointer()
            decision = None if pointer is None else pointer.decision
            if decision is not None and not self.decision_path(decision).is_file():
                self.write_decision(decision)

    def decision_history(self) -> list[Decision]:
        """Every decision, oldest first (the pointer's own one included even without its file)."""
        found: dict[str, Decision] = {}
        if self.decisions.is_dir():
            for path in sorted(self.decisions.glob("*.json")):
                try:
                    found[path.name] = Decision.model_validate_json(path.read_bytes())
                except ValidationError as error:
                    raise ArtifactError(
                        f"{path} is not a valid decision record: {error}"
                    ) from error
        pointer = self.champion_pointer()
        if pointer is not None and pointer.decision is not None:
            name = self.decision_path(pointer.decision).name
            found.setdefault(name, pointer.decision)
        return [found[name] for name in sorted(found)]
