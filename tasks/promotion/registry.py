"""Model registry: versioned models, a champion pointer, and champion/challenger promotion.

Layout under the registry root::

    versions/<version>/model.keras            the model (loaded with safe_mode=True)
    versions/<version>/normalisation.json     the training rows' statistics
    versions/<version>/metrics.json           the run's metrics.json
    versions/<version>/version.json           data digest, file digests, when registered
    champion.json                             the pointer: which version predicts
    decisions/<time>-<version>.json           one record per promotion decision, with its evidence
    .lock                                     serialises promotions (flock)

A version folder is assembled under a staging name and renamed into place, so it is either
complete or absent. The pointer is written to a temporary sibling and swapped in with
``os.replace``: a crash at any moment leaves it naming the old champion or the new one, and
the version it names is complete because versions are written before the pointer moves.
Versions are never deleted; a rejected or failed run never touches the pointer.

A challenger replaces the champion only on the rule of ``RetrainConfig.promotion``: by default
a paired block bootstrap over the newest test window's days (tasks/promotion/evidence.py) must
find it better with probability ``min_probability`` (docs/registry.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.config import PromotionConfig, RetrainConfig
from schemas.errors import ArtifactError, NoChampionError
from tasks.evaluation.evaluate import regression_scores
from tasks.evaluation.publish import build_metrics
from tasks.models.bundle import ModelBundle
from tasks.prepare.normalise import NormalisedData, Statistics
from tasks.promotion.evidence import Evidence, bootstrap_evidence, daily_squared_errors
from tasks.storage.descriptors import Evaluation, Forecaster, Scores, SplitPlan, Window
from tasks.storage.store import (
    FileRef,
    _fsync_dir,
    load_array,
    sha256_file,
    verify,
    write_file_atomic,
)
from tasks.storage.table import TableData

MODEL_FILE = "model.keras"
STATISTICS_FILE = "normalisation.json"
METRICS_FILE = "metrics.json"
VERSION_FILE = "version.json"
POINTER_FILE = "champion.json"
# The score a challenger must beat; lower is better.
PROMOTION_METRIC = "rmse"
DEFAULT_PROMOTION = PromotionConfig()


class StoredFile(BaseModel):
    """A file inside a version folder and the digest it was written with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str
    size: int


class ModelVersion(BaseModel):
    """One registered model: its files, the data it was trained on, and its metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    registered_at: str
    data_sha256: str
    files: dict[str, StoredFile]
    test_window: Window
    metrics: dict[str, Any]


class ChampionPointer(BaseModel):
    """The content of ``champion.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    promoted_at: str
    score: float
    metric: str


