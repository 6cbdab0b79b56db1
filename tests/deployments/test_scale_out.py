"""Scale-out: a Prefect server on PostgreSQL with basic authentication, two process workers on
one pool, one shared store, one result storage and one registry (docs/scale-out.md).

Everything runs on loopback; the multi-host version differs only in addresses. The module
shares one stack: a throwaway PostgreSQL cluster, the server, and workers ``a`` and ``b`` with
``--limit 1`` each (one flow run per worker, as on a GPU host with one card).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from benchmarks.postgres import postgres_bin, postgres_cluster
from tests.deployments.conftest import (
    FINAL_STATES,
    POOL,
    ROOT,
    PrefectStack,
    base_env,
    free_port,
    make_folders,
    source_allow_list,
    start_server,
    start_worker,
    stop,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.minutes(6),
    pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL is not installed"),
]

WORKERS = ("a", "b")


@dataclass
class ScaledStack:
    """The PostgreSQL-backed, authenticated stack and the secrets it was started with."""

    stack: PrefectStack
    database_url: str
    database_password: str
    auth_string: str
    workers: dict[str, Any]


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledStack]:
    """PostgreSQL, a server that requires the auth string, the pool, the deployments, 2 workers."""
    home, logs, data, elsewhere = make_folders(tmp_path_factory.mktemp("scale-out"))
    shared = data / "shared"
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    auth_string = f"bikeflow:{secrets.token_urlsafe(18)}"
    with postgres_cluster(free_port()) as (database_url, database_password):
        # The server alone knows the database; it checks the auth string on every API call.
        server_env = base_env(
            home,
            api,
            PREFECT_API_DATABASE_CONNECTION_URL=database_url,
            PREFECT_SERVER_API_AUTH_STRING=auth_string,
        )
        # Clients and workers send it. One result storage for every worker (the cache
        # records); the artifact store and the registry are the runs' store_root and
        # registry_root.
        client_env = base_env(
            home,
            api,
            PREFECT_API_AUTH_STRING=auth_string,
            PREFECT_LOCAL_STORAGE_PATH=str(shared / "results"),
        )
        processes = []
        try:
            processes.append(start_server(server_env, port, logs, elsewhere))
            stack = PrefectStack(
                url=api.removesuffix("/api"), api=api, home=home, env=client_env, logs=logs,
                data=data,
            )  # fmt: skip
            stack.cli("work-pool", "create", POOL, "--type", "process")
            stack.cli("--no-prompt", "deploy", "--all")
            workers = {}
            for name in WORKERS:
                worker_env = {**client_env, **source_allow_list(data)}
                workers[name] = start_worker(worker_env, logs, elsewhere, limit=1, name=name)
                processes.append(workers[name])
            yield ScaledStack(stack, database_url, database_password, auth_string, workers)
        finally:
            for process in reversed(processes):
                stop(process)


def shared_parameters(scaled: ScaledStack, tag: str, **training: Any) -> dict[str, Any]:
    """Run parameters writing into the one shared store and registry, output under ``tag``."""
    parameters = scaled.stack.run_parameters(tag, **training)
    shared = scaled.stack.data / "shared"
    parameters["config"]["store_root"] = str(shared / "store")
    parameters["config"]["registry_root"] = str(shared / "models")
    return parameters


def test_the_server_keeps_its_state_in_postgresql(scaled: ScaledStack):
    import asyncpg

    async def deployments() -> list[str]:
        connection = await asyncpg.connect(scaled.database_url.replace("+asyncpg", ""))
        try:
            rows = await connection.fetch("SELECT name FROM deployment ORDER BY name")
        finally:
            await connection.close()
        return [row["name"] for row in rows]

    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
    assert asyncio.run(deployments()) == sorted(d["name"] for d in declared)


def _flow_run_count(stack: PrefectStack, deployment_id: str) -> int:
    # One deployment's runs (the nightly one's scheduler adds runs of its own at any time).
    body = {"deployments": {"id": {"any_": [deployment_id]}}}
    response = stack.request("POST", "/flow_runs/count", json=body)
    response.raise_for_status()
    return int(response.json())


def test_a_client_without_the_auth_string_gets_401_and_starts_nothing(scaled: ScaledStack):
    stack = scaled.stack
    deployment_id = stack.deployment("retrain/retrain-adhoc")["id"]
    before = _flow_run_count(stack, deployment_id)
    body = {"parameters": stack.run_parameters("intruder")}
    wrong = ("bikeflow", "not-the-password")
    for auth in (None, wrong):
        with httpx.Client(base_url=stack.api, timeout=30.0, auth=auth) as client:
            created = client.post(f"/deployments/{deployment_id}/create_flow_run", json=body)
            assert created.status_code == 401, created.text
            assert client.post("/flow_runs/filter", json={}).status_code == 401
            assert client.delete(f"/deployments/{deployment_id}").status_code == 401
    # The CLI without it is refused too (and says so).
    env = {k: v for k, v in stack.env.items() if k != "PREFECT_API_AUTH_STRING"}
    refused = _prefect(stack, env, "deployment", "run", "retrain/retrain-adhoc")
    assert refused.returncode != 0
    assert "401" in refused.stdout + refused.stderr or "Unauthorized" in refused.stdout + (
        refused.stderr
    )
    # Nothing was created, and the deployment is still there.
    assert _flow_run_count(stack, deployment_id) == before
    assert stack.deployment("retrain/retrain-adhoc")["id"] == deployment_id


def _prefect(stack: PrefectStack, env: dict[str, str], *args: str) -> Any:
    import subprocess

    from tests.deployments.conftest import PREFECT

    return subprocess.run(
        [PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _trigger_all(stack: PrefectStack, plan: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Create every flow run before looking at any of them; return their ids."""
    ids = []
    for deployment, parameters in plan:
        response = stack.trigger(deployment, parameters)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _wait_all(stack: PrefectStack, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [stack.flow_run(flow_run_id) for flow_run_id in ids]
        if all(run["state_type"] in FINAL_STATES for run in runs):
            return runs
        assert time.monotonic() < deadline, (
            [(run["name"], run["state_name"]) for run in runs],
            stack.worker_log(),
        )
        time.sleep(2.0)


def _task_runs(stack: PrefectStack, ids: list[str]) -> list[dict[str, Any]]:
    """The task runs of these flow runs and of their subflows (prepare_data holds the data
    steps), each with ``flow_run_id`` set to the top-level run it belongs to."""
    top = {run_id: run_id for run_id in ids}
    for run_id in ids:
        response = stack.request(
            "POST",
            "/flow_runs/filter",
            json={"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}, "limit": 200},
        )
        response.raise_for_status()
        top.update({subflow["id"]: run_id for subflow in response.json()})
    response = stack.request(
        "POST", "/task_runs/filter", json={"flow_runs": {"id": {"any_": list(top)}}, "limit": 200}
    )
    response.raise_for_status()
    runs = response.json()
    for run in runs:
        run["flow_run_id"] = top[run["flow_run_id"]]
    return runs


def _worker(run: dict[str, Any]) -> str:
    """The worker that (last) took a flow run: the label the worker gives it on submission."""
    return run["labels"]["prefect.worker.name"]


def assert_store_intact(store: Path, killed: bool = False) -> None:
    """Every object is named by the sha256 of its bytes; no temporary file is left.

    A process killed in the middle of writing may leave its temporary file behind (never an
    object: objects appear only by a rename of a finished, fsynced file).
    """
    from tasks.storage.store import sha256_file

    objects = [p for p in (store / "objects").rglob("*") if p.is_file()]
    assert objects
    for path in objects:
        assert path.name.split(".", 1)[0] == sha256_file(path), path
        assert path.parent.name == path.name[:2], path
    leftovers = list((store / "tmp").glob("*")) if (store / "tmp").exists() else []
    assert killed or leftovers == [], leftovers


def test_two_workers_share_one_store_cache_and_registry(scaled: ScaledStack):
    from tasks.promotion.registry import Registry

    stack = scaled.stack
    # Four configs (two seeds, four output folders) on both retraining deployments: each
    # deployment runs one at a time, so two run at once, one on each worker (--limit 1).
    plan = [
        (f"retrain/retrain-{kind}", shared_parameters(scaled, f"{kind}-{seed}", seed=seed))
        for kind, seed in (("adhoc", 31), ("nightly", 32), ("adhoc", 32), ("nightly", 31))
    ]
    ids = _trigger_all(stack, plan)
    runs = _wait_all(stack, ids, timeout=900)
    assert [run["state_type"] for run in runs] == ["COMPLETED"] * len(runs), (
        [(run["name"], run["state"]["message"]) for run in runs],
        stack.worker_log(),
    )
    worker_of = {run["id"]: _worker(run) for run in runs}
    assert set(worker_of.values()) == set(WORKERS), worker_of

    # Each seed trained once between the two workers; the other runs' training was Cached.
    task_runs = _task_runs(stack, ids)
    trainings = sorted(t["state_name"] for t in task_runs if t["name"].startswith("train_model"))
    assert trainings == ["Cached", "Cached", "Completed", "Completed"], trainings
    # A step that one worker computed once (the same source for every run) was Cached for a
    # run on the other worker: one result storage, one store.
    by_step: dict[str, list[dict[str, Any]]] = {}
    for task_run in task_runs:
        by_step.setdefault(task_run["name"].split("-")[0], []).append(task_run)
    crossed = []
    for step, step_runs in by_step.items():
        computed = [t for t in step_runs if t["state_name"] == "Completed"]
        cached = [t for t in step_runs if t["state_name"] == "Cached"]
        if len(computed) == 1 and cached:
            where = worker_of[computed[0]["flow_run_id"]]
            if any(worker_of[t["flow_run_id"]] != where for t in cached):
                crossed.append(step)
    assert crossed, {step: [t["state_name"] for t in r] for step, r in by_step.items()}

    # One unbroken chain of decisions on the shared registry, the best model as champion.
    registry = Registry(stack.data / "shared" / "models")
    decisions = sorted(
        (json.loads(p.read_text()) for p in registry.decisions.glob("*.json")),
        key=lambda d: d["decided_at"],
    )
    assert len(decisions) == len(runs)
    assert [d["outcome"] for d in decisions].count("first-champion") == 1
    for before, after in pairwise(decisions):
        assert after["champion_before"] == before["champion_after"], (before, after)
    versions = [registry.read_version(p.name) for p in registry.versions.iterdir()]
    assert len(versions) == 2 and all(
        not p.name.startswith(".") for p in registry.versions.iterdir()
    )
    best = min(versions, key=lambda v: v.metrics["test_rmse"])
    champion = registry.champion()
    assert champion is not None and champion.version == best.version
    assert decisions[-1]["champion_after"] == best.version

    # Nothing half-written anywhere in the shared store.
    assert_store_intact(stack.data / "shared" / "store")
    for _, parameters in plan:
        config = parameters["config"]
        metrics = json.loads((Path(config["output_dir"]) / "metrics.json").read_text())
        assert metrics["config"]["training"]["seed"] == config["training"]["seed"]
        assert metrics["config"]["output_dir"] == config["output_dir"]


def _tree(pid: int) -> list[int]:
    """A process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _kill_host(pid: int) -> list[int]:
    """SIGKILL a worker and everything it started, as if its machine had died."""
    import os
    import signal

    pids = _tree(pid)
    for each in pids:  # freeze first, so nothing reacts to its parent's death
        os.kill(each, signal.SIGSTOP)
    for each in pids:
        os.kill(each, signal.SIGKILL)
    return pids


def _journal_epochs(store: Path, since: float) -> int:
    """Epochs recorded by the newest training journal written after ``since`` (0 if none)."""
    journals = [p for p in (store / "journals").glob("*.json") if p.stat().st_mtime > since]
    if not journals:
        return 0
    try:
        return len(json.loads(max(journals, key=lambda p: p.stat().st_mtime).read_text())["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


def _logs_of(stack: PrefectStack, flow_run_id: str) -> list[str]:
    body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}
    response = stack.request("POST", "/logs/filter", json=body)
    response.raise_for_status()
    return [entry["message"] for entry in response.json()]


# About 0.4 s an epoch here: a window of seconds between epoch 2 and the end.
EPOCHS = 20
COMPARED = ("best_epoch", "best_val_loss", "val_rmse", "val_mae", "test_rmse", "test_mae")


def test_a_worker_killed_mid_training_crashes_its_run_which_resumes_on_the_other(
    scaled: ScaledStack,
):
    stack = scaled.stack
    nightly = stack.deployment("retrain/retrain-nightly")
    assert nightly["job_variables"]["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
    # The automations, applied from their files as docs/scale-out.md does: mark silent runs
    # Crashed, resubmit crashed retraining.
    for automation in sorted((ROOT / "deploy" / "automations").glob("*.yaml")):
        stack.cli("automation", "create", "--from-file", str(automation))

    # A longer training on two years of generated days, so there is an epoch to kill it in.
    from schemas.synthetic import make_day_frame, to_csv_bytes

    source = stack.data / "long" / "day.csv"
    source.parent.mkdir()
    source.write_bytes(to_csv_bytes(make_day_frame(731, seed=3)))
    training = {"epochs": EPOCHS, "batch_size": 2, "seed": 7}
    target = shared_parameters(scaled, "crash", **training)
    target["config"]["source"] = str(source)
    # The same training, uninterrupted, in a store of its own (nothing to resume or reuse).
    reference = stack.run_parameters("reference", **training)
    reference["config"]["source"] = str(source)
    reference["config"]["store_root"] = str(stack.data / "reference" / "store")
    since = time.time()
    target_id, reference_id = _trigger_all(
        stack, [("retrain/retrain-adhoc", target), ("retrain/retrain-nightly", reference)]
    )

    # Kill the target's worker once its training has finished two epochs, and not all.
    store = Path(target["config"]["store_root"])
    deadline = time.monotonic() + 600
    while _journal_epochs(store, since) < 2:
        assert time.monotonic() < deadline, stack.worker_log()
        if int(time.monotonic()) % 10 == 0:
            assert stack.flow_run(target_id)["state_type"] not in FINAL_STATES
        time.sleep(0.05)
    victim = _worker(stack.flow_run(target_id))
    _kill_host(scaled.workers[victim].pid)
    killed_after = _journal_epochs(store, since)
    assert 2 <= killed_after < EPOCHS, killed_after
    survivor = next(name for name in WORKERS if name != victim)

    # No heartbeat: Crashed; the automation puts it back in the queue; the survivor runs it.
    run = _wait_all(stack, [reference_id], timeout=600)[0]
    assert run["state_type"] == "COMPLETED", stack.worker_log(survivor)
    deadline = time.monotonic() + 600
    while (run := stack.flow_run(target_id))["state_type"] != "COMPLETED":
        assert time.monotonic() < deadline, (stack.state_history(target_id), stack.worker_log())
        assert run["state_type"] not in {"FAILED", "CANCELLED"}, run["state"]
        time.sleep(2.0)
    history = stack.state_history(target_id)
    crashed = history.index("Crashed")
    assert history[crashed - 1] == "Running" and "AwaitingRetry" in history[crashed:], history
    assert _worker(run) == survivor
    resumed = [m for m in _logs_of(stack, target_id) if m.startswith("resuming after epoch")]
    assert len(resumed) == 1 and int(resumed[0].split()[3]) >= 2, resumed

    # Same numbers as the uninterrupted run: history, best epoch, scores.
    crash_out = Path(target["config"]["output_dir"])
    reference_out = Path(reference["config"]["output_dir"])
    assert (crash_out / "history.csv").read_bytes() == (reference_out / "history.csv").read_bytes()
    got, want = (json.loads((o / "metrics.json").read_text()) for o in (crash_out, reference_out))
    assert {k: got[k] for k in COMPARED} == {k: want[k] for k in COMPARED}
    assert got["epochs_trained"] == EPOCHS
    assert_store_intact(store, killed=True)


def test_no_secret_reaches_the_logs(scaled: ScaledStack):
    # Last in the module: every run above has written its logs by now.
    secret = scaled.auth_string.split(":", 1)[1]
    logs = list(scaled.stack.logs.glob("*.log"))
    assert {p.name for p in logs} >= {"server.log", "worker-a.log", "worker-b.log"}
    for path in logs:
        text = path.read_text(errors="replace")
        assert secret not in text, path
        assert scaled.database_password not in text, path
