"""Publish: assemble the run's output folder atomically and post the report to the Prefect UI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict

from schemas.config import RetrainConfig
from tasks.evaluation.drift import NewDataReport
from tasks.evaluation.figures import markdown_image, png_bytes_data_uri
from tasks.evaluation.lineage import with_lineage
from tasks.evaluation.metrics import build_metrics
from tasks.evaluation.model_card import full_model_card
from tasks.prepare.normalise import NormalisedData
from tasks.storage.descriptors import Evaluation, Forecaster, SplitPlan
from tasks.storage.publish import publish_directory
from tasks.storage.store import FileRef, read_bytes
from tasks.storage.table import TableData

OUTPUT_FILES = (
    "model.keras",
    "normalisation.json",
    "metrics.json",
    "history.csv",
    "predictions.csv",
    "predictions.png",
    "validation.json",
    "model_card.md",
)


class PromotionNote(BaseModel):
    """The promotion decision as the run's summary states it (the registry keeps the record)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: str  # first-champion, promoted or rejected (tasks.promotion.registry.Decision)
    reason: str  # the evidence, in words
    challenger: str
    champion_after: str


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
    members: int = 1
    refit: bool = False
    # New rows since the champion's data and their drift (tasks.evaluation.drift); trained is
    # False when a ``retrain_when: new-data`` run found none and ended before training.
    new_data: NewDataReport | None = None
    trained: bool = True
    # Set by the retrain flow once promote_model has decided (None: the run ended before).
    promotion: PromotionNote | None = None


def history_csv(model: Forecaster) -> bytes:
    """One line per epoch: epoch, loss, val_loss, learning_rate (a member column if several)."""
    several = len(model.members) > 1
    lines = [("member," if several else "") + "epoch,loss,val_loss,learning_rate"]
    for index, member in enumerate(model.members):
        prefix = f"{index + 1}," if several else ""
        lines += [
            f"{prefix}{r.epoch},{r.loss:.6g},{r.val_loss:.6g},{r.learning_rate:.6g}"
            for r in member.run.history
        ]
    return ("\n".join(lines) + "\n").encode()


def baseline_verdict(metrics: dict[str, Any]) -> str:
    """One plain sentence when the model does worse than the linear baseline, else ''."""
    linear = metrics["baselines"].get("linear_regression")
    if linear is None or metrics["test_rmse"] <= linear["rmse"]:
        return ""
    return (
        f"Warning: the model is worse than the linear-regression baseline (test RMSE "
        f"{metrics['test_rmse']:,.0f} > {linear['rmse']:,.0f}); --preset forecaster beats it."
    )


def flow_run_link(lineage: dict[str, Any] | None) -> list[str]:
    """A markdown line linking the flow run that made the model (none outside a flow run)."""
    run = (lineage or {}).get("flow_run")
    if not run:
        return []
    named = f"[{run['name']}]({run['ui_url']})" if run.get("ui_url") else f"`{run['name']}`"
    deployment = f", deployment `{run['deployment']}`" if run.get("deployment") else ""
    return ["", f"Flow run {named} (id `{run['id']}`){deployment}."]


def summary_markdown(metrics: dict[str, Any], output_dir: Path, card: str = "") -> str:
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
        *flow_run_link(metrics.get("lineage")),
    ]
    verdict = baseline_verdict(metrics)
    if verdict:
        lines[1:1] = ["", f"**{verdict}**"]
    if card:
        # The card's headings one level down on this page.
        lines += ["", *("#" + line if line.startswith("#") else line for line in card.splitlines())]
    if "new_data" in metrics:
        lines += ["", metrics["new_data"]["summary"] + "."]
    return "\n".join(lines)


def prediction_plot_markdown(plot: FileRef) -> str:
    """The test window's predicted-against-actual plot (predictions.png) as a markdown image."""
    uri = png_bytes_data_uri(read_bytes(plot))
    return "\n".join(
        [
            "## Predicted against actual",
            "",
            markdown_image("Test window: predicted vs actual rentals (predictions.png)", uri),
        ]
    )


@task(name="publish_run")
def publish_run(
    config: RetrainConfig,
    table: TableData,
    plan: SplitPlan,
    data: NormalisedData,
    model: Forecaster,
    evaluation: Evaluation,
    new_data: NewDataReport | None = None,
) -> RunSummary:
    """Write the output folder (swapped in whole) and the run's table and markdown artifacts."""
    output_dir = Path(config.output_dir).expanduser().resolve()
    metrics = with_lineage(
        build_metrics(config, table, plan, model, evaluation),
        table.first_date,
        table.last_date,
        table.source_sha256,
    )
    if new_data is not None:
        metrics["new_data"] = {**new_data.model_dump(mode="json"), "summary": new_data.summary}
    card = full_model_card(model.card, metrics)
    publish_directory(
        output_dir,
        {
            "model.keras": model.model,
            "normalisation.json": data.statistics_file,
            "metrics.json": json.dumps(metrics, indent=2, allow_nan=False).encode(),
            "history.csv": history_csv(model),
            "predictions.csv": evaluation.predictions,
            "predictions.png": evaluation.plot,
            "validation.json": table.report,
            "model_card.md": card.encode(),
        },
        field="output_dir",
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
        markdown=summary_markdown(metrics, output_dir, card)
        + "\n\n"
        + prediction_plot_markdown(evaluation.plot),
        description="Retraining run",
    )
    return RunSummary(
        output_dir=str(output_dir),
        best_epoch=model.best.epoch,
        val_rmse=evaluation.validation.rmse,
        test_rmse=evaluation.test.rmse,
        test_mae=evaluation.test.mae,
        baseline_rmse={name: s.rmse for name, s in evaluation.baselines.items()},
        data_sha256=table.source_sha256,
        members=len(model.members),
        refit=model.refit,
        new_data=new_data,
    )
