"""A run's scores and its metrics.json, without Prefect (the model registry records them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.config import RetrainConfig
from tasks.storage.descriptors import Evaluation, Forecaster, Scores, SplitPlan
from tasks.storage.table import TableData


def regression_scores(actual: np.ndarray, predicted: np.ndarray) -> Scores:
    """RMSE, MAE, R² and WAPE (sum of absolute errors over sum of counts).

    WAPE stays finite on near-zero days, where a per-day percentage error explodes.
    """
    actual = np.asarray(actual, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"cannot score {predicted.shape} predictions against {actual.shape}")
    error = predicted - actual
    total = float(np.sum((actual - actual.mean()) ** 2))
    return Scores(
        rmse=float(np.sqrt(np.mean(error**2))),
        mae=float(np.mean(np.abs(error))),
        r2=1.0 - float(np.sum(error**2)) / total if total > 0 else float("nan"),
        wape=float(np.sum(np.abs(error)) / max(float(np.sum(np.abs(actual))), 1e-9)),
    )


def build_metrics(
    config: RetrainConfig,
    table: TableData,
    plan: SplitPlan,
    model: Forecaster,
    evaluation: Evaluation,
) -> dict[str, Any]:
    """Gather everything metrics.json records about a run."""
    first = model.members[0].run
    runs = [m.run for m in model.members] + [m.refit for m in model.members if m.refit]
    return {
        "best_epoch": model.best.epoch,
        "best_val_loss": model.best.val_loss,
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
        "epochs_trained": len(first.history),
        "members": [
            {
                "seed": m.seed,
                "best_epoch": m.best.epoch,
                "best_val_loss": m.best.val_loss,
                "refit_epochs": None if m.refit is None else len(m.refit.history),
            }
            for m in model.members
        ],
        "refit": model.refit,
        "parameters": model.parameters,
        "training_seconds": round(sum(run.seconds for run in runs), 3),
        "device": first.device.device,
        "strategy": first.device.strategy,
        "visible_gpus": list(first.device.visible_gpus),
        "tensorflow_version": first.device.tensorflow_version,
        "keras_version": first.device.keras_version,
        "config": config.model_dump(mode="json"),
    }
