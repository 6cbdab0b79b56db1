"""Backtest steps: cut the table at each origin, replay the promotion policy, score the windows.

Policies compared on the same origins and windows:

- ``evidence``: the registry's rule (``Registry.promote`` with the base config's
  ``promotion``: by default the challenger replaces the champion only on paired bootstrap
  evidence that it scores better on the newest test window);
- ``always``: every origin's new model replaces the last;
- ``never``: the first origin's model serves forever;
- ``linear``: the linear baseline (least squares on the normalised training rows), refitted
  at every origin.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from schemas.config import PromotionConfig
from schemas.errors import SplitError
from schemas.flow_configs import BacktestConfig
from tasks.evaluation.evaluate import fit_linear, predict_linear
from tasks.evaluation.figures import figure_png, new_figure
from tasks.evaluation.metrics import regression_scores
from tasks.prepare.normalise import NormalisedData
from tasks.prepare.validate import TableData
from tasks.promotion.policy import promote, score_version
from tasks.promotion.registry import Decision, ModelVersion, Registry
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import Forecaster, Scores, SplitPlan
from tasks.storage.publish import publish_directory
from tasks.storage.store import ArtifactStore, load_array

POLICIES = ("evidence", "always", "never", "linear")


class Origin(BaseModel):
    """One replayed night: train on rows before ``date``, score on ``date`` .. ``last_date``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: str
    last_date: str
    start: int
    stop: int


class OriginResult(BaseModel):
    """What each policy served at one origin and how it scored on the window after it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin: Origin
    challenger: str
    outcome: str
    served: dict[str, str]
    scores: dict[str, Scores]


class Overall(BaseModel):
    """A policy's error over every window together (row-weighted)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rmse: float
    mae: float
    wape: float


class BacktestReport(BaseModel):
    """The backtest's table, its overall scores and how often the champion changed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origins: tuple[OriginResult, ...]
    overall: dict[str, Overall]
    changes: dict[str, int]
    report_dir: str
    registry_root: str


def plan_origins(
    dates: np.ndarray, start_date: str, every_days: int, end_date: str
) -> list[Origin]:
    """Origins every ``every_days`` from ``start_date`` whose whole window is in the data."""
    last = np.datetime64(end_date or str(dates[-1]), "D")
    origins = []
    origin = np.datetime64(start_date, "D")
    while origin + np.timedelta64(every_days - 1, "D") <= last:
        window_last = origin + np.timedelta64(every_days - 1, "D")
        start = int(np.searchsorted(dates, origin, side="left"))
        stop = int(np.searchsorted(dates, window_last, side="right"))
        if stop > start:
            origins.append(
                Origin(date=str(origin), last_date=str(window_last), start=start, stop=stop)
            )
        origin = origin + np.timedelta64(every_days, "D")
    if not origins:
        raise SplitError(
            f"no backtest origin: from {start_date} every {every_days} days, no whole window "
            f"ends by {last} (the data runs {dates[0]} .. {dates[-1]})"
        )
    return origins


@task(
    name="plan_origins",
    cache_policy=ArtifactCache(libraries=("numpy",)),
    persist_result=True,
    result_serializer="json",
)
def plan_backtest_origins(
    table: TableData, start_date: str, every_days: int, end_date: str
) -> list[Origin]:
    """The backtest's origins over the table's dates."""
    return plan_origins(load_array(table.dates, mmap=True), start_date, every_days, end_date)


@task(
    name="cut_before",
    cache_policy=ArtifactCache(libraries=("numpy",)),
    persist_result=True,
    result_serializer="json",
)
def cut_before(table: TableData, origin: Origin, store_root: str) -> TableData:
    """The table's rows dated before the origin, as a table of its own (what that night saw)."""
    store = ArtifactStore(store_root)
    rows = origin.start
    arrays = {
        name: store.put_array(np.asarray(load_array(ref, mmap=True)[:rows]))
        for name, ref in (
            ("dates", table.dates),
            ("features", table.features),
            ("target", table.target),
        )
    }
    stations = None
    if table.stations is not None:
        stations = store.put_array(np.asarray(load_array(table.stations, mmap=True)[:rows]))
    dates = load_array(arrays["dates"], mmap=True)
    digest = hashlib.sha256(f"{table.source_sha256}:before:{origin.date}".encode()).hexdigest()
    return table.model_copy(
        update={
            "source": f"{table.source} before {origin.date}",
            "source_sha256": digest,
            "rows": rows,
            "first_date": str(dates[0]),
            "last_date": str(dates[-1]),
            "stations": stations,
            **arrays,
        }
    )


