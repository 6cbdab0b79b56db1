"""Publish: assemble the run's output folder atomically and post the report to the Prefect UI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict

from schemas.config import RetrainConfig
from tasks.drift import NewDataReport
from tasks.evaluate import Evaluation
from tasks.normalise import NormalisedData
from tasks.select import BestEpoch
from tasks.split import SplitPlan
from tasks.store import publish_directory
from tasks.train import TrainingRun
from tasks.validate import TableData

OUTPUT_FILES = (
    "model.keras",
    "normalisation.json",
    "metrics.json",
    "history.csv",
    "predictions.csv",
    "predictions.png",
    "validation.json",
)


class RunSummary(BaseModel):
    """What a retraining run produced, in a few numbers and one folder."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    output_dir: str
    best_epoch: int
    val_rmse: float
    test_rmse: float
    test_mae: float
    baseline_rmse: dict[str, float]
    data_sha256: str
    # New rows since the champion's data and their drift (tasks.drift); trained is False when
    # a ``retrain_when: new-data`` run found none and ended before training.
    new_data: NewDataReport | None = None
    trained: bool = True


def build_metrics(
    config: RetrainConfig,
    table: TableData,
    plan: SplitPlan,
    run: TrainingRun,
    best: BestEpoch,
    evaluation: Evaluation,
) -> dict[str, Any]:
    """Gather everything metrics.json records about a run."""
    return {
        "best_epoch": best.epoch,
        "best_val_loss": best.val_loss,
        "val_rmse": evaluation.validation.rmse,
        "val_mae": evaluation.validation.mae,
        "test_rmse": evaluation.test.rmse,
        "test_mae": evaluation.test.mae,
        "test_r2": evaluation.test.r2,
        "test_wape": evaluation.test.wape,
        "baselines": {name: scores.model_dump() for name, scores in evaluation.baselines.items()},
        "data_sha256": table.source_sha256,
        "source": table.source,
        "rows": table.rows,
        "split": plan.model_dump(),
        "epochs_trained": len(run.history),
        "training_seconds": round(run.seconds, 3),
        "device": run.device.device,
        "strategy": run.device.strategy,
        "visible_gpus": list(run.device.visible_gpus),
        "tensorflow_version": run.device.tensorflow_version,
        "keras_version": run.device.keras_version,
        "config": config.model_dump(mode="json"),
    }


def history_csv(run: TrainingRun) -> bytes:
    """One line per epoch: epoch, loss, val_loss, learning_rate."""
    lines = ["epoch,loss,val_loss,learning_rate"]
    lines += [f"{r.epoch},{r.loss:.6g},{r.val_loss:.6g},{r.learning_rate:.6g}" for r in run.history]
    return ("\n".join(lines) + "\n").encode()


def summary_markdown(metrics: dict[str, Any], output_dir: Path) -> str:
    """The run's page in the UI: best epoch, scores beside the baselines, where the files are."""
    rows = [
        (
            "model",
            metrics["test_rmse"],
            metrics["test_mae"],
            metrics["test_r2"],
            metrics["test_wape"],
        )
    ]
    for name, scores in metrics["baselines"].items():
        rows.append((name, scores["rmse"], scores["mae"], scores["r2"], scores["wape"]))
    split = metrics["split"]
    lines = [
        "# Retraining run",
        "",
        f"Best epoch **{metrics['best_epoch']}** of {metrics['epochs_trained']} "
        f"(chosen on validation loss; validation RMSE {metrics['val_rmse']:.0f} bikes).",
        "",
        f"Test window {split['test']['first_date']} .. {split['test']['last_date']} "
        f"({split['test']['days']} days), scored once:",
        "",
        "| predictor | RMSE | MAE | R² | WAPE |",
        "|---|---|---|---|---|",
        *[f"| {n} | {r:.0f} | {m:.0f} | {q:.3f} | {w:.1%} |" for n, r, m, q, w in rows],
        "",
        f"Trained on {metrics['device']} ({metrics['strategy']}), TensorFlow "
        f"{metrics['tensorflow_version']}; data sha256 `{metrics['data_sha256'][:12]}`.",
        "",
        f"Outputs: `{output_dir}`",
    ]
    if "new_data" in metrics:
        lines += ["", metrics["new_data"]["summary"] + "."]
    return "\n".join(lines)


@task(name="publish_run")
def publish_run(
    config: RetrainConfig,
    table: TableData,
    plan: SplitPlan,
    data: NormalisedData,
    run: TrainingRun,
    best: BestEpoch,
    evaluation: Evaluation,
    new_data: NewDataReport | None = None,
) -> RunSummary:
    """Write the output folder (swapped in whole) and the run's table and markdown artifacts."""
    output_dir = Path(config.output_dir).expanduser().resolve()
    metrics = build_metrics(config, table, plan, run, best, evaluation)
    if new_data is not None:
        metrics["new_data"] = {**new_data.model_dump(mode="json"), "summary": new_data.summary}
    publish_directory(
        output_dir,
        {
            "model.keras": best.model,
            "normalisation.json": data.statistics_file,
            "metrics.json": json.dumps(metrics, indent=2, allow_nan=False).encode(),
            "history.csv": history_csv(run),
            "predictions.csv": evaluation.predictions,
            "predictions.png": evaluation.plot,
            "validation.json": table.report,
        },
    )
    scores = [
        {"predictor": "model", **evaluation.test.model_dump()},
        *({"predictor": name, **s.model_dump()} for name, s in evaluation.baselines.items()),
    ]
    create_table_artifact(
        key="test-scores", table=scores, description="Test-window scores in bike counts"
    )
    create_markdown_artifact(
        key="run-summary",
        markdown=summary_markdown(metrics, output_dir),
        description="Retraining run",
    )
    return RunSummary(
        output_dir=str(output_dir),
        best_epoch=best.epoch,
        val_rmse=evaluation.validation.rmse,
        test_rmse=evaluation.test.rmse,
        test_mae=evaluation.test.mae,
        baseline_rmse={name: s.rmse for name, s in evaluation.baselines.items()},
        data_sha256=table.source_sha256,
        new_data=new_data,
    )
