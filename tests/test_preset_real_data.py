"""The forecaster preset on the real UCI day.csv (path from BIKEFLOW_DATA_DIR)."""

import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.real_data]

SEED_FIGURE_RMSE = 1170  # the seed's test RMSE, picked on the test set


@pytest.fixture(scope="module")
def preset_result() -> dict[str, Any]:
    value = os.environ.get("BIKEFLOW_DATA_DIR")
    if not value or not (Path(value) / "day.csv").is_file():
        pytest.skip("BIKEFLOW_DATA_DIR does not point at the UCI Bike Sharing files")
    from benchmarks.preset import run_preset

    return run_preset(Path(value) / "day.csv")


def test_preset_beats_the_seed_and_the_baselines_over_five_seeds(preset_result: dict[str, Any]):
    assert len(preset_result["runs"]) == 5
    median = preset_result["median_test_rmse"]
    assert median < SEED_FIGURE_RMSE
    for scores in preset_result["baselines"].values():
        assert median < scores["rmse"]