class Decision(BaseModel):
    """The outcome of one champion/challenger comparison, with both scores and the evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Literal["first-champion", "promoted", "rejected"]
    reason: str
    metric: str
    challenger: str
    challenger_scores: Scores
    champion_before: str | None
    champion_scores: Scores | None
    champion_after: str
    test_window: Window
    data_sha256: str
    decided_at: str
    # The rule in force, and what the paired bootstrap found when both models were scored.
    promotion: PromotionConfig = DEFAULT_PROMOTION
    evidence: Evidence | None = None
    record: str = ""


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

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's promotion lock (blocks while another promotion runs)."""
        self._prepare()
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
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
    ) -> ModelVersion:
        """Store a model with its statistics and metrics as a new version (or the same one)."""
        # Under the lock so that two runs handing in the same model register it once.
        with self.locked():
            return self._register(model, statistics, metrics, data_sha256, test_window)

    def _register(
        self,
        model: FileRef,
        statistics: FileRef,
        metrics: dict[str, Any],
        data_sha256: str,
        test_window: Window,
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
            files = {}
            for file in (MODEL_FILE, STATISTICS_FILE, METRICS_FILE):
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
            )
            write_file_atomic(
                staging / VERSION_FILE, version.model_dump_json(indent=2).encode("utf-8")
            )
            os.rename(staging, self.version_dir(name))
            _fsync_dir(self.versions)
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

    def predict(
        self,
        version: ModelVersion,
        features: np.ndarray,
        stations: np.ndarray | None = None,
        dates: np.ndarray | None = None,
    ) -> np.ndarray:
        """Predict bike counts for raw rows (and station ids) with a version's own statistics."""
        bundle = self.bundle(version)
        if bundle.has_stations and stations is None:
            raise ValueError(
                f"model version {version.version} takes a station input; "
                "the rows to score have no station ids"
            )
        # The version's own encoding, scaling and vocabulary (a station it never saw is its
        # unknown station).
        return bundle.predict_arrays(features, dates, stations if bundle.has_stations else None)

    def score(
        self,
        version: ModelVersion,
        features: np.ndarray,
        target: np.ndarray,
        stations: np.ndarray | None = None,
        dates: np.ndarray | None = None,
    ) -> Scores:
        """Score a version on raw features, station ids and counts, with its own statistics."""
        predicted = self.predict(version, features, stations, dates)
        return regression_scores(np.asarray(target, dtype=np.float64).ravel(), predicted)

    def bundle(self, version: ModelVersion) -> ModelBundle:
        """The version's model and statistics (both verified) as a ``ModelBundle``."""
        return ModelBundle(verify(self.file_ref(version, MODEL_FILE)), self.statistics(version))

    def write_pointer(self, pointer: ChampionPointer) -> None:
        """Swap the champion pointer in one rename."""
        write_file_atomic(self.pointer, pointer.model_dump_json(indent=2).encode("utf-8"))

    def write_decision(self, decision: Decision) -> Path:
        """Keep a decision record under ``decisions/``."""
        moment = datetime.fromisoformat(decision.decided_at)
        path = self.decisions / f"{_stamp(moment)}-{decision.challenger}.json"
        record = decision.model_copy(update={"record": str(path)})
        write_file_atomic(path, record.model_dump_json(indent=2).encode("utf-8"))
        return path

    def promote(
        self,
        challenger: ModelVersion,
        features: np.ndarray,
        target: np.ndarray,
        stations: np.ndarray | None = None,
        dates: np.ndarray | None = None,
        rule: PromotionConfig = DEFAULT_PROMOTION,
    ) -> Decision:
        """Re-score challenger and champion on the same rows; promote only on the rule's evidence.

        ``dates`` group the rows into days for the bootstrap (without them each row is a day).
        """
        with self.locked():
            champion = self.champion()
            recorded = recorded_scores(challenger)
            champion_scores: Scores | None
            evidence: Evidence | None = None
            different_inputs = champion is not None and _inputs(
                self.statistics(champion)
            ) != _inputs(self.statistics(challenger))
            if different_inputs:
                # E.g. an hourly model against a daily champion, or a station model against a
                # champion without stations: batch prediction expects the champion's inputs,
                # so it stays.
                challenger_scores = self.score(challenger, features, target, stations, dates)
                champion_scores = None
            elif champion is not None and champion.version == challenger.version and recorded:
                # The champion's very model (a fully cached rerun): it cannot beat itself, and
                # loading TensorFlow to recompute the scores its run recorded is wasted time.
                challenger_scores = champion_scores = recorded
            else:
                # Both are scored by the same code on the same rows, the newest test window;
                # never by the numbers the champion had on an older window.
                actual = np.asarray(target, dtype=np.float64).ravel()
                new_predicted = self.predict(challenger, features, stations, dates)
                challenger_scores = regression_scores(actual, new_predicted)
                champion_scores = None
                if champion is not None:
                    old_predicted = self.predict(champion, features, stations, dates)
                    champion_scores = regression_scores(actual, old_predicted)
                    if champion.version != challenger.version:
                        evidence = bootstrap_evidence(
                            daily_squared_errors(dates, actual, old_predicted),
                            daily_squared_errors(dates, actual, new_predicted),
                            block_days=rule.block_days,
                            resamples=rule.resamples,
                        )
            new_score = getattr(challenger_scores, PROMOTION_METRIC)
            if champion is None:
                outcome, reason = "first-champion", "the registry had no champion"
            elif champion.version == challenger.version:
                outcome, reason = "rejected", "the challenger is the champion's very model"
            elif different_inputs:
                outcome = "rejected"
                reason = (
                    "the challenger takes other input columns than the champion "
                    f"({_describe_inputs(self.statistics(challenger))} vs "
                    f"{_describe_inputs(self.statistics(champion))}); use another registry_root"
                )
            else:
                assert champion_scores is not None and evidence is not None
                outcome, reason = judge(
                    rule, evidence, new_score, getattr(champion_scores, PROMOTION_METRIC)
                )
            moment = _now()
            promoted = outcome != "rejected"
            champion_after = (
                challenger.version if promoted or champion is None else champion.version
            )
            decision = Decision(
                outcome=outcome,
                reason=reason,
                metric=PROMOTION_METRIC,
                challenger=challenger.version,
                challenger_scores=challenger_scores,
                champion_before=None if champion is None else champion.version,
                champion_scores=champion_scores,
                champion_after=champion_after,
                test_window=challenger.test_window,
                data_sha256=challenger.data_sha256,
                decided_at=moment.isoformat(),
                promotion=rule,
                evidence=evidence,
            )
            if promoted:
                self.write_pointer(
                    ChampionPointer(
                        version=challenger.version,
                        promoted_at=moment.isoformat(),
                        score=new_score,
                        metric=PROMOTION_METRIC,
                    )
                )
            path = self.write_decision(decision)
            return decision.model_copy(update={"record": str(path)})


def judge(
    rule: PromotionConfig, evidence: Evidence, new_score: float, old_score: float
) -> tuple[Literal["promoted", "rejected"], str]:
    """Apply the promotion rule to a challenger scored beside the champion."""
    if rule.rule == "point":
        # The former rule: the point estimate alone, with an optional margin in bikes.
        margin = f" by more than {rule.min_rmse_gain:g}" if rule.min_rmse_gain else ""
        score = f"test {PROMOTION_METRIC} {new_score:.1f}"
        if old_score - new_score > rule.min_rmse_gain:
            return "promoted", f"{score} < champion's {old_score:.1f}{margin}"
        return "rejected", f"{score} is not below the champion's {old_score:.1f}{margin}"
    better = (
        f"P(challenger better) = {evidence.probability:.3f} over {evidence.resamples:,} "
        f"block resamples of {evidence.days} days; test {PROMOTION_METRIC} {new_score:.1f} vs "
        f"the champion's {old_score:.1f}"
    )
    if evidence.probability >= rule.min_probability:
        return "promoted", f"{better}: at least the required {rule.min_probability:g}"
    return "rejected", f"{better}: below the required {rule.min_probability:g}"


