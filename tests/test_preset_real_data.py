"""The forecaster preset on the real UCI day.csv (path from BIKEFLOW_DATA_DIR)."""

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.real_data, pytest.mark.usefixtures("prefect_server")]

SEED_FIGURE_RMSE = 1170  # the seed's test RMSE, picked on the test set
TARGET_RMSE = 1000  # issue 4: median test RMSE over 5 seeds, everything chosen on validation


@pytest.fixture(scope="module")
def preset_result() -> dict[str, Any]:
    value = os.environ.get("BIKEFLOW_DATA_DIR")
    if not value or not (Path(value) / "day.csv").is_file():
        pytest.skip("BIKEFLOW_DATA_DIR does not point at the UCI Bike Sharing files")
    from benchmarks.preset import run_preset

    return run_preset(Path(value) / "day.csv")


def test_preset_reaches_the_target_over_five_independent_seeds(preset_result: dict[str, Any]):
    runs = preset_result["runs"]
    assert [run["seed"] for run in runs] == [0, 1, 2, 3, 4]
    # Every member's epoch count was chosen on validation; the test window was scored once.
    assert all(len(run["epochs"]) == preset_result["preset"]["ensemble"] for run in runs)
    assert preset_result["median_test_rmse"] <= TARGET_RMSE


def test_preset_beats_the_seed_and_the_baselines(preset_result: dict[str, Any]):
    median = preset_result["median_test_rmse"]
    assert median < SEED_FIGURE_RMSE
    for scores in preset_result["baselines"].values():
        assert median < scores["rmse"]
