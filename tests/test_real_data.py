"""The default configuration on the real UCI day.csv (path from BIKEFLOW_DATA_DIR)."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from flows.cli.main import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.minutes(2),
    pytest.mark.real_data,
    pytest.mark.usefixtures("prefect_server"),
]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    value = os.environ.get("BIKEFLOW_DATA_DIR")
    if not value or not (Path(value) / "day.csv").is_file():
        pytest.skip("BIKEFLOW_DATA_DIR does not point at the UCI Bike Sharing files")
    return Path(value)


def test_real_day_csv_is_the_published_file(data_dir: Path):
    sums = dict(
        reversed(line.split())
        for line in (data_dir / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    assert hashlib.sha256((data_dir / "day.csv").read_bytes()).hexdigest() == sums["day.csv"]


def test_default_config_beats_the_mean_and_reaches_1500(data_dir: Path, tmp_path: Path):
    output = tmp_path / "check"
    code = main(
        [
            "run",
            "--source",
            str(data_dir / "day.csv"),
            "--output-dir",
            str(output),
            "--store-root",
            str(tmp_path / "store"),
            "--registry-root",
            str(tmp_path / "models"),
        ]
    )
    assert code == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["rows"] == 731 and metrics["split"]["test"]["days"] == 100
    assert metrics["split"]["test"]["first_date"] == "2012-09-23"
    assert metrics["test_rmse"] <= 1500
    assert metrics["test_rmse"] < metrics["baselines"]["training_mean"]["rmse"]


def test_real_hour_csv_runs_end_to_end_with_missing_hours_as_a_warning(
    data_dir: Path, tmp_path: Path
):
    output = tmp_path / "hourly"
    code = main(
        [
            "run",
            "--source",
            str(data_dir / "hour.csv"),
            "--granularity",
            "hour",
            "--output-dir",
            str(output),
            "--store-root",
            str(tmp_path / "store"),
            "--registry-root",
            str(tmp_path / "registry"),
            "--batch-size",
            "64",
            "--epochs",
            "3",
        ]
    )
    assert code == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["rows"] == 17379 and metrics["split"]["test"]["days"] == 100
    assert metrics["test_rmse"] < metrics["baselines"]["training_mean"]["rmse"]
    report = json.loads((output / "validation.json").read_text())
    assert report["ok"] is True and not report["failures"]
    assert any(w["value"] == "165 hour(s) missing in 75 gap(s)" for w in report["warnings"])
