"""The retrain flow: check paths -> ingest -> validate -> split -> normalise -> train -> select
-> evaluate -> publish -> promote.

Every task is called directly, never ``.submit``-ted: a failing task raises in the flow body,
so the flow run is Failed. (A submitted future that nobody resolves would let the flow end
Completed with a failed task inside; ``tests/flows/test_failure_visibility.py`` keeps flows
free of them.)
"""

from __future__ import annotations

from prefect import flow
from prefect.transactions import transaction

from schemas.config import RetrainConfig
from tasks.error_logs import install_user_error_filter
from tasks.evaluate import evaluate_model
from tasks.ingest import ingest_source
from tasks.normalise import normalise_features
from tasks.preflight import check_paths
from tasks.publish import RunSummary, publish_run
from tasks.registry import promote_model
from tasks.select import select_best_epoch
from tasks.split import split_by_date
from tasks.train import train_model
from tasks.validate import validate_records

# A user error is logged by Prefect with its message and no traceback (tasks/error_logs.py);
# installed on import so that it holds wherever this flow runs (CLI, Python, a worker).
install_user_error_filter()


@flow(name="retrain", result_serializer="json")
def retrain(config: RetrainConfig = RetrainConfig()) -> RunSummary:  # noqa: B008
    """Retrain the demand model, report on the test window, promote it if it beats the champion."""
    check_paths(config)
    # One transaction: ingested bytes are cached only once they validate, so bad data leaves
    # no cache record behind.
    with transaction():
        raw = ingest_source(config.source, config.store_root, f"{config.granularity}.csv")
        table = validate_records(raw, config.split.test_days, config.store_root, config.granularity)
    plan = split_by_date(table, config.split)
    data = normalise_features(table, plan, config.store_root, config.features)
    run = train_model(data, config.model, config.training, config.store_root)
    best = select_best_epoch(run)
    evaluation = evaluate_model(best, data, table, plan, config.store_root)
    summary = publish_run(config, table, plan, data, run, best, evaluation)
    promote_model(config, table, plan, data, run, best, evaluation)
    return summary
