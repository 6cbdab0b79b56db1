"""The retrain flow: ingest -> validate -> check new data -> split -> normalise -> train ->
select -> evaluate -> publish -> promote.

Every task is called directly, never ``.submit``-ted: a failing task raises in the flow body,
so the flow run is Failed. (A submitted future that nobody resolves would let the flow end
Completed with a failed task inside; ``tests/flows/test_failure_visibility.py`` keeps flows
free of them.)
"""

from __future__ import annotations

from prefect import flow
from prefect.transactions import transaction

from schemas.config import RetrainConfig
from tasks.evaluate import evaluate_model
from tasks.ingest import ingest_source
from tasks.new_data import check_new_data, report_no_new_data
from tasks.normalise import normalise_features
from tasks.publish import RunSummary, publish_run
from tasks.registry import promote_model
from tasks.select import select_best_epoch
from tasks.split import split_by_date
from tasks.train import train_model
from tasks.validate import validate_records


@flow(name="retrain", result_serializer="json")
def retrain(config: RetrainConfig = RetrainConfig()) -> RunSummary:  # noqa: B008
    """Retrain the demand model, report on the test window, promote it if it beats the champion."""
    # One transaction: ingested bytes are cached only once they validate, so bad data leaves
    # no cache record behind.
    with transaction():
        raw = ingest_source(config.source, config.store_root, f"{config.granularity}.csv")
        table = validate_records(raw, config.split.test_days, config.store_root, config.granularity)
    new_data = check_new_data(config, table)
    if config.retrain_when == "new-data" and new_data.champion and not new_data.new_rows:
        return report_no_new_data(config, new_data)
    plan = split_by_date(table, config.split)
    data = normalise_features(table, plan, config.store_root, config.features)
    run = train_model(data, config.model, config.training, config.store_root)
    best = select_best_epoch(run)
    evaluation = evaluate_model(best, data, table, plan, config.store_root)
    summary = publish_run(config, table, plan, data, run, best, evaluation, new_data)
    promote_model(config, table, plan, data, run, best, evaluation)
    return summary
