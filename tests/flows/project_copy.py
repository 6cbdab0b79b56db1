"""A throwaway copy of the project's code, run in fresh interpreters: code edits made in the
copy are real edits of real modules, and the flow runs are real Prefect runs against the
test session's server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect.settings import PREFECT_API_URL

PROJECT = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "tasks", "schemas")

RUN_SCRIPT = """
import json, sys
from flows.retrain import retrain
from schemas.config import RetrainConfig
state = retrain(RetrainConfig.model_validate_json(sys.argv[1]), return_state=True)
result = state.result(raise_on_failure=False)
print(json.dumps({
    "flow_run_id": str(state.state_details.flow_run_id),
    "state": state.name,
    "test_rmse": getattr(result, "test_rmse", None),
}))
"""


PLAN_SCRIPT = """
import json, sys
from tasks.plan.engine import plan_steps
from schemas.config import RetrainConfig
plans = plan_steps(RetrainConfig.model_validate_json(sys.argv[1]))
print(json.dumps({
    "steps": {plan.step: {"status": plan.status, "reasons": plan.reasons} for plan in plans},
    "tensorflow": "tensorflow" in sys.modules,
    "prefect": "prefect" in sys.modules,
}))
"""


class ProjectCopy:
    """The project's packages copied under ``root``, with its own Prefect result storage."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for package in PACKAGES:
            shutil.copytree(
                PROJECT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
            )
        self.records = root / "records"

    def add_evaluate_offset(self) -> None:
        """A helper module that only evaluate imports: ``OFFSET`` added to every prediction."""
        (self.root / "tasks" / "report_offset.py").write_text(
            '"""Offset added to evaluated predictions (test helper)."""\n\nOFFSET = 0.0\n'
        )
        self.edit(
            "tasks/evaluation/evaluate.py",
            "from tasks.storage.cache_policy import ArtifactCache\n",
            (
                "from tasks.storage.cache_policy import ArtifactCache\n"
                "from tasks.report_offset import OFFSET\n"
            ),
        )
        self.edit(
            "tasks/evaluation/evaluate.py",
            "        test=regression_scores(actual, predicted),\n",
            "        test=regression_scores(actual, predicted + OFFSET),\n",
        )

    def edit(self, relative: str, old: str, new: str) -> None:
        """Replace one exact piece of a copied source file (it must be there once)."""
        path = self.root / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} is not in {relative} exactly once"
        path.write_text(text.replace(old, new))

    def env(self, api: bool = True) -> dict[str, str]:
        """The environment of a process that imports the copy, not the project.

        ``api=False`` leaves out the session server, as on the embedded default (the records
        are the same local files: the server has no default result storage).
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.root)
        env.pop("PREFECT_API_URL", None)
        if api:
            env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
        env["PREFECT_LOCAL_STORAGE_PATH"] = str(self.records)
        env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        return env

    def python(
        self, *args: str, timeout: float = 600, api: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the interpreter in the copy's folder."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.root,
            env=self.env(api),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def retrain(self, config_json: str) -> dict[str, Any]:
        """Run the copy's retrain flow in a fresh interpreter; return its id, state and RMSE."""
        done = self.python("-c", RUN_SCRIPT, config_json)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def plan(self, config_json: str, api: bool = False) -> dict[str, Any]:
        """Plan the copy's retrain flow in a fresh interpreter (by default without an API)."""
        done = self.python("-c", PLAN_SCRIPT, config_json, api=api)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


def task_states(flow_run_id: str, timeout: float = 60.0) -> dict[str, str]:
    """Task name -> final state name of every task run of one flow run."""
    return {
        run.name.rsplit("-", 1)[0]: run.state.name
        for run in _final_task_runs(flow_run_id, timeout)
        if run.state
    }


def task_run_states(
    flow_run_id: str, expected: Iterable[str] = (), timeout: float = 60.0
) -> dict[str, list[str]]:
    """Task name -> the final state names of all its runs in one flow run (and its subflows).

    Waits until every task named in ``expected`` has reported at least one run.
    """
    found: dict[str, list[str]] = {}
    for run in _final_task_runs(flow_run_id, timeout, set(expected)):
        if run.state:
            found.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
    return found


def _final_task_runs(flow_run_id: str, timeout: float, expected: set[str] | None = None) -> list:
    import time
    from uuid import UUID

    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        # The data steps run in the prepare_data subflow.
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(flow_run_id)])
            )
        )
        ids = [UUID(flow_run_id), *(run.id for run in subflows)]
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
            )
            # Task-run states reach the API as events, a moment after the flow returns.
            names = {run.name.rsplit("-", 1)[0] for run in runs}
            final = all(run.state is not None and run.state.is_final() for run in runs)
            if runs and final and names >= (expected or set()):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"task runs without a final state: {runs}")
            time.sleep(0.5)
    return runs
