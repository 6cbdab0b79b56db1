"""The forecaster preset through the retrain flow on the real UCI day.csv, 5 seeds.

The path comes from BIKEFLOW_DATA_DIR. Each seed is one run of the flow with
``--preset forecaster`` (3 members in parallel child processes, at most 2 at once, each
refitted on training+validation rows), so the figure is what users get.
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.minutes(14),
    pytest.mark.real_data,
    pytest.mark.usefixtures("prefect_server"),
]

SEED_FIGURE_RMSE = 1170  # the seed's test RMSE, picked on the test set
TARGET_RMSE = 950  # issue 11: median test RMSE over 5 seeds, through the flow


@pytest.fixture(scope="module")
def preset_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    value = os.environ.get("BIKEFLOW_DATA_DIR")
    if not value or not (Path(value) / "day.csv").is_file():
        pytest.skip("BIKEFLOW_DATA_DIR does not point at the UCI Bike Sharing files")
    from benchmarks.preset import run_preset

    result = run_preset(Path(value).resolve() / "day.csv", work=tmp_path_factory.mktemp("preset"))
    # Printed for BENCHMARKS.md (pytest -s shows it).
    print(json.dumps({k: v for k, v in result.items() if k != "preset"}, indent=2))
    return result


def test_the_forecaster_reaches_the_target_over_five_seeds_through_the_flow(
    preset_result: dict[str, Any],
):
    runs = preset_result["runs"]
    assert [run["seed"] for run in runs] == [0, 1, 2, 3, 4]
    # Every member's epoch count was chosen on validation; the test window was scored once.
    assert all(len(run["epochs"]) == 3 for run in runs)
    assert preset_result["median_test_rmse"] <= TARGET_RMSE


def test_the_forecaster_beats_the_seed_and_the_baselines(preset_result: dict[str, Any]):
    median = preset_result["median_test_rmse"]
    assert median < SEED_FIGURE_RMSE
    for scores in preset_result["baselines"].values():
        assert median < scores["rmse"]
