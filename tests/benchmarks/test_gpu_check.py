"""benchmarks/gpu_check.py at small sizes, where neither TensorFlow nor Prefect can be imported."""

import json
import subprocess
import sys

import pytest

from benchmarks.common import ROOT, child_env

pytestmark = [pytest.mark.slow, pytest.mark.minutes(2)]

# As on an accelerator machine that carries only JAX: any import of these fails. (Keras asks
# for TensorFlow only where it may be absent, so that is no failure; Prefect is never asked.)
BLOCKED = ("tensorflow", "prefect")
WRAPPER = """
import runpy, sys
for name in {blocked!r}:
    sys.modules[name] = None
sys.argv = ["benchmarks/gpu_check.py", *{argv!r}]
runpy.run_path("benchmarks/gpu_check.py", run_name="__main__")
"""
SMALL = ["--epochs", "2", "--stations", "20", "--hours", "4", "--large-batch", "32"]
SMALL += ["--throughput-epochs", "1", "--parity-epochs", "2"]


def run_check(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the check in a fresh interpreter with TensorFlow and Prefect blocked."""
    code = WRAPPER.format(blocked=BLOCKED, argv=[*SMALL, *argv])
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_gpu_check_runs_without_tensorflow_or_prefect_and_reports_every_figure():
    done = run_check()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-2])
    assert done.stdout.startswith("device: ")
    assert [step["members"] for step in figures["steps"]] == [1, 3]
    assert all(step["us_per_step"] > 0 for step in figures["steps"])
    assert (
        figures["throughput"]["rows"] == 20 * 4 and figures["throughput"]["samples_per_second"] > 0
    )
    parity = figures["parity"]
    assert parity["epochs"] == 2
    if figures["accelerator"]:
        assert parity["prediction_max_abs"] < 1e-3
    else:
        # CPU against CPU: the trainer's same seed gives the same history, bit for bit.
        assert "no accelerator found" in done.stdout
        assert parity["history_max_abs"] == 0 and parity["prediction_max_abs"] == 0


def test_gpu_check_requiring_an_accelerator_stops_at_once_without_one():
    done = run_check("--require-accelerator")
    if "no accelerator" in done.stdout:
        assert done.returncode == 1, done.stderr[-3000:]
        assert "µs per step" not in done.stdout  # nothing was measured
    else:  # an accelerator machine: the check runs as without the flag
        assert done.returncode == 0, done.stderr[-3000:]
