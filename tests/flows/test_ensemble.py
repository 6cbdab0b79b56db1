"""The ensemble and the refit through the retrain flow, the bundle API, and batch prediction."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.predict import predict_batch
from flows.retrain import retrain
from schemas.config import PredictConfig, RetrainConfig
from schemas.records import COUNT_COLUMNS
from tasks.evaluation.metrics import regression_scores
from tasks.models.bundle import ModelBundle
from tasks.promotion.registry import Registry
from tests.flows.project_copy import task_run_states

pytestmark = pytest.mark.slow


@pytest.fixture
def ensemble_config(small_config: RetrainConfig) -> RetrainConfig:
    # TensorFlow's shape, a child process per member (test_ensemble_jax.py: one group on JAX).
    update = {"ensemble_size": 2, "refit": True, "backend": "tensorflow"}
    training = small_config.training.model_copy(update=update)
    return small_config.model_copy(update={"training": training})


def test_ensemble_refit_publishes_one_averaged_model_and_reruns_all_cached(
    ensemble_config: RetrainConfig, tmp_path: Path
):
    import keras

    first = retrain(ensemble_config, return_state=True)
    assert first.is_completed()
    summary = first.result()
    assert (summary.members, summary.refit) == (2, True)
    output = Path(summary.output_dir)
    metrics = json.loads((output / "metrics.json").read_text())
    members = metrics["members"]
    assert [m["seed"] for m in members] == [0, 1000]
    # Each refit trained for the epoch count its member's validation curve chose.
    assert all(m["refit_epochs"] == m["best_epoch"] for m in members)
    runs = task_runs(first)
    assert len(runs["train_model"]) == 4  # 2 members + 2 refits, in parallel child processes
    assert set(runs["train_model"]) == {"Completed"}

    model = keras.saving.load_model(output / "model.keras", safe_mode=True)
    assert [layer.name for layer in model.layers[-3:]] == ["member_1", "member_2", "average"]
    card = (output / "model_card.md").read_text()
    for part in ("Members: 2", "Refit: yes", f"Parameters: {model.count_params():,}", "average"):
        assert part in card
    assert "2 hidden layers of 16 sigmoid units" in card  # the small config's seed MLP

    # Parity: the published folder, through the bundle API on raw rows, gives the flow's
    # test predictions (predictions.csv rounds to 0.1) and its recorded test RMSE.
    days = pd.read_csv(ensemble_config.source, parse_dates=["dteday"])
    flow_predictions = pd.read_csv(output / "predictions.csv")
    test_rows = days.iloc[-len(flow_predictions) :]
    bundle = ModelBundle.from_directory(output)
    predicted = bundle.predict(test_rows.drop(columns=list(COUNT_COLUMNS)))
    np.testing.assert_allclose(predicted, flow_predictions["predicted"], atol=0.05 + 1e-6)
    rmse = regression_scores(test_rows["cnt"].to_numpy(), predicted).rmse
    assert rmse == pytest.approx(metrics["test_rmse"], rel=1e-6)

    # The registry's champion is the ensemble, and batch prediction serves it.
    registry = Registry(ensemble_config.registry_root)
    champion = registry.require_champion()
    assert champion.files["model.keras"].sha256 == _sha(output / "model.keras")
    days_csv = tmp_path / "days.csv"
    test_rows.drop(columns=list(COUNT_COLUMNS)).assign(
        dteday=test_rows["dteday"].dt.strftime("%Y-%m-%d")
    ).to_csv(days_csv, index=False)
    written = predict_batch(
        PredictConfig(
            input_csv=str(days_csv),
            registry_root=ensemble_config.registry_root,
            output_csv=str(tmp_path / "predicted.csv"),
        )
    )
    batch = pd.read_csv(written.output_csv)
    np.testing.assert_array_equal(batch["predicted_cnt"], np.rint(np.clip(predicted, 0, None)))

    second = retrain(ensemble_config, return_state=True)
    again = task_runs(second)
    for step in (
        "normalise_features",
        "train_model",
        "select_best_epoch",
        "refit_data",
        "assemble_forecaster",
        "evaluate_model",
    ):
        assert set(again[step]) == {"Cached"}, step
    assert second.result().test_rmse == summary.test_rmse

    # A member alone is the same training task: member 0 of the ensemble, from the cache.
    alone = ensemble_config.model_copy(
        update={"training": ensemble_config.training.model_copy(update={"ensemble_size": 1})}
    )
    single = task_runs(retrain(alone, return_state=True))
    assert single["train_model"] == ["Cached", "Cached"]  # member 0 and its refit
    assert single["refit_data"] == ["Cached"]


EXPECTED = (
    "train_model",
    "select_best_epoch",
    "refit_data",
    "assemble_forecaster",
    "promote_model",
)


def task_runs(state) -> dict[str, list[str]]:
    """Task name -> the final state names of its runs in one flow run (all steps arrived)."""
    return task_run_states(str(state.state_details.flow_run_id), EXPECTED)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
