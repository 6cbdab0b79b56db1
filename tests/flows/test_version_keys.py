"""An upgraded library reruns the steps whose results it shapes, and ``bikeflow plan`` names it:
the upgrade is an installed-distribution record put first on the path of real ``bikeflow plan``
and flow runs (fresh interpreters of a copy of the project), so the metadata reports the new
version while the code stays the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.config import RetrainConfig
from tasks.storage.library_versions import installed_version
from tests.flows.project_copy import RUN_SCRIPT, ProjectCopy, task_states
from tests.tasks.storage.test_library_versions import fake_distribution

pytestmark = [pytest.mark.slow, pytest.mark.minutes(3)]

PREPARE = ("ingest_source", "validate_records", "split_by_date", "normalise_features")


def upgraded(copy: ProjectCopy, upgrade: Path | None, *args: str, api: bool) -> str:
    """Run the copy's interpreter with ``upgrade``'s records first on the path; its stdout."""
    env = copy.env(api)
    if upgrade is not None:
        env["PYTHONPATH"] = os.pathsep.join((str(upgrade), env["PYTHONPATH"]))
    done = subprocess.run(
        [sys.executable, *args],
        cwd=copy.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def plan_lines(copy: ProjectCopy, upgrade: Path, config_file: Path) -> dict[str, str]:
    """``bikeflow plan``'s line of each step (status and first reason), by step name."""
    printed = upgraded(
        copy, upgrade, "-m", "flows.cli.main", "plan", "--config", str(config_file), api=False
    )
    return {line.split()[0]: line for line in printed.splitlines() if line.startswith("  ")}


def run_states(copy: ProjectCopy, upgrade: Path, config: str) -> dict[str, str]:
    """Run the retrain flow; each task's final state."""
    printed = upgraded(copy, upgrade, "-c", RUN_SCRIPT, config, api=True)
    ran = json.loads(printed.strip().splitlines()[-1])
    assert ran["state"] == "Completed"
    return task_states(ran["flow_run_id"])


def test_an_upgrade_reruns_what_it_shapes_and_plan_names_it(
    tmp_path: Path, small_config: RetrainConfig
):
    copy = ProjectCopy(tmp_path / "project")
    config = small_config.model_copy(
        update={"training": small_config.training.model_copy(update={"epochs": 1})}
    )
    config_file = tmp_path / "config.json"
    config_file.write_text(config.model_dump_json())
    assert copy.retrain(config.model_dump_json())["state"] == "Completed"

    # pandera shapes validation only: validate runs again, and since its output is the same
    # bytes, every step after it is still cached.
    pandera = fake_distribution(tmp_path / "pandera-upgrade", "pandera", "9.9.9")
    lines = plan_lines(copy, pandera, config_file)
    assert "cached" in lines["ingest_source"]
    assert "will run" in lines["validate_records"]
    assert f"pandera {installed_version('pandera')} -> 9.9.9" in lines["validate_records"]
    states = run_states(copy, pandera, config.model_dump_json())
    assert states["validate_records"] == "Completed"
    assert [states[step] for step in ("ingest_source", "split_by_date", "train_model")] == [
        "Cached"
    ] * 3

    # TensorFlow shapes training (and the steps that run the model), not the data steps.
    tensorflow = fake_distribution(tmp_path / "tensorflow-upgrade", "tensorflow", "9.9.9")
    lines = plan_lines(copy, tensorflow, config_file)
    assert all("cached" in lines[step] for step in PREPARE)
    assert "will run" in lines["train_model"]
    assert f"tensorflow {installed_version('tensorflow')} -> 9.9.9" in lines["train_model"]
    states = run_states(copy, tensorflow, config.model_dump_json())
    assert [states[step] for step in PREPARE] == ["Cached"] * len(PREPARE)
    assert states["train_model"] == "Completed"
