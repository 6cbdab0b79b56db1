"""The exported champion, served by plain TensorFlow, agrees with ``bikeflow predict`` on real days.

For the seed recipe and for the forecaster preset (an ensemble of 3 refitted members, its
epochs as the preset sets them), trained by ``bikeflow run`` on the real UCI day.csv (path
from BIKEFLOW_DATA_DIR): its last 100 days go to ``bikeflow predict`` and, exported with
``bikeflow models export champion``, to ``tf.saved_model.load`` in a process that never
imports bikeflow.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli.main import main
from schemas.records import COUNT_COLUMNS
from tests.tasks.models.export_support import predict_and_serve

pytestmark = [
    pytest.mark.slow,
    pytest.mark.minutes(5),
    pytest.mark.real_data,
    pytest.mark.usefixtures("prefect_server"),
]
ROUNDING_SLACK = 1e-3


@pytest.fixture(scope="module")
def day_csv() -> Path:
    value = os.environ.get("BIKEFLOW_DATA_DIR")
    if not value or not (Path(value) / "day.csv").is_file():
        pytest.skip("BIKEFLOW_DATA_DIR does not point at the UCI Bike Sharing files")
    return Path(value).resolve() / "day.csv"


@pytest.mark.parametrize("preset", ["seed", "forecaster"])
def test_the_exported_champion_serves_what_bikeflow_predicts_on_the_last_100_days(
    day_csv: Path, tmp_path: Path, preset: str
):
    started = time.monotonic()
    paths = {name: tmp_path / name for name in ("out", "store", "models")}
    code = main(
        [
            "run",
            "--preset",
            preset,
            "--source",
            str(day_csv),
            "--output-dir",
            str(paths["out"]),
            "--store-root",
            str(paths["store"]),
            "--registry-root",
            str(paths["models"]),
        ]
    )
    assert code == 0
    trained = time.monotonic()
    last_days = pd.read_csv(day_csv).iloc[-100:].drop(columns=list(COUNT_COLUMNS))
    result = predict_and_serve(paths["models"], last_days, tmp_path / "check")
    print(
        f"{preset}: trained in {trained - started:.0f} s, predicted, exported and served in "
        f"{time.monotonic() - trained:.0f} s; largest distance {result['largest_distance']:.4f}; "
        f"same counts {np.mean(result['predicted_cnt'] == result['counts']):.0%}; first bikes "
        f"{np.round(result['bikes'][:3], 3).tolist()}, counts {result['counts'][:3].tolist()}"
    )
    assert len(result["counts"]) == 100
    # bikeflow predict writes rounded counts: half a bike, and float32's summation order.
    assert result["largest_distance"] <= 0.5 + ROUNDING_SLACK
    assert np.mean(result["predicted_cnt"] == result["counts"]) >= 0.99
