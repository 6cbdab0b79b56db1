"""Sweeps on a local Ray instance: the same leaderboard as the default runner, trained in Ray
worker processes. Skipped, with the reason, where the .[ray] extra does not install."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the .[ray] extra (ray) is not installed on this machine")
pytest.importorskip("prefect_ray", reason="the .[ray] extra (prefect-ray) is not installed")

from flows.cli.main import main
from tests.flows.sweep_runs import assert_same_scores, read_csv, sweep_flags

pytestmark = pytest.mark.slow


def test_a_ray_sweep_ranks_like_the_default_runner_in_ray_workers(
    reference_sweep: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import ray

    source, reference_dir = reference_sweep
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local instance, started and stopped
    flags = [*sweep_flags(tmp_path, source), "--task-runner", "ray", "--local-workers", "2"]
    assert main(flags) == 0
    assert not ray.is_initialized()  # the runner shut down the instance it started

    trials = read_csv(tmp_path / "board" / "trials.csv")
    reference = read_csv(reference_dir / "trials.csv")
    assert_same_scores(trials, reference)
    # Trained in Ray's worker processes, not in this one (which the default runner used).
    here = {t["worker"] for t in reference}
    assert len(here) == 1 and here == {f"{socket.gethostname()}/pid {os.getpid()}"}
    assert all(t["worker"] not in here and "/pid " in t["worker"] for t in trials)
    ranked = [r["label"] for r in read_csv(tmp_path / "board" / "leaderboard.csv")]
    assert ranked == [r["label"] for r in read_csv(reference_dir / "leaderboard.csv")]
