"""Prefect's own timeouts come from training.timeout_minutes: the task's and the run's."""

from __future__ import annotations

import pytest

from flows.cli.run import REST_OF_THE_RUN_SECONDS, timed_retrain
from schemas.config import RetrainConfig
from tasks.training.task import PREFECT_TIMEOUT_MARGIN_SECONDS, timed_train_model


def test_the_training_task_times_out_just_after_the_childs_own_watchdog():
    config = RetrainConfig.model_validate({"training": {"timeout_minutes": 1.5}})
    task = timed_train_model(config.training)
    assert task.name == "train_model"
    assert task.timeout_seconds == pytest.approx(90.0 + PREFECT_TIMEOUT_MARGIN_SECONDS)
    # The cache policy (and so the key) is the plain task's: a timeout is no part of a result.
    from tasks.training.task import train_model

    assert type(task.cache_policy) is type(train_model.cache_policy)


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
