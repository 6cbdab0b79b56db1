"""Load: ten retraining runs triggered at once on one server and one worker.

The Prefect stack of this folder's stack tests (conftest.py): one server, one process
worker that may hold four runs at a time, so only the deployment's concurrency limit (1,
ENQUEUE) keeps the runs apart. The ten runs share one artifact store, one cache and one
registry root, and read the same generated data with two training seeds in turn: the first
run of each seed trains its model, the other eight are served from the cache and hand the
same model in again. So the registry makes one first-champion decision, one real
champion/challenger comparison, and eight more decisions on challengers it already holds
(rejected as the champion's very model, or rescored and decided on the same evidence again).
Ten distinct seeds would train ten models, but take twice as long on two cores.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.deployments.conftest import FINAL_STATES

if TYPE_CHECKING:
    from tests.deployments.conftest import PrefectStack

pytestmark = [pytest.mark.slow, pytest.mark.minutes(8)]

RUNS = 10
SEEDS = (100, 101)
# Bounded wait for all ten (about half a minute per run on two shared cores).
TIMEOUT_SECONDS = 15 * 60


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _wait_all_final(stack: PrefectStack, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Poll every run until all are in a final state; fail with their states if not in time."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [stack.flow_run(flow_run_id) for flow_run_id in ids]
        if all(run["state_type"] in FINAL_STATES for run in runs):
            return runs
        if time.monotonic() > deadline:
            states = [f"{run['name']}: {run['state_name']}" for run in runs]
            raise AssertionError(
                f"not all runs final after {timeout:.0f}s: {states}\n{stack.worker_log()}"
            )
        time.sleep(2.0)


def _decision_record(stack: PrefectStack, flow_run_id: str) -> str:
    """The registry record a run's `promotion-decision` artifact points to."""
    response = stack.request(
        "POST",
        "/artifacts/filter",
        json={
            "artifacts": {
                "flow_run_id": {"any_": [flow_run_id]},
                "key": {"any_": ["promotion-decision"]},
            }
        },
    )
    response.raise_for_status()
    artifacts = response.json()
    assert len(artifacts) == 1, f"run {flow_run_id}: {len(artifacts)} promotion-decision artifacts"
    found = re.search(r"Record: `([^`]+)`", artifacts[0]["data"])
    assert found, artifacts[0]["data"]
    return found.group(1)


def test_ten_runs_triggered_at_once_complete_one_at_a_time_and_lose_no_decision(
    stack: PrefectStack,
):
    from tasks.promotion.registry import Registry

    registry_root = stack.data / "models" / "load"
    parameters = []
    for index in range(RUNS):
        run_parameters = stack.run_parameters(f"load-{index}", seed=SEEDS[index % len(SEEDS)])
        run_parameters["config"]["registry_root"] = str(registry_root)
        parameters.append(run_parameters)

    # Trigger all ten before looking at any of them.
    ids = []
    for run_parameters in parameters:
        response = stack.trigger("retrain/retrain-adhoc", run_parameters)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    assert len(set(ids)) == RUNS

    runs = _wait_all_final(stack, ids, TIMEOUT_SECONDS)
    assert [run["state_type"] for run in runs] == ["COMPLETED"] * RUNS, (
        [(run["name"], run["state_name"], run["state"]["message"]) for run in runs],
        stack.worker_log(),
    )

    # One at a time: each run started only after the one before it had ended ...
    ordered = sorted(runs, key=lambda run: _time(run["start_time"]))
    for before, after in pairwise(ordered):
        assert _time(before["end_time"]) <= _time(after["start_time"]), (before, after)
    # ... because the deployment's concurrency limit held the others back: every run but the
    # first was turned away at least once while another one ran.
    for run in ordered[1:]:
        assert "AwaitingConcurrencySlot" in stack.state_history(run["id"]), run["name"]

    # Each seed was trained once; the other eight runs took their model from the shared cache.
    response = stack.request(
        "POST",
        "/task_runs/filter",
        json={
            "flow_runs": {"id": {"any_": ids}},
            "task_runs": {"name": {"like_": "train_model"}},
        },
    )
    response.raise_for_status()
    trainings = sorted(task_run["state_name"] for task_run in response.json())
    assert trainings == ["Cached"] * (RUNS - len(SEEDS)) + ["Completed"] * len(SEEDS), trainings

    # Nothing lost: ten decision records, one per run, in the shared registry.
    registry = Registry(registry_root)
    files = sorted(registry.decisions.glob("*.json"))
    assert len(files) == RUNS, [file.name for file in files]
    records = {_decision_record(stack, run["id"]) for run in ordered}
    assert records == {str(file) for file in files}

    decisions = sorted(
        (json.loads(file.read_text()) for file in files), key=lambda d: _time(d["decided_at"])
    )
    outcomes = [decision["outcome"] for decision in decisions]
    assert outcomes[0] == "first-champion" and outcomes.count("first-champion") == 1, outcomes
    assert set(outcomes[1:]) <= {"promoted", "rejected"}, outcomes
    # Two seeds, two models, two versions: a model handed in again is not registered twice.
    challengers = {decision["challenger"] for decision in decisions}
    assert len(challengers) == len(SEEDS), challengers
    assert {
        p.name for p in registry.versions.iterdir() if not p.name.startswith(".")
    } == challengers
    # The champion's very model handed in again is always rejected.
    for decision in decisions[1:]:
        if decision["challenger"] == decision["champion_before"]:
            assert decision["outcome"] == "rejected", decision
    # Each decision saw the champion the previous one left: no promotion overwrote another.
    for before, after in pairwise(decisions):
        assert after["champion_before"] == before["champion_after"], (before, after)
    # Every decision was made during its own run, in the order the runs ran.
    for run, decision in zip(ordered, decisions, strict=True):
        assert _time(run["start_time"]) <= _time(decision["decided_at"]) <= _time(run["end_time"])
        assert Path(decision["record"]).name.endswith(f"-{decision['challenger']}.json")

    # The champion pointer names the last decision's champion, and that version is intact
    # (read_version checks every file's digest).
    pointer = registry.champion_pointer()
    assert pointer is not None and pointer.version == decisions[-1]["champion_after"]
    # Each comparison went the way its bootstrap evidence said (the default rule) ...
    for decision in decisions[1:]:
        if decision["challenger"] == decision["champion_before"]:
            continue
        evidence, rule = decision["evidence"], decision["promotion"]
        assert rule["rule"] == "bootstrap" and evidence["resamples"] >= 2000, decision
        sure = evidence["probability"] >= rule["min_probability"]
        assert (decision["outcome"] == "promoted") == sure, decision
    # ... so the champion is the better of the two models on the test window when the
    # bootstrap was sure of it, and the first champion when the other was only maybe better.
    best = min(decisions, key=lambda decision: decision["challenger_scores"]["rmse"])
    if any(decision["outcome"] == "promoted" for decision in decisions):
        assert pointer.version == best["challenger"]
    else:
        assert pointer.version == decisions[0]["challenger"]
    champion = registry.read_version(pointer.version)
    assert (registry.versions / champion.version / "model.keras").is_file()
    # Every run published its own output folder, from its own parameters.
    for index, run_parameters in enumerate(parameters):
        metrics = json.loads(
            (Path(run_parameters["config"]["output_dir"]) / "metrics.json").read_text()
        )
        assert metrics["config"]["training"]["seed"] == SEEDS[index % len(SEEDS)]
