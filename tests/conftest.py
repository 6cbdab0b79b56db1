"""Shared fixtures: a throwaway Prefect server for the session, and small generated data."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Prefect reads PREFECT_HOME when it is first imported: give this test process a home of its
# own (before the import below), so that the runs the tests start in subprocesses (the CLI's
# embedded server, its cache records) never share ~/.prefect with the user or with another
# pytest worker (-n 3; each worker imports this file itself, after the controller did).
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(
    prefix=f"bikeflow-tests-prefect-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-"
)

# Tests that call a flow without the session server (prefect_server) get Prefect's ephemeral
# one, which gives up after 20 s by default; on a loaded CI machine (three xdist workers
# training, a deployment worker beside them) its start has taken longer. Subprocesses the
# tests start (the CLI sets its own default too) inherit this.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import numpy as np
import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness
from xdist.scheduler import LoadFileScheduling

from schemas.config import RetrainConfig, SplitConfig, TrainingConfig
from schemas.records import FEATURE_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.storage.store import ArtifactStore
from tasks.storage.table import TableData

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The training children's JAX compilation cache (tasks/training/compile_cache.py): never the
# user's, and one for the whole session. The controller makes it before its xdist workers
# start, so they inherit the variable and share the folder; the process that made it removes it.
_OWN_JAX_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_JAX_CACHE = tempfile.mkdtemp(prefix="bikeflow-tests-jax-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_JAX_CACHE

# Run paths must stay under configured roots; tests write under the system temp folder.
os.environ.setdefault("BIKEFLOW_ROOTS", os.pathsep.join([os.getcwd(), tempfile.gettempdir()]))


# xdist work units. A unit runs on one xdist worker, its tests one after the other; by default
# a unit is a file (``--dist loadfile``), so module-scoped fixtures are set up once. Two
# exceptions, declared here because xdist's controller sees node ids only (not markers; and
# xdist's own ``xdist_group`` no longer reaches it under pytest 9.2):
# - these files are one unit, so one worker runs them in a row and they share one Prefect
#   stack (tests/deployments/conftest.py) instead of starting one each;
SHARED_UNITS = {
    "tests/deployments/test_load.py": "prefect-stack",
    "tests/deployments/test_ui.py": "prefect-stack",
    "tests/deployments/test_deployments.py": "prefect-stack",
}
# - each test of these files is a unit of its own: long, independent tests, which both
#   workers can then take at once.
SPREAD_FILES = frozenset({"tests/benchmarks/test_quick.py"})


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its file, its shared unit, or itself (SPREAD_FILES)."""
    file = nodeid.split("::", 1)[0]
    if file in SPREAD_FILES:
        return nodeid
    return SHARED_UNITS.get(file, file)


class WorkUnitScheduling(LoadFileScheduling):
    """xdist's ``loadfile`` scheduling, with the units of ``work_unit``."""

    def _split_scope(self, nodeid: str) -> str:
        return work_unit(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    """Schedule ``--dist loadfile`` (pyproject.toml) by ``work_unit`` instead of by file."""
    if config.getvalue("dist") == "loadfile":
        return WorkUnitScheduling(config, log)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the longest work units first, each unit's tests together.

    xdist hands the units to its workers in this order (``--no-loadscope-reorder``,
    pyproject.toml). Its default order, most tests first, ran the two-test real-data files
    last: a 14-minute file then kept one worker busy long after the others had finished.
    Longest first lets them finish together. ``minutes(n)`` is a file's minutes in CI (a
    test's own marker, in SPREAD_FILES, that test's); a shared unit's minutes are its files'.
    """

    def minutes(item: pytest.Item) -> float:
        marker = item.get_closest_marker("minutes")
        return 0.0 if marker is None else float(marker.args[0])

    # Each file's (or spread test's) minutes once, summed over the unit's files.
    parts: dict[str, dict[str, float]] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        unit = work_unit(item.nodeid)
        part = item.nodeid if unit == item.nodeid else item.nodeid.split("::", 1)[0]
        parts.setdefault(unit, {})[part] = minutes(item)
        first.setdefault(unit, index)
    weight = {unit: sum(values.values()) for unit, values in parts.items()}
    position = {id(item): index for index, item in enumerate(items)}

    def order(item: pytest.Item) -> tuple[float, int, int]:
        unit = work_unit(item.nodeid)
        return (-weight[unit], first[unit], position[id(item)])

    items.sort(key=order)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's JAX compilation cache, in the process that made it."""
    if _OWN_JAX_CACHE is not None:
        shutil.rmtree(_OWN_JAX_CACHE, ignore_errors=True)


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