def _raw_columns(statistics: Statistics) -> tuple[str, ...]:
    # Each version encodes raw rows with its own statistics (one-hot, holiday windows), so two
    # versions that read the same raw columns can score, and replace, each other.
    return statistics.encoding.raw_names or statistics.feature_names


def _inputs(statistics: Statistics) -> tuple[tuple[str, ...], bool]:
    """What a model reads: its raw feature columns, and whether it has a station input."""
    return _raw_columns(statistics), statistics.stations is not None


def _describe_inputs(statistics: Statistics) -> str:
    station = " + station" if statistics.stations is not None else ""
    return f"{len(_raw_columns(statistics))}{station}"


def recorded_scores(version: ModelVersion) -> Scores | None:
    """The test scores a version's own run recorded, if its metrics hold all of them."""
    try:
        return Scores(**{name: version.metrics[f"test_{name}"] for name in Scores.model_fields})
    except (KeyError, ValidationError):
        return None


def decision_markdown(decision: Decision) -> str:
    """The decision as the Prefect UI shows it."""
    window = decision.test_window
    rows = [("challenger", decision.challenger, decision.challenger_scores)]
    if decision.champion_before is not None and decision.champion_scores is not None:
        rows.append(("champion", decision.champion_before, decision.champion_scores))
    lines = [
        f"# Promotion: {decision.outcome}",
        "",
        decision.reason + ".",
        "",
        f"Both scored on the newest test window {window.first_date} .. {window.last_date} "
        f"({window.days} days):",
        "",
        "| role | version | RMSE | MAE | R² |",
        "|---|---|---|---|---|",
        *[
            f"| {role} | `{name}` | {s.rmse:.0f} | {s.mae:.0f} | {s.r2:.3f} |"
            for role, name, s in rows
        ],
        "",
        *evidence_markdown(decision),
        f"Champion now: `{decision.champion_after}`. Record: `{decision.record}`",
    ]
    return "\n".join(lines)


def evidence_markdown(decision: Decision) -> list[str]:
    """The bootstrap evidence as markdown lines (none when there was no comparison)."""
    evidence, rule = decision.evidence, decision.promotion
    if evidence is None:
        return []
    level = f"{evidence.interval:.0%}"
    if rule.rule == "bootstrap":
        verdict = f"the bootstrap rule promotes at ≥ {rule.min_probability:g}"
    else:
        verdict = f"shown only: the point rule promotes on an RMSE gain > {rule.min_rmse_gain:g}"
    return [
        "## Evidence",
        "",
        f"Paired circular block bootstrap over the {evidence.days} test "
        f"days, {evidence.block_days}-day blocks, {evidence.resamples:,} resamples, seed "
        f"{evidence.seed}. Differences are champion minus challenger (positive: the challenger "
        "is better).",
        "",
        f"| quantity | estimate | {level} interval |",
        "|---|---|---|",
        f"| RMSE difference (bikes) | {evidence.rmse_difference:+.1f} | "
        f"{evidence.rmse_difference_low:+.1f} .. {evidence.rmse_difference_high:+.1f} |",
        f"| mean squared-error difference | {evidence.mse_difference:+.4g} | "
        f"{evidence.mse_difference_low:+.4g} .. {evidence.mse_difference_high:+.4g} |",
        "",
        f"P(challenger better) = **{evidence.probability:.3f}** ({verdict}).",
        "",
    ]


@task(name="promote_model", cache_policy=NO_CACHE, persist_result=False)
def promote_model(
    config: RetrainConfig,
    table: TableData,
    plan: SplitPlan,
    data: NormalisedData,
    model: Forecaster,
    evaluation: Evaluation,
) -> Decision:
    """Register the run's model and make it champion only if it beats the champion's re-score."""
    registry = Registry(config.registry_root)
    metrics = build_metrics(config, table, plan, model, evaluation)
    challenger = registry.register(
        model.model, data.statistics_file, metrics, table.source_sha256, plan.test
    )
    window = slice(plan.test.start, plan.test.stop)
    features = load_array(table.features, mmap=True)[window]
    target = load_array(table.target, mmap=True)[window]
    stations = None if table.stations is None else load_array(table.stations, mmap=True)[window]
    dates = load_array(table.dates, mmap=True)[window]
    decision = registry.promote(challenger, features, target, stations, dates, config.promotion)
    get_run_logger().info(
        "promotion %s: %s (champion now %s)",
        decision.outcome,
        decision.reason,
        decision.champion_after,
    )
    create_markdown_artifact(
        key="promotion-decision",
        markdown=decision_markdown(decision),
        description="Champion/challenger decision",
    )
    return decision