def decide(
    registry: Registry,
    challenger: ModelVersion,
    promotion: PromotionConfig,
    features: np.ndarray,
    target: np.ndarray,
    stations: np.ndarray | None,
    dates: np.ndarray,
    backend: str | None = None,
) -> Decision:
    """The registry's promotion rule, in one place (the rule lives in tasks.promotion)."""
    return promote(registry, challenger, features, target, stations, dates, promotion, backend)


def _rows(table: TableData, start: int, stop: int) -> dict[str, Any]:
    window = slice(start, stop)
    return {
        "features": load_array(table.features, mmap=True)[window],
        "target": load_array(table.target, mmap=True)[window],
        "stations": None
        if table.stations is None
        else load_array(table.stations, mmap=True)[window],
        "dates": load_array(table.dates, mmap=True)[window],
    }


@task(name="replay_origin", cache_policy=NO_CACHE, persist_result=False)
def replay_origin(
    registry_root: str,
    promotion: PromotionConfig,
    table: TableData,
    origin: Origin,
    before: TableData,
    plan: SplitPlan,
    data: NormalisedData,
    model: Forecaster,
    first: str | None,
    backend: str | None = None,
) -> OriginResult:
    """Register the origin's model, apply the promotion rule, score every policy's model
    (predicting where ``backend``'s Keras work runs: ``tasks.training.keras_work``)."""
    # Not cached: the decision depends on the backtest registry's champion at this point.
    registry = Registry(registry_root)
    metrics = {
        "best_epoch": model.best.epoch,
        "best_val_loss": model.best.val_loss,
        "members": len(model.members),
        "refit": model.refit,
        "origin": origin.date,
    }
    challenger = registry.register(
        model.model, data.statistics_file, metrics, before.source_sha256, plan.test
    )
    rows = _rows(before, plan.test.start, plan.test.stop)
    decision = decide(registry, challenger, promotion, **rows, backend=backend)
    window = _rows(table, origin.start, origin.stop)
    served = {
        "evidence": decision.champion_after,
        "always": challenger.version,
        "never": first or challenger.version,
    }
    scores = {
        policy: score_version(registry, registry.read_version(version), **window, backend=backend)
        for policy, version in served.items()
    }
    # The linear baseline, refitted on this origin's training rows.
    weights = fit_linear(
        load_array(data.x_train, mmap=True),
        load_array(before.target, mmap=True)[plan.train.start : plan.train.stop],
    )
    x = data.statistics.prepare_features(
        np.asarray(window["features"], dtype=np.float64), window["dates"]
    )
    scores["linear"] = regression_scores(
        np.asarray(window["target"], dtype=np.float64).ravel(), predict_linear(weights, x).ravel()
    )
    served["linear"] = f"linear@{origin.date}"
    return OriginResult(
        origin=origin,
        challenger=challenger.version,
        outcome=decision.outcome,
        served=served,
        scores=scores,
    )


def overall_scores(results: list[OriginResult], actual: list[np.ndarray]) -> dict[str, Overall]:
    """Scores over every window at once, from the per-window RMSE/MAE (row-weighted)."""
    overall = {}
    rows = np.array([len(a) for a in actual], dtype=np.float64)
    for policy in POLICIES:
        rmse = np.array([r.scores[policy].rmse for r in results])
        mae = np.array([r.scores[policy].mae for r in results])
        wape = np.array([r.scores[policy].wape for r in results])
        sums = np.array([float(np.abs(a).sum()) for a in actual])
        overall[policy] = Overall(
            rmse=float(np.sqrt(np.sum(rmse**2 * rows) / rows.sum())),
            mae=float(np.sum(mae * rows) / rows.sum()),
            wape=float(np.sum(wape * sums) / max(sums.sum(), 1e-9)),
        )
    return overall


