"""On JAX the flow's process never imports Keras: the run's training child assembles the model,
predicts the windows the evaluation scores and re-scores the promotion's models
(tasks/training/keras_work.py). Real Prefect, real JAX children, real TensorFlow to check."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.errors import TrainingError
from schemas.records import COUNT_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.models.bundle import ModelBundle
from tasks.training.keras_work import predict_counts
from tests.flows.test_clean_failures import _run

pytestmark = [pytest.mark.slow, pytest.mark.minutes(2)]

# Two runs in one process on JAX (the second with a champion to re-score), then what it imported.
SCRIPT = """
import json, sys
from flows.retrain import retrain
from schemas.config import RetrainConfig, SplitConfig, TrainingConfig

def config(days):
    return RetrainConfig(
        source=days, store_root="store", output_dir="out", registry_root="models",
        split=SplitConfig(test_days=30),
        training=TrainingConfig(epochs=3, batch_size=16, learning_rate=0.05, backend="jax"),
    )

first = retrain(config("days.csv"))
second = retrain(config("more.csv"))
print(json.dumps({
    "modules": sorted(m for m in ("keras", "tensorflow") if m in sys.modules),
    "promotions": [first.promotion.outcome, second.promotion.outcome],
}))
"""


def test_a_jax_run_keeps_keras_out_of_the_flow_process_and_scores_what_tensorflow_predicts(
    tmp_path: Path,
):
    days = make_day_frame(400, seed=3)
    (tmp_path / "days.csv").write_bytes(to_csv_bytes(days.iloc[:370]))
    (tmp_path / "more.csv").write_bytes(to_csv_bytes(days))
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))

    done = _run(tmp_path, "script.py")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # Trained, assembled, evaluated, promoted twice (the champion re-scored): no Keras here.
    assert report["modules"] == []
    assert report["promotions"][0] == "first-champion"
    assert report["promotions"][1] in ("promoted", "kept")

    # The published model, loaded in this process by Keras on TensorFlow, gives the counts the
    # JAX child predicted for the evaluation (predictions.csv rounds to 0.1).
    output = tmp_path / "out"
    flow_predictions = pd.read_csv(output / "predictions.csv")
    test_rows = days.iloc[-len(flow_predictions) :]
    predicted = ModelBundle.from_directory(output).predict(
        test_rows.drop(columns=list(COUNT_COLUMNS))
    )
    np.testing.assert_allclose(predicted, flow_predictions["predicted"], atol=0.05 + 1e-3)
    metrics = json.loads((output / "metrics.json").read_text())
    rmse = float(np.sqrt(np.mean((test_rows["cnt"].to_numpy() - predicted) ** 2)))
    assert rmse == pytest.approx(metrics["test_rmse"], rel=1e-4)

    # The same rows through the child's route and this process's route agree.
    bundle = ModelBundle.from_directory(output)
    raw = test_rows[list(bundle.raw_columns)].to_numpy(dtype=np.float64)
    dates = test_rows["dteday"].to_numpy().astype("datetime64[D]")
    in_child = predict_counts(bundle, raw, dates, None, "jax")
    np.testing.assert_allclose(in_child, predicted, rtol=1e-4, atol=1e-2)

    # Rows that do not fit the model are the caller's ValueError, before any child starts;
    # a model file the child cannot load is a TrainingError naming the work and the backend.
    with pytest.raises(ValueError, match="raw columns"):
        predict_counts(bundle, raw[:, :-1], dates, None, "jax")
    broken = ModelBundle(tmp_path / "days.csv", bundle.statistics)
    with pytest.raises(TrainingError, match="Keras predict on jax failed"):
        predict_counts(broken, raw, dates, None, "jax")
