"""The trip throughput benchmark at a small size, so that its code cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import trips_throughput

pytestmark = pytest.mark.minutes(1)


def test_trips_benchmark_generates_aggregates_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    result = trips_throughput.main(["--trips", "20000", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "20,000 synthetic trips in 12 monthly files" in out and "trips / s" in out
    assert result["trips"] == 20_000 and result["files"] == 12
    assert result["rows"] == 366 * 24  # every hour of 2024, a leap year
    assert result["shared_rides"] == 0
    assert 0 < result["aggregate_peak_mib"] <= result["peak_mib"] <= trips_throughput.LIMIT_MIB
    names = sorted(path.name for path in (tmp_path / "trips-20000").iterdir())
    assert {name.split(".", 1)[1] for name in names if "tripdata" in name} == {
        "zip",
        "csv",
        "csv.gz",
    }
    # A second run finds the files and aggregates them again without generating.
    again = trips_throughput.main(["--trips", "20000", "--workdir", str(tmp_path)])
    assert again["generate_seconds"] == 0.0 and again["trips"] == 20_000
