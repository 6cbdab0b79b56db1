"""The retrain flow: ingest -> validate -> split -> normalise -> train -> select -> evaluate."""

from __future__ import annotations

from prefect import flow
from prefect.transactions import transaction

from schemas.config import RetrainConfig
from tasks.evaluate import evaluate_model
from tasks.ingest import ingest_source
from tasks.normalise import normalise_features
from tasks.publish import RunSummary, publish_run
from tasks.select import select_best_epoch
from tasks.split import split_by_date
from tasks.train import train_model
from tasks.validate import validate_records


@flow(name="retrain", result_serializer="json")
def retrain(config: RetrainConfig = RetrainConfig()) -> RunSummary:  # noqa: B008
    """Retrain the demand model from the configured source and report on the test window."""
    # One transaction: ingested bytes are cached only once they validate, so bad data leaves
    # no cache record behind.
    with transaction():
        raw = ingest_source(config.source, config.store_root)
        table = validate_records(raw, config.split.test_days, config.store_root)
    plan = split_by_date(table, config.split)
    data = normalise_features(table, plan, config.store_root)
    run = train_model(data, config.model, config.training, config.store_root)
    best = select_best_epoch(run)
    evaluation = evaluate_model(best, data, table, plan, config.store_root)
    return publish_run(config, table, plan, data, run, best, evaluation)
