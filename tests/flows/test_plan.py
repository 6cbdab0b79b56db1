"""``bikeflow plan`` then ``bikeflow run``: the plan's cached / will-run matches the run's
Cached / Completed for every step, in every case the plan names a reason for (real runs of a
copy of the project in fresh interpreters, so code edits are real and TensorFlow is checked
absent after planning)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from flows.cli.main import main
from schemas.config import RetrainConfig, TrainingConfig
from schemas.synthetic import make_day_frame, to_csv_bytes
from tests.flows.project_copy import ProjectCopy, task_run_states, task_states

pytestmark = [pytest.mark.slow, pytest.mark.minutes(5)]

EXPECTED_STATE = {"cached": "Cached", "will run": "Completed"}
ALWAYS = ("check_new_data", "publish_run", "promote_model")
CACHED_STEPS = (
    "ingest_source",
    "validate_records",
    "split_by_date",
    "normalise_features",
    "train_model",
    "select_best_epoch",
    "assemble_forecaster",
    "evaluate_model",
)


def plan_then_run(
    copy: ProjectCopy, config: RetrainConfig, through_prefect: bool = False
) -> dict[str, dict]:
    """Plan, run, and check that every step's planned fate is its state in the run.

    The plan reads the record files without Prefect (the embedded default); with
    ``through_prefect`` it is made a second time against the API, through Prefect's result
    store, and must be the same.
    """
    planned = copy.plan(config.model_dump_json())
    assert planned["tensorflow"] is False
    # retrain_when: new-data asks the registry for the champion; it imports no Prefect either.
    assert planned["prefect"] is False
    if through_prefect:
        again = copy.plan(config.model_dump_json(), api=True)
        assert again["prefect"] is True
        assert again["steps"] == planned["steps"]
    ran = copy.retrain(config.model_dump_json())
    assert ran["state"] == "Completed"
    states = task_states(ran["flow_run_id"])
    steps = planned["steps"]
    ran_steps = {name for name, step in steps.items() if step["status"] != "skipped"}
    assert {name: EXPECTED_STATE[steps[name]["status"]] for name in ran_steps} == {
        name: states[name] for name in ran_steps
    }
    assert not {name for name in steps if steps[name]["status"] == "skipped"} & set(states)
    return steps


def reasons(steps: dict[str, dict], name: str) -> str:
    return " | ".join(steps[name]["reasons"])


def test_plan_agrees_with_the_run_that_follows(tmp_path: Path, small_config: RetrainConfig):
    copy = ProjectCopy(tmp_path / "project")
    copy.add_evaluate_offset()  # a helper module only evaluate imports

    # Nothing cached yet.
    steps = plan_then_run(copy, small_config)
    assert reasons(steps, "ingest_source") == "no cached run of this step yet"
    assert "upstream step ingest_source will run" in reasons(steps, "validate_records")

    # Everything cached.
    steps = plan_then_run(copy, small_config)
    assert {n: s["status"] for n, s in steps.items() if n not in ALWAYS} == dict.fromkeys(
        CACHED_STEPS, "cached"
    )

    # A parameter changed.
    changed = small_config.model_copy(
        update={"training": TrainingConfig(epochs=2, batch_size=16, learning_rate=0.05)}
    )
    steps = plan_then_run(copy, changed)
    assert reasons(steps, "train_model") == "a parameter changed: training.epochs 3 -> 2"
    assert steps["normalise_features"]["status"] == "cached"
    assert "upstream step train_model will run" in reasons(steps, "select_best_epoch")

    # A module's code changed: a helper only evaluate imports.
    copy.edit("tasks/report_offset.py", "OFFSET = 0.0", "OFFSET = 1000.0")
    steps = plan_then_run(copy, changed)
    assert reasons(steps, "evaluate_model") == "code changed: tasks/report_offset.py"
    assert steps["select_best_epoch"]["status"] == "cached"

    # A cached artifact is corrupt: normalise rebuilds it, the steps after it stay cached.
    store = Path(small_config.store_root) / "objects"
    arrays = {p: np.load(p, allow_pickle=False) for p in store.rglob("*.npy")}
    normalised = [
        p for p, a in arrays.items() if a.ndim == 2 and a.shape[1] == 11 and a.shape[0] < 200
    ]
    x_train = max(normalised, key=lambda p: arrays[p].shape[0])
    x_train.write_bytes(x_train.read_bytes()[:-64])
    steps = plan_then_run(copy, changed, through_prefect=True)
    assert "cached artifact missing or corrupt" in reasons(steps, "normalise_features")
    assert str(x_train) in reasons(steps, "normalise_features")
    assert steps["train_model"]["status"] == "cached"

    # The source changed.
    Path(small_config.source).write_bytes(to_csv_bytes(make_day_frame(200, seed=2)))
    steps = plan_then_run(copy, changed)
    assert reasons(steps, "ingest_source").startswith("the source's digest changed (")
    assert all(step["status"] == "will run" for step in steps.values())

    # Nothing new since the champion, and the config asks to retrain only on new data.
    lazy = changed.model_copy(update={"retrain_when": "new-data"})
    steps = plan_then_run(copy, lazy)
    assert steps["train_model"]["status"] == "skipped"
    assert steps["validate_records"]["status"] == "cached"
    assert steps["report_no_new_data"]["status"] == "will run"


def test_plan_command_prints_each_step(
    small_config: RetrainConfig, capsys: pytest.CaptureFixture[str]
):
    args = [
        "plan",
        "--source",
        small_config.source,
        "--store-root",
        small_config.store_root,
        "--epochs",
        "3",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "0 of 11 steps cached" in out
    assert "ingest_source        will run  " in out
    assert "publish_run          will run  runs in every run" in out
    assert main(["plan", "--epochs", "0"]) == 1


PLAN_CALLS = """
import json, sys
from tasks.plan.engine import plan_steps
from schemas.config import RetrainConfig
plans = plan_steps(RetrainConfig.model_validate_json(sys.argv[1]))
print(json.dumps([[plan.step, plan.status] for plan in plans]))
"""


def plan_calls_then_run(copy: ProjectCopy, config: RetrainConfig) -> dict[str, list[str]]:
    """Plan, run, and check every call: each step's planned fates are its task runs' states."""
    done = copy.python("-c", PLAN_CALLS, config.model_dump_json(), api=False)
    assert done.returncode == 0, done.stderr[-3000:]
    planned: dict[str, list[str]] = {}
    for step, status in json.loads(done.stdout.strip().splitlines()[-1]):
        planned.setdefault(step, []).append(status)
    ran = copy.retrain(config.model_dump_json())
    assert ran["state"] == "Completed"
    expected = [name for name, fates in planned.items() if "skipped" not in fates]
    states = task_run_states(ran["flow_run_id"], expected)
    for name, fates in planned.items():
        if "skipped" in fates:
            assert name not in states, name
        else:
            assert sorted(EXPECTED_STATE[fate] for fate in fates) == sorted(states[name]), name
    # check_paths and the subflow's own run aside, every task that ran was planned.
    assert set(states) - set(planned) == {"check_paths", "prepare_data"}
    return planned


def test_plan_agrees_with_a_jax_ensemble_run_group_by_group(
    tmp_path: Path, small_config: RetrainConfig
):
    copy = ProjectCopy(tmp_path / "project")
    training = small_config.training.model_copy(
        update={"backend": "jax", "ensemble_size": 2, "refit": True}
    )
    config = small_config.model_copy(update={"training": training})

    # The members in one group, their refits in another: the plan names the group step twice.
    planned = plan_calls_then_run(copy, config)
    assert planned["train_member_group"] == ["will run", "will run"]
    assert "train_model" not in planned

    planned = plan_calls_then_run(copy, config)
    assert planned["train_member_group"] == ["cached", "cached"]
    assert planned["select_best_epoch"] == ["cached", "cached"]

    # One member on JAX is a plain train_model, as on TensorFlow.
    alone = config.model_copy(update={"training": training.model_copy(update={"ensemble_size": 1})})
    planned = plan_calls_then_run(copy, alone)
    assert planned["train_model"] == ["will run", "will run"]
    assert "train_member_group" not in planned

    # No new data: the group step is what is skipped.
    lazy = config.model_copy(update={"retrain_when": "new-data"})
    planned = plan_calls_then_run(copy, lazy)
    assert planned["train_member_group"] == ["skipped"] and "train_model" not in planned
