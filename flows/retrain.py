"""The retrain flow: ingest -> validate -> split -> normalise -> train -> select -> evaluate ->
publish -> promote.

Every task is called directly, never ``.submit``-ted: a failing task raises in the flow body,
so the flow run is Failed. (A submitted future that nobody resolves would let the flow end
Completed with a failed task inside; ``tests/flows/test_failure_visibility.py`` keeps flows
free of them.)
"""

from __future__ import annotations

from prefect import flow

from flows.prepare import prepare_data
from schemas.config import RetrainConfig
from tasks.evaluate import evaluate_model
from tasks.publish import RunSummary, publish_run
from tasks.registry import promote_model
from tasks.select import select_best_epoch
from tasks.train import train_model


@flow(name="retrain", result_serializer="json")
def retrain(config: RetrainConfig = RetrainConfig()) -> RunSummary:  # noqa: B008
    """Retrain the demand model, report on the test window, promote it if it beats the champion."""
    prepared = prepare_data(config)
    table, plan, data = prepared.table, prepared.plan, prepared.data
    run = train_model(data, config.model, config.training, config.store_root)
    best = select_best_epoch(run)
    evaluation = evaluate_model(best, data, table, plan, config.store_root)
    summary = publish_run(config, table, plan, data, run, best, evaluation)
    promote_model(config, table, plan, data, run, best, evaluation)
    return summary
