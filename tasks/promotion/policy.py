"""The promotion rule: a challenger replaces the champion only on the evidence the rule asks for.

Both models are re-scored by the same code on the same rows, the newest test window; by the
rule of ``RetrainConfig.promotion`` a paired block bootstrap over that window's days
(tasks/promotion/evidence.py) must then find the challenger better with probability
``min_probability`` (docs/registry.md). The registry (tasks/promotion/registry.py) stores the
outcome; this module decides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import ValidationError

from schemas.config import PromotionConfig
from tasks.evaluation.metrics import regression_scores
from tasks.prepare.statistics import Statistics
from tasks.promotion.evidence import Evidence, bootstrap_evidence, daily_squared_errors
from tasks.promotion.records import Outcome
from tasks.promotion.registry import (
    DEFAULT_PROMOTION,
    ChampionPointer,
    Decision,
    ModelVersion,
    Registry,
)
from tasks.storage.descriptors import Scores
from tasks.training.keras_work import predict_counts

# The score a challenger must beat; lower is better.
PROMOTION_METRIC = "rmse"
# The outcomes of the rule that move the pointer to the challenger.
WINNING = ("first-champion", "promoted")


@dataclass(frozen=True)
class Rows:
    """The rows both models are scored on: raw features, counts, station ids and dates."""

    features: np.ndarray
    target: np.ndarray
    stations: np.ndarray | None = None
    dates: np.ndarray | None = None
    # The run's Keras backend: where the predictions run (tasks.training.keras_work).
    backend: str | None = None


@dataclass(frozen=True)
class Comparison:
    """What scoring found: the challenger's scores, the champion's, and the bootstrap's evidence."""

    challenger_scores: Scores
    champion_scores: Scores | None = None
    evidence: Evidence | None = None


