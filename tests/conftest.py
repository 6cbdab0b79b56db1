"""Shared fixtures: a throwaway Prefect server for the session, and small generated data."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

# Prefect reads PREFECT_HOME when it is first imported: give this test process a home of its
# own (before the import below), so that the runs the tests start in subprocesses (the CLI's
# embedded server, its cache records) never share ~/.prefect with the user or with another
# pytest worker (-n 2; each worker imports this file itself, after the controller did).
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(
    prefix=f"bikeflow-tests-prefect-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-"
)

# Tests that call a flow without the session server (prefect_server) get Prefect's ephemeral
# one, which gives up after 20 s by default; on a loaded CI machine (two xdist workers
# training, a deployment worker beside them) its start has taken longer. Subprocesses the
# tests start (the CLI sets its own default too) inherit this.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import numpy as np
import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness

from schemas.config import RetrainConfig, SplitConfig, TrainingConfig
from schemas.records import FEATURE_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.storage.store import ArtifactStore
from tasks.storage.table import TableData

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Run paths must stay under configured roots; tests write under the system temp folder.
os.environ.setdefault("BIKEFLOW_ROOTS", os.pathsep.join([os.getcwd(), tempfile.gettempdir()]))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the files marked ``minutes(n)`` first, longest first, keeping each file together.

    xdist (``--dist loadfile --no-loadscope-reorder``, pyproject.toml) hands the files to its
    two workers in collection order. Its default order, most tests first, ran the two-test
    real-data files last: a 14-minute file then kept one worker busy long after the other had
    finished. Longest first lets both finish together. ``n`` is the file's minutes in CI.
    """

    def minutes(item: pytest.Item) -> float:
        marker = item.get_closest_marker("minutes")
        return 0.0 if marker is None else float(marker.args[0])

    weight = {item.path: minutes(item) for item in items}
    items.sort(key=lambda item: -weight[item.path])  # stable: file order is kept


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """One temporary Prefect API (its own database) for each test process, for every test.

    Autouse: a test that runs a flow, a task or an artifact without it would make Prefect start
    an ephemeral API server of its own, which lives (and polls) until the process exits and,
    on a loaded machine, has taken longer than its start-up timeout. One server a process.
    """
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def day_csv(tmp_path: Path) -> Path:
    """200 generated days in the day.csv format."""
    path = tmp_path / "day.csv"
    path.write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))
    return path


@pytest.fixture
def table_from_frame() -> Callable[[ArtifactStore, pd.DataFrame], TableData]:
    """Build a validated-table descriptor from a generated frame (stations if it has them)."""

    def build(store: ArtifactStore, frame: pd.DataFrame) -> TableData:
        dates = frame["dteday"].to_numpy().astype("datetime64[D]")
        has_stations = "station" in frame.columns
        return TableData(
            source="generated",
            source_sha256="0" * 64,
            rows=len(frame),
            first_date=str(dates[0]),
            last_date=str(dates[-1]),
            feature_names=FEATURE_COLUMNS,
            dates=store.put_array(dates),
            features=store.put_array(frame[list(FEATURE_COLUMNS)].to_numpy(np.float32)),
            target=store.put_array(frame[["cnt"]].to_numpy(np.float32)),
            report=store.put_json({}),
            stations=store.put_array(frame["station"].to_numpy(np.int64)) if has_stations else None,
        )

    return build


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