def champion_changes(results: list[OriginResult]) -> dict[str, int]:
    """How many times each policy's served model changed after the first origin."""
    changes = {}
    for policy in POLICIES:
        served = [r.served[policy] for r in results]
        changes[policy] = sum(a != b for a, b in itertools.pairwise(served))
    return changes


def backtest_csv(results: list[OriginResult]) -> bytes:
    """One line per origin: the window, the decision and every policy's RMSE and MAE."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["origin", "last_date", "rows", "outcome"]
        + [f"{p}_{m}" for p in POLICIES for m in ("rmse", "mae")]
    )
    for r in results:
        writer.writerow(
            [r.origin.date, r.origin.last_date, r.origin.stop - r.origin.start, r.outcome]
            + [f"{getattr(r.scores[p], m):.1f}" for p in POLICIES for m in ("rmse", "mae")]
        )
    return buffer.getvalue().encode()


def backtest_plot(results: list[OriginResult]) -> bytes:
    """RMSE per window of every policy, as PNG bytes."""
    figure, axes = new_figure((8, 3.6), 80)
    origins = [np.datetime64(r.origin.date) for r in results]
    for policy in POLICIES:
        axes.plot(origins, [r.scores[policy].rmse for r in results], marker="o", label=policy)
    axes.set_ylabel("RMSE on the next window (bikes)")
    axes.set_title("Backtest: error of the model each policy serves")
    axes.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure_png(figure)


def backtest_markdown(report: BacktestReport) -> str:
    """The backtest as a table: per window, overall, and how often the champion changed."""
    header = "| origin | window | decision | " + " | ".join(POLICIES) + " |"
    lines = [
        "# Backtest (RMSE in bikes on each window)",
        "",
        header,
        "|" + "---|" * (3 + len(POLICIES)),
        *[
            f"| {r.origin.date} | {r.origin.stop - r.origin.start} days | {r.outcome} | "
            + " | ".join(f"{r.scores[p].rmse:,.0f}" for p in POLICIES)
            + " |"
            for r in report.origins
        ],
        "| **overall** | | | "
        + " | ".join(f"**{report.overall[p].rmse:,.0f}**" for p in POLICIES)
        + " |",
        "| champion changes | | | " + " | ".join(str(report.changes[p]) for p in POLICIES) + " |",
    ]
    return "\n".join(lines)


@task(name="publish_backtest", cache_policy=NO_CACHE, persist_result=False)
def publish_backtest(
    config: BacktestConfig, table: TableData, results: list[OriginResult], registry_root: str
) -> BacktestReport:
    """Write report/ (table CSV, plot, JSON) and post the table to the Prefect UI."""
    target = load_array(table.target, mmap=True)
    actual = [np.asarray(target[r.origin.start : r.origin.stop]).ravel() for r in results]
    report_dir = Path(config.backtest_dir).expanduser().resolve() / "report"
    report = BacktestReport(
        origins=tuple(results),
        overall=overall_scores(results, actual),
        changes=champion_changes(results),
        report_dir=str(report_dir),
        registry_root=registry_root,
    )
    publish_directory(
        report_dir,
        {
            "backtest.csv": backtest_csv(results),
            "backtest.png": backtest_plot(results),
            "backtest.json": json.dumps(
                report.model_dump(mode="json"), indent=2, allow_nan=False
            ).encode(),
        },
    )
    create_table_artifact(
        key="backtest",
        table=[
            {"origin": r.origin.date, "outcome": r.outcome}
            | {p: round(r.scores[p].rmse, 1) for p in POLICIES}
            for r in results
        ],
        description="RMSE of each policy's model on the window after each origin",
    )
    create_markdown_artifact(
        key="backtest-summary", markdown=backtest_markdown(report), description="Backtest"
    )
    return report