def predict_version(
    registry: Registry,
    version: ModelVersion,
    features: np.ndarray,
    stations: np.ndarray | None = None,
    dates: np.ndarray | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """Predict bike counts for raw rows (and station ids) with a version's own statistics,
    where ``backend``'s Keras work runs (``tasks.training.keras_work``; None: here)."""
    bundle = registry.bundle(version)
    if bundle.has_stations and stations is None:
        raise ValueError(
            f"model version {version.version} takes a station input; "
            "the rows to score have no station ids"
        )
    # The version's own encoding, scaling and vocabulary (a station it never saw is its
    # unknown station).
    return predict_counts(
        bundle, features, dates, stations if bundle.has_stations else None, backend
    )


def score_version(
    registry: Registry,
    version: ModelVersion,
    features: np.ndarray,
    target: np.ndarray,
    stations: np.ndarray | None = None,
    dates: np.ndarray | None = None,
    backend: str | None = None,
) -> Scores:
    """Score a version on raw features, station ids and counts, with its own statistics."""
    predicted = predict_version(registry, version, features, stations, dates, backend)
    return regression_scores(np.asarray(target, dtype=np.float64).ravel(), predicted)


def promote(
    registry: Registry,
    challenger: ModelVersion,
    features: np.ndarray,
    target: np.ndarray,
    stations: np.ndarray | None = None,
    dates: np.ndarray | None = None,
    rule: PromotionConfig = DEFAULT_PROMOTION,
    backend: str | None = None,
) -> Decision:
    """Re-score challenger and champion on the same rows; promote only on the rule's evidence.

    ``dates`` group the rows into days for the bootstrap (without them each row is a day).
    """
    rows = Rows(features, target, stations, dates, backend)
    with registry.locked():
        before = registry.champion_pointer()
        champion = registry.champion()
        different = champion is not None and _inputs(registry.statistics(champion)) != _inputs(
            registry.statistics(challenger)
        )
        comparison = compare(registry, challenger, champion, rows, rule, different)
        outcome: Outcome
        outcome, reason = verdict(registry, challenger, champion, comparison, rule, different)
        if before is not None and before.pinned and champion is not None:
            # An incident's pin: the rule still scores and says what it would do, nothing moves.
            outcome, reason = "kept", f"champion pinned; the rule alone: {outcome}, {reason}"
        decision = _decision(challenger, champion, comparison, outcome, reason, rule)
        pointer = None
        if outcome in WINNING:
            pointer = ChampionPointer(
                version=challenger.version,
                promoted_at=decision.decided_at,
                score=getattr(comparison.challenger_scores, PROMOTION_METRIC),
                metric=PROMOTION_METRIC,
            )
        return registry.commit(decision, pointer)


def compare(
    registry: Registry,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    rows: Rows,
    rule: PromotionConfig,
    different_inputs: bool,
) -> Comparison:
    """Score the challenger, and the champion beside it when the two can be compared."""
    recorded = recorded_scores(challenger)
    if different_inputs:
        # E.g. an hourly model against a daily champion, or a station model against a
        # champion without stations: batch prediction expects the champion's inputs, so it
        # stays.
        return Comparison(
            score_version(
                registry,
                challenger,
                rows.features,
                rows.target,
                rows.stations,
                rows.dates,
                rows.backend,
            )
        )
    if champion is not None and champion.version == challenger.version and recorded:
        # The champion's very model (a fully cached rerun): it cannot beat itself, and
        # loading TensorFlow to recompute the scores its run recorded is wasted time.
        return Comparison(recorded, recorded)
    # Both are scored by the same code on the same rows, the newest test window; never by
    # the numbers the champion had on an older window.
    actual = np.asarray(rows.target, dtype=np.float64).ravel()
    new_predicted = predict_version(
        registry, challenger, rows.features, rows.stations, rows.dates, rows.backend
    )
    challenger_scores = regression_scores(actual, new_predicted)
    if champion is None:
        return Comparison(challenger_scores)
    old_predicted = predict_version(
        registry, champion, rows.features, rows.stations, rows.dates, rows.backend
    )
    champion_scores = regression_scores(actual, old_predicted)
    evidence = None
    if champion.version != challenger.version:
        evidence = bootstrap_evidence(
            daily_squared_errors(rows.dates, actual, old_predicted),
            daily_squared_errors(rows.dates, actual, new_predicted),
            block_days=rule.block_days,
            resamples=rule.resamples,
        )
    return Comparison(challenger_scores, champion_scores, evidence)


def verdict(
    registry: Registry,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    comparison: Comparison,
    rule: PromotionConfig,
    different_inputs: bool,
) -> tuple[Literal["first-champion", "promoted", "rejected"], str]:
    """The outcome and its reason, in words."""
    if champion is None:
        return "first-champion", "the registry had no champion"
    if champion.version == challenger.version:
        return "rejected", "the challenger is the champion's very model"
    if different_inputs:
        return "rejected", (
            "the challenger takes other input columns than the champion "
            f"({_describe_inputs(registry.statistics(challenger))} vs "
            f"{_describe_inputs(registry.statistics(champion))}); use another registry_root"
        )
    assert comparison.champion_scores is not None and comparison.evidence is not None
    return judge(
        rule,
        comparison.evidence,
        getattr(comparison.challenger_scores, PROMOTION_METRIC),
        getattr(comparison.champion_scores, PROMOTION_METRIC),
    )


def _decision(
    challenger: ModelVersion,
    champion: ModelVersion | None,
    comparison: Comparison,
    outcome: Outcome,
    reason: str,
    rule: PromotionConfig,
) -> Decision:
    """The decision record, stamped now; the champion after it is the winner."""
    promoted = outcome in WINNING
    return Decision(
        outcome=outcome,
        reason=reason,
        metric=PROMOTION_METRIC,
        challenger=challenger.version,
        challenger_scores=comparison.challenger_scores,
        champion_before=None if champion is None else champion.version,
        champion_scores=comparison.champion_scores,
        champion_after=challenger.version if promoted or champion is None else champion.version,
        test_window=challenger.test_window,
        data_sha256=challenger.data_sha256,
        decided_at=datetime.now(UTC).isoformat(),
        promotion=rule,
        evidence=comparison.evidence,
    )


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
