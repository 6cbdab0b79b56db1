"""The benchmarks in quick mode (small sizes), so that their code cannot rot.

Each test is independent and takes minutes: each is an xdist work unit of its own, so both
workers take them (tests/conftest.py), and its ``minutes`` orders it among the other units.
"""

import re
import subprocess
import sys

import pytest

from benchmarks import database_overhead, orchestration, scale
from benchmarks.common import ROOT, child_env
from benchmarks.postgres import postgres_bin

pytestmark = pytest.mark.slow


@pytest.mark.minutes(0.5)
def test_training_benchmark_runs_and_both_trainers_agree():
    # In a fresh interpreter, as the script is run: TensorFlow and Keras state left by other
    # tests in this process (one CI run saw a 0.18 loss gap here, never reproduced alone)
    # cannot reach it, and its own settings of tasks.training.keras_fit cannot reach them.
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.training_throughput", "--quick"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "naive model.fit" in done.stdout and "ours (fit_model)" in done.stdout
    gap = re.search(r"max relative difference (\S+)", done.stdout)
    assert gap is not None, done.stdout
    assert float(gap.group(1)) < 1e-5  # several steps per execution: the same losses


@pytest.mark.minutes(2)
def test_scale_benchmark_runs_every_stage(capsys: pytest.CaptureFixture[str]):
    results = scale.main(["--quick"])
    out = capsys.readouterr().out
    assert "Cost of validation" in out and "Seconds per million rows" in out
    assert [r["rows"] for r in results] == [150, 1500, 150 * 24 * 3]
    assert all(r[s]["seconds"] > 0 for r in results for s in scale.PRE_TRAINING)
    assert "train" in results[-1] and results[-1]["train"]["train_rows"] > 0
    assert results[-1]["train"]["stations"] == 3  # trained with the station embedding


@pytest.mark.minutes(2.5)
def test_orchestration_benchmark_runs_cold_and_warm(capsys: pytest.CaptureFixture[str]):
    result = orchestration.main(["--quick"])
    out = capsys.readouterr().out
    assert "bikeflow warm, server" in out
    assert all(len(values) == 1 for values in result["times"].values())


@pytest.mark.minutes(2)
def test_dask_sweep_benchmark_runs_on_one_and_two_workers(capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("prefect_dask", reason="the .[dask] extra is not installed")
    from benchmarks import dask_sweep

    result = dask_sweep.main(["--quick"])
    assert "ratio to 1 worker" in capsys.readouterr().out
    assert [len(v) for v in result["times"].values()] == [1, 1] and result["speedup"] > 0


@pytest.mark.minutes(2.5)
@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed")
def test_database_overhead_benchmark_runs_on_sqlite_and_postgresql(
    capsys: pytest.CaptureFixture[str],
):
    result = database_overhead.main(["--quick"])
    out = capsys.readouterr().out
    assert "| bikeflow warm |" in out and "x SQLite" in out
    medians = result["medians"]
    workloads = {key.split(" | ")[0] for key in medians}
    assert len(workloads) == 3
    for workload in workloads:
        assert medians[f"{workload} | sqlite"] > 0 and medians[f"{workload} | postgresql"] > 0
