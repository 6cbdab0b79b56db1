"""prefect.yaml deployed to a real server, runs executed by a real process worker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.deployments.conftest import PrefectStack

pytestmark = [pytest.mark.slow, pytest.mark.minutes(3)]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_nightly_deployment_exists_with_its_cron_schedule(stack: PrefectStack):
    nightly = stack.deployment("retrain/retrain-nightly")
    schedules = [entry["schedule"] for entry in nightly["schedules"]]
    assert [(s["cron"], s["timezone"]) for s in schedules] == [("30 2 * * *", "America/New_York")]
    assert all(entry["active"] for entry in nightly["schedules"])
    assert nightly["work_pool_name"] == "bikeflow-gpu"
    assert nightly["global_concurrency_limit"]["limit"] == 1
    # The pull step is resolved on the worker, not frozen at deploy time.
    assert json.dumps(nightly["pull_steps"]).count("{{ $BIKEFLOW_HOME }}") == 1
    adhoc = stack.deployment("retrain/retrain-adhoc")
    assert adhoc["global_concurrency_limit"]["limit"] == 1 and adhoc["schedules"] == []
    assert stack.deployment("predict-batch/predict-batch")["work_pool_name"] == "bikeflow-gpu"


def test_server_refuses_a_bad_parameter_before_any_worker_starts(stack: PrefectStack):
    response = stack.trigger("retrain/retrain-adhoc", stack.run_parameters("bad", epochs=0))
    assert response.status_code in (409, 422), response.text
    assert "epochs" in response.text


def test_adhoc_run_through_the_api_completes_and_crowns_a_champion(stack: PrefectStack):
    parameters = stack.run_parameters("api")
    response = stack.trigger("retrain/retrain-adhoc", parameters)
    assert response.status_code == 201, response.text
    run = stack.wait_final(response.json()["id"])
    assert run["state_type"] == "COMPLETED", stack.worker_log()

    registry = Path(parameters["config"]["registry_root"])
    pointer = json.loads((registry / "champion.json").read_text())
    assert (registry / "versions" / pointer["version"] / "model.keras").is_file()
    decisions = [json.loads(p.read_text()) for p in (registry / "decisions").glob("*.json")]
    assert [d["outcome"] for d in decisions] == ["first-champion"]
    metrics = json.loads((Path(parameters["config"]["output_dir"]) / "metrics.json").read_text())
    assert metrics["config"]["training"]["epochs"] == 2
    assert {"test-scores", "run-summary", "promotion-decision"} <= stack.artifact_keys(run["id"])


def test_two_retraining_runs_triggered_together_do_not_overlap(stack: PrefectStack):
    # Different seeds: neither run can reuse the other's cached training.
    ids = []
    for seed in (11, 12):
        response = stack.trigger(
            "retrain/retrain-adhoc", stack.run_parameters(f"overlap-{seed}", seed=seed)
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    runs = [stack.wait_final(flow_run_id) for flow_run_id in ids]
    assert [run["state_type"] for run in runs] == ["COMPLETED", "COMPLETED"], stack.worker_log()
    first, second = sorted(runs, key=lambda run: _time(run["start_time"]))
    assert _time(first["end_time"]) <= _time(second["start_time"])
    # The later one was held back by the deployment's concurrency limit, not by chance.
    assert "AwaitingConcurrencySlot" in stack.state_history(second["id"])


def readme_snippet(containing: str) -> str:
    """The python block of docs/deployments.md with ``containing``, as written."""
    readme = (Path(__file__).resolve().parents[2] / "docs" / "deployments.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if containing in b]
    assert len(blocks) == 1, f"expected one python block in docs/deployments.md with {containing!r}"
    return blocks[0]


def test_failed_retraining_run_fires_the_readme_notification(stack: PrefectStack):
    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**stack.env, "BIKEFLOW_ALERT_WEBHOOK": f"http://127.0.0.1:{hook.server_port}/hook"}
        created = subprocess.run(
            [sys.executable, "-c", readme_snippet("Automation(")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr

        parameters = stack.run_parameters("fails")
        parameters["config"]["source"] = str(stack.data / "no-such-file.csv")
        response = stack.trigger("retrain/retrain-adhoc", parameters)
        assert response.status_code == 201, response.text
        run = stack.wait_final(response.json()["id"])
        assert run["state_type"] == "FAILED"
        assert "no-such-file.csv" in run["state"]["message"]

        deadline = time.monotonic() + 120
        while not any(run["name"].encode() in body for body in received):
            assert time.monotonic() < deadline, f"no notification for {run['name']}: {received}"
            time.sleep(1)
        message = json.loads(next(b for b in received if run["name"].encode() in b))
        assert "bikeflow retraining failed" in message["text"]
        assert "Failed" in message["text"]
    finally:
        hook.shutdown()


def test_a_run_from_the_ui_into_a_foreign_folder_is_refused_on_the_worker(stack: PrefectStack):
    # The server only knows the JSON schema; the worker validates the config and refuses.
    foreign = stack.data / "foreign"
    (foreign / "sub").mkdir(parents=True)
    (foreign / "sub" / "mine.txt").write_bytes(b"the user's file\n")
    parameters = stack.run_parameters("foreign")
    parameters["config"].update(
        output_dir=str(foreign), store_root=str(stack.data / "store-foreign")
    )
    response = stack.trigger("retrain/retrain-adhoc", parameters)
    assert response.status_code == 201, response.text
    run = stack.wait_final(response.json()["id"])
    assert run["state_type"] == "FAILED", stack.worker_log()
    assert f"refusing to replace {foreign}" in run["state"]["message"], run["state"]["message"]
    assert [p.name for p in foreign.rglob("*")] == ["sub", "mine.txt"]
    assert (foreign / "sub" / "mine.txt").read_bytes() == b"the user's file\n"
    assert not (stack.data / "store-foreign").exists()


def test_a_worker_run_with_no_allow_list_reads_only_the_safe_defaults(stack: PrefectStack):
    # This worker sets the allow-list, as docs/scale-out.md's do; a run's job variables unset
    # it (empty), so the flow-run process a real worker starts has none: the safe defaults.
    deployment_id = stack.deployment("retrain/retrain-adhoc")["id"]
    unset = {"env": {"BIKEFLOW_SOURCE_ROOTS": "", "BIKEFLOW_SOURCE_HOSTS": ""}}
    for source, setting in (
        ("/etc/passwd", "BIKEFLOW_SOURCE_ROOTS"),
        (f"{stack.url}/api/health", "BIKEFLOW_SOURCE_HOSTS"),  # a loopback URL
    ):
        parameters = stack.run_parameters("no-allow-list")
        parameters["config"]["source"] = source
        response = stack.request(
            "POST",
            f"/deployments/{deployment_id}/create_flow_run",
            json={"parameters": parameters, "job_variables": unset},
        )
        assert response.status_code == 201, response.text
        run = stack.wait_final(response.json()["id"])
        message = run["state"]["message"] or ""
        assert run["state_type"] == "FAILED", stack.worker_log()
        assert f"{setting} is unset" in message and f"{setting} on the worker" in message, message
        assert "root:" not in message  # nothing of the file is read, nor shown
