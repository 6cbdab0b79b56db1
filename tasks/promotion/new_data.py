"""New data: compare the newest table with what the registry's champion was trained on."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from schemas.config import RetrainConfig
from schemas.errors import ArtifactError
from tasks.evaluation.drift import (
    PSI_SHIFTED,
    NewDataReport,
    drift_markdown,
    feature_drift,
    new_row_start,
)
from tasks.evaluation.publish import RunSummary
from tasks.prepare.validate import TableData
from tasks.promotion.policy import score_version
from tasks.promotion.registry import Registry
from tasks.storage.store import load_array
from tasks.training.child import keras_backend


@task(name="check_new_data", cache_policy=NO_CACHE, persist_result=False)
def check_new_data(config: RetrainConfig, table: TableData) -> NewDataReport:
    """Count the rows after the champion's last date, their drift and the champion's error."""
    # Not cached: the champion (the registry's pointer) changes between runs of one table.
    champion = Registry(config.registry_root).champion()
    dates = load_array(table.dates, mmap=True)
    base = {"newest_data_sha256": table.source_sha256, "newest_last_date": table.last_date}
    if champion is None:
        report = NewDataReport(
            champion=None, new_rows=table.rows, new_days=len(np.unique(dates)), **base
        )
        return _publish(report)
    last = champion.test_window.last_date
    start = new_row_start(dates, last)
    train = champion.metrics.get("split", {}).get("train", {})
    window = (train["first_date"], train["last_date"]) if train else None
    fields = {
        "champion": champion.version,
        "champion_data_sha256": champion.data_sha256,
        "champion_last_date": last,
        "champion_train_window": window,
        "champion_test_rmse": champion.metrics.get("test_rmse"),
        "champion_test_mae": champion.metrics.get("test_mae"),
        "new_rows": table.rows - start,
        "new_days": len(np.unique(dates[start:])),
        **base,
    }
    if start == table.rows:
        return _publish(NewDataReport(**fields))
    fields["first_new_date"] = str(dates[start])
    features = load_array(table.features, mmap=True)
    if window is not None:
        # The champion's training rows, taken from this table by date (the data is appended to).
        lo = int(np.searchsorted(dates, np.datetime64(window[0], "D"), side="left"))
        hi = int(np.searchsorted(dates, np.datetime64(window[1], "D"), side="right"))
        if hi > lo:
            psi = feature_drift(
                np.asarray(features[lo:hi]), np.asarray(features[start:]), table.feature_names
            )
            fields["psi"] = psi
            fields["shifted"] = tuple(name for name, value in psi.items() if value > PSI_SHIFTED)
    target = load_array(table.target, mmap=True)
    stations = None if table.stations is None else load_array(table.stations, mmap=True)[start:]
    try:
        scores = score_version(
            Registry(config.registry_root),
            champion,
            features[start:],
            target[start:],
            stations,
            dates[start:],
            keras_backend(config.model, config.training),
        )
        fields["champion_new_rows_rmse"] = scores.rmse
        fields["champion_new_rows_mae"] = scores.mae
    except (ValueError, ArtifactError) as error:
        # A champion that reads other columns (another granularity) cannot score these rows.
        get_run_logger().warning("the champion cannot score the new rows: %s", error)
    return _publish(NewDataReport(**fields))


def _publish(report: NewDataReport) -> NewDataReport:
    get_run_logger().info("%s", report.summary)
    create_markdown_artifact(
        key="new-data", markdown=drift_markdown(report), description="New data and drift"
    )
    return report


@task(name="report_no_new_data", cache_policy=NO_CACHE, persist_result=False)
def report_no_new_data(config: RetrainConfig, report: NewDataReport) -> RunSummary:
    """End a ``retrain_when: new-data`` run that has nothing new: the champion stays, as it is."""
    registry = Registry(config.registry_root)
    champion = registry.require_champion()
    metrics = champion.metrics
    create_markdown_artifact(
        key="run-summary",
        markdown=f"# Retraining skipped\n\n{report.summary}; `retrain_when: new-data`.",
        description="Retraining run",
    )
    return RunSummary(
        output_dir=str(registry.version_dir(champion.version)),
        best_epoch=int(metrics.get("best_epoch", 0)),
        val_rmse=float(metrics.get("val_rmse", float("nan"))),
        test_rmse=float(metrics.get("test_rmse", float("nan"))),
        test_mae=float(metrics.get("test_mae", float("nan"))),
        baseline_rmse={name: s["rmse"] for name, s in metrics.get("baselines", {}).items()},
        data_sha256=champion.data_sha256,
        new_data=report,
        trained=False,
    )
