"""The promote_model task: register the run's model, then let the promotion rule decide."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from schemas.config import RetrainConfig
from tasks.evaluation.lineage import Lineage, with_lineage
from tasks.evaluation.metrics import build_metrics
from tasks.evaluation.model_card import full_model_card
from tasks.prepare.statistics import NormalisedData
from tasks.promotion.policy import promote
from tasks.promotion.registry import Decision, Registry
from tasks.promotion.report import decision_markdown
from tasks.storage.descriptors import Evaluation, Forecaster, SplitPlan
from tasks.storage.store import load_array
from tasks.storage.table import TableData
from tasks.training.child import keras_backend


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
    registry.lock_timeout_minutes = config.promotion.lock_timeout_minutes
    metrics = with_lineage(
        build_metrics(config, table, plan, model, evaluation),
        table.first_date,
        table.last_date,
        table.source_sha256,
    )
    challenger = registry.register(
        model.model,
        data.statistics_file,
        metrics,
        table.source_sha256,
        plan.test,
        lineage=Lineage.model_validate(metrics["lineage"]),
        card=full_model_card(model.card, metrics),
    )
    window = slice(plan.test.start, plan.test.stop)
    features = load_array(table.features, mmap=True)[window]
    target = load_array(table.target, mmap=True)[window]
    stations = None if table.stations is None else load_array(table.stations, mmap=True)[window]
    dates = load_array(table.dates, mmap=True)[window]
    backend = keras_backend(config.model, config.training)
    decision = promote(
        registry, challenger, features, target, stations, dates, config.promotion, backend
    )
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
