"""The backtest flow: the nightly retrain job replayed over history, policy against policy.

At every origin the model trains on the rows before it with the retrain flow's own cached
tasks (split, normalise, then the ensemble's train, select, refit and assemble), so a rerun is
Cached; every origin's members share one queue, ``max_parallel`` trainings at a time (on JAX
each origin's members are one training, a group in one child, and so are its refits). The
promotion rule (``promotion`` of the base config) then runs against the backtest's own registry
(a fresh one under ``backtest_dir/registries/`` per run, never the real registry), and the
model each policy serves is scored on the window after the origin (``tasks.backtest.steps``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow
from prefect.transactions import transaction

from schemas.flow_configs import BacktestConfig
from tasks.backtest.steps import (
    BacktestReport,
    OriginResult,
    cut_before,
    plan_backtest_origins,
    publish_backtest,
    replay_origin,
)
from tasks.prepare.ingest import ingest_source
from tasks.prepare.normalise import normalise_features
from tasks.prepare.split import split_by_date
from tasks.prepare.validate import validate_records
from tasks.training.child import keras_backend
from tasks.training.child_process import reusing_children
from tasks.training.ensemble import assemble_forecaster, train_member_sets


def _fresh_registry(config: BacktestConfig) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return str(Path(config.backtest_dir).expanduser().resolve() / "registries" / stamp)


@flow(name="backtest", result_serializer="json")
def backtest(config: BacktestConfig = BacktestConfig()) -> BacktestReport:  # noqa: B008
    """Replay the nightly retraining over history and compare promotion policies."""
    base = config.base
    with transaction():
        raw = ingest_source(base.source, base.store_root, f"{base.granularity}.csv")
        table = validate_records(raw, base.split.test_days, base.store_root, base.granularity)
    origins = plan_backtest_origins(table, config.start_date, config.every_days, config.end_date)
    before = [cut_before(table, origin, base.store_root) for origin in origins]
    plans = [split_by_date(cut, base.split) for cut in before]
    data = [
        normalise_features(cut, plan, base.store_root, base.features)
        for cut, plan in zip(before, plans, strict=True)
    ]
    backend = keras_backend(base.model, base.training)
    # One training child (on JAX) trains every origin, then assembles and scores its models.
    with reusing_children():
        member_sets = train_member_sets(
            data, base.model, base.training, base.store_root, config.max_parallel
        )
        models = [
            assemble_forecaster(members, base.model, base.training, base.store_root)
            for members in member_sets
        ]
        registry_root = _fresh_registry(config)
        results: list[OriginResult] = []
        for i, origin in enumerate(origins):
            first = results[0].challenger if results else None
            results.append(
                replay_origin(
                    registry_root,
                    base.promotion,
                    table,
                    origin,
                    before[i],
                    plans[i],
                    data[i],
                    models[i],
                    first,
                    backend,
                )
            )
    return publish_backtest(config, table, results, registry_root)
