"""The code part of every cache key is the closure of project modules a task imports: editing
a helper reruns exactly the steps whose code reaches it (real edits in a copy of the project,
real flow runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.config import RetrainConfig
from tests.flows.project_copy import ProjectCopy, task_states

pytestmark = pytest.mark.slow

BEFORE_EVALUATE = (
    "ingest_source",
    "validate_records",
    "split_by_date",
    "normalise_features",
    "train_model",
    "select_best_epoch",
    "assemble_forecaster",
)


def test_editing_code_reruns_the_steps_that_import_it(tmp_path: Path, small_config: RetrainConfig):
    copy = ProjectCopy(tmp_path / "project")
    copy.add_evaluate_offset()  # a helper module only evaluate imports
    config = small_config.model_dump_json()
    first = copy.retrain(config)
    assert first["state"] == "Completed"

    copy.edit("tasks/report_offset.py", "OFFSET = 0.0", "OFFSET = 1000.0")
    second = copy.retrain(config)
    states = task_states(second["flow_run_id"])
    assert {step: states[step] for step in BEFORE_EVALUATE} == dict.fromkeys(
        BEFORE_EVALUATE, "Cached"
    )
    assert states["evaluate_model"] == "Completed"
    assert second["test_rmse"] > first["test_rmse"] + 500

    # The scenario: a change to Statistics.denormalise_target (tasks/prepare/statistics.py,
    # imported by normalise, train, select and evaluate) reruns them all, evaluate included.
    copy.edit(
        "tasks/prepare/statistics.py",
        "return invert_target(values, self.target_transform)",
        "return invert_target(values, self.target_transform) + 1000.0",
    )
    third = copy.retrain(config)
    states = task_states(third["flow_run_id"])
    assert [states[s] for s in BEFORE_EVALUATE[:3]] == ["Cached"] * 3
    assert states["normalise_features"] == "Completed"
    assert states["evaluate_model"] == "Completed"
    assert third["test_rmse"] != second["test_rmse"]
