"""Prefect's own timeout on a CLI run comes from training.timeout_minutes.

A training itself is bounded by the child's watchdog (tests/tasks/training/test_timeout.py):
Prefect's task timeout cannot interrupt a worker thread that waits on the child.
"""

from __future__ import annotations

import pytest

from flows.cli.run import REST_OF_THE_RUN_SECONDS, timed_retrain
from schemas.config import RetrainConfig


@pytest.mark.parametrize(
    ("members", "parallel", "refit", "rounds"),
    [(1, 2, False, 1), (3, 2, False, 2), (3, 2, True, 4), (4, 4, True, 2)],
)
def test_the_run_times_out_after_every_training_round_and_the_rest(
    members: int, parallel: int, refit: bool, rounds: int
):
    training = {
        "timeout_minutes": 10,
        "ensemble_size": members,
        "parallel_members": parallel,
        "refit": refit,
    }
    flow = timed_retrain(RetrainConfig.model_validate({"training": training}))
    assert flow.name == "retrain"
    assert flow.timeout_seconds == pytest.approx(600.0 * rounds + REST_OF_THE_RUN_SECONDS)
