"""Shared fixtures: a throwaway Prefect server for the session, and small generated data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from schemas.config import RetrainConfig, SplitConfig, TrainingConfig
from schemas.synthetic import make_day_frame, to_csv_bytes

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Run paths must stay under configured roots; tests write under the system temp folder.
os.environ.setdefault("BIKEFLOW_ROOTS", os.pathsep.join([os.getcwd(), tempfile.gettempdir()]))


@pytest.fixture(autouse=True, scope="session")
def prefect_server():
    """One temporary Prefect API (its own database) for the whole test session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def day_csv(tmp_path: Path) -> Path:
    """200 generated days in the day.csv format."""
    path = tmp_path / "day.csv"
    path.write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))
    return path


@pytest.fixture
def small_config(tmp_path: Path, day_csv: Path) -> RetrainConfig:
    """A retrain config over the generated days that trains in seconds."""
    return RetrainConfig(
        source=str(day_csv),
        store_root=str(tmp_path / "store"),
        output_dir=str(tmp_path / "out"),
        registry_root=str(tmp_path / "models"),
        split=SplitConfig(test_days=30),
        training=TrainingConfig(epochs=3, batch_size=16, learning_rate=0.05),
    )
