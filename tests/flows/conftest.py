"""Flow tests talk to the session's Prefect server (a module sets NEEDS_PREFECT = False if not);
the default-runner sweep that the Dask and Ray sweeps are compared with (run once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flows.sweep_runs import read_csv, sweep_flags


@pytest.fixture(autouse=True)
def _prefect_api(request: pytest.FixtureRequest) -> None:
    """Start (once) and use the session's temporary Prefect API."""
    if getattr(request.module, "NEEDS_PREFECT", True):
        request.getfixturevalue("prefect_server")


@pytest.fixture(scope="session")
def reference_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The small sweep on the default thread pool: its data file and its leaderboard folder."""
    from flows.cli.main import main
    from schemas.synthetic import make_day_frame, to_csv_bytes

    folder = tmp_path_factory.mktemp("default-runner")
    source = folder / "day.csv"
    source.write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))
    assert main(sweep_flags(folder, source)) == 0
    assert len(read_csv(folder / "board" / "trials.csv")) == 2
    return source, folder / "board"
