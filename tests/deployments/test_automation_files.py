"""The automations are files that ``prefect automation create --from-file`` accepts: each one
validates against Prefect's own AutomationCore model (no server needed), and the resubmission
stops after three tries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import Resource
from prefect.settings import PREFECT_API_URL

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "deploy" / "automations").glob("*.yaml"))


def _automation(name: str) -> AutomationCore:
    # What the CLI does with a .yaml file: yaml.safe_load, then AutomationCore.model_validate.
    return AutomationCore.model_validate(yaml.safe_load((ROOT / name).read_text()))


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_each_file_is_a_valid_prefect_automation(path: Path):
    automation = AutomationCore.model_validate(yaml.safe_load(path.read_text()))
    assert automation.name.startswith("bikeflow: ") and automation.enabled
    assert isinstance(automation.trigger, EventTrigger) and automation.actions


def test_both_automations_are_files():
    assert [path.name for path in FILES] == [
        "crash-silent-runs.yaml",
        "resubmit-crashed-retraining.yaml",
    ]
    docs = (ROOT / "docs" / "scale-out.md").read_text()
    assert "| sed" not in docs and "sed -n" not in docs and "```python" not in docs
    for path in FILES:
        assert f"prefect automation create --from-file deploy/automations/{path.name}" in docs


def test_silent_runs_are_crashed_after_90_seconds():
    automation = _automation("deploy/automations/crash-silent-runs.yaml")
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.posture == Posture.Proactive and trigger.within.total_seconds() == 90
    (action,) = automation.actions
    assert isinstance(action, ChangeFlowRunState) and action.state == StateType.CRASHED


def _crashed_run(run_count: int) -> Resource:
    return Resource(
        {
            "prefect.resource.id": "prefect.flow-run.6f1c1c56-0000-4000-8000-000000000001",
            "prefect.run-count": str(run_count),
            "prefect.state-name": "Crashed",
        }
    )


def test_a_crashed_retraining_run_is_resubmitted_at_most_three_times():
    automation = _automation("deploy/automations/resubmit-crashed-retraining.yaml")
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.expect == {"prefect.flow-run.Crashed"}
    # Prefect's own matching of a state event's resource against the trigger.
    resubmitted = [count for count in range(1, 8) if trigger.match.matches(_crashed_run(count))]
    assert resubmitted == [1, 2, 3]
    (action,) = automation.actions
    assert isinstance(action, ChangeFlowRunState)
    assert action.state == StateType.SCHEDULED and action.name == "AwaitingRetry"


def test_the_files_apply_to_a_server_with_the_prefect_cli():
    # This session's Prefect server (tests/conftest.py), with the command docs/scale-out.md runs.
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    prefect = str(Path(sys.executable).parent / "prefect")
    created = []
    try:
        for path in FILES:
            done = subprocess.run(
                [prefect, "automation", "create", "--from-file", str(path)],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            name = yaml.safe_load(path.read_text())["name"]
            with get_client(sync_client=True) as client:
                (stored,) = client.read_automations_by_name(name)
            created.append(stored.id)
            assert stored.trigger == _automation(str(path.relative_to(ROOT))).trigger
    finally:
        # Gone again, so that they act on no other test's flow runs.
        with get_client(sync_client=True) as client:
            for automation_id in created:
                client.delete_automation(automation_id)
