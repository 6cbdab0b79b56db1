"""A real Prefect server, work pool, deployments and process worker, for this folder's tests.

Everything runs on loopback with its own PREFECT_HOME; every process started here is stopped
(its whole process group) when the module's tests are done.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.synthetic import make_day_frame, to_csv_bytes

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).parent / "prefect")
POOL = "bikeflow-gpu"
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop a process started in its own session, and everything it started."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass


@dataclass
class PrefectStack:
    """A running server (and, once started, a worker) plus what the tests need to talk to it."""

    url: str
    api: str
    home: Path
    env: dict[str, str]
    logs: Path
    data: Path

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the REST API, retrying 503s (SQLite busy) as Prefect's own client does.

        With the stack's ``PREFECT_API_AUTH_STRING`` (user:password) as basic authentication,
        as Prefect's client sends it.
        """
        auth_string = self.env.get("PREFECT_API_AUTH_STRING")
        auth = tuple(auth_string.split(":", 1)) if auth_string else None
        with httpx.Client(base_url=self.api, timeout=30.0, auth=auth) as client:
            for attempt in range(8):
                response = client.request(method, path, **kwargs)
                if response.status_code != 503:
                    break
                time.sleep(0.5 * 2**attempt)
        return response

    def cli(self, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
        """Run a prefect CLI command against this server; fail loudly with its output."""
        result = subprocess.run(
            [PREFECT, *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, f"prefect {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result

    def deployment(self, name: str) -> dict[str, Any]:
        """Read a deployment by flow/deployment name."""
        response = self.request("GET", f"/deployments/name/{name}")
        response.raise_for_status()
        return response.json()

    def run_parameters(self, tag: str, **training: Any) -> dict[str, Any]:
        """Fast retraining parameters on the generated data, writing under ``tag``."""
        return {
            "config": {
                "source": str(self.data / "day.csv"),
                "store_root": str(self.data / "store"),
                "output_dir": str(self.data / "runs" / tag),
                "registry_root": str(self.data / "models" / tag),
                "split": {"test_days": 30},
                "training": {"epochs": 2, "batch_size": 16, **training},
            }
        }

    def trigger(self, deployment: str, parameters: dict[str, Any]) -> httpx.Response:
        """Create a flow run of a deployment through the REST API."""
        deployment_id = self.deployment(deployment)["id"]
        return self.request(
            "POST", f"/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters}
        )

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        """Read a flow run."""
        response = self.request("GET", f"/flow_runs/{flow_run_id}")
        response.raise_for_status()
        return response.json()

    def wait_final(self, flow_run_id: str, timeout: float = 420.0) -> dict[str, Any]:
        """Poll a flow run until it is in a final state; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(flow_run_id)
            if run["state_type"] in FINAL_STATES:
                return run
            time.sleep(1.0)
        raise AssertionError(
            f"flow run {flow_run_id} still {run['state_name']} after {timeout:.0f}s; "
            f"worker log:\n{self.worker_log()}"
        )

    def state_history(self, flow_run_id: str) -> list[str]:
        """Names of every state a flow run went through, oldest first."""
        response = self.request("GET", "/flow_run_states/", params={"flow_run_id": flow_run_id})
        response.raise_for_status()
        states = sorted(response.json(), key=lambda s: s["timestamp"])
        return [state["name"] for state in states]

    def artifact_keys(self, flow_run_id: str) -> set[str]:
        """Keys of the artifacts a flow run (and its tasks) created."""
        response = self.request(
            "POST",
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}},
        )
        response.raise_for_status()
        return {artifact["key"] for artifact in response.json() if artifact["key"]}

    def worker_log(self, name: str | None = None) -> str:
        """The tail of a worker's log (the unnamed worker's, or every named one's)."""
        if name is None and not (self.logs / "worker.log").exists():
            return "\n".join(self.worker_log(p.stem[7:]) for p in self.logs.glob("worker-*.log"))
        path = self.logs / (f"worker-{name}.log" if name else "worker.log")
        return path.read_text()[-6000:] if path.exists() else "(no worker log)"


def _wait_healthy(api: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prefect server exited early:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{api}/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server not healthy after {timeout:.0f}s:\n{log.read_text()}")


def base_env(home: Path, api: str, **extra: str) -> dict[str, str]:
    """The environment of every process of a stack: its own PREFECT_HOME, this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
            # A queued run of a deployment at its concurrency limit retries every 2 s.
            "PREFECT_DEPLOYMENT_CONCURRENCY_SLOT_WAIT_SECONDS": "2",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_API_LOG_RETRYABLE_ERRORS": "true",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            # The checkout under test, not whatever copy is installed in the venv.
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            **extra,
        }
    )
    return env


def start_logged(
    command: list[str], env: dict[str, str], log_path: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start a process in its own session with its output in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def start_server(env: dict[str, str], port: int, logs: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """``prefect server start`` on 127.0.0.1:port; return once it answers /health."""
    server_log = logs / "server.log"
    server = start_logged(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        server_log,
        cwd,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/api", server, server_log, timeout=180)
    except BaseException:
        stop(server)
        raise
    return server


def start_worker(
    env: dict[str, str], logs: Path, cwd: Path, limit: int, name: str | None = None
) -> subprocess.Popen[bytes]:
    """A process worker on the pool, running flows from this checkout (BIKEFLOW_HOME)."""
    # The worker runs from another folder: the pull step must take it to BIKEFLOW_HOME.
    command = [PREFECT, "worker", "start", "--pool", POOL, "--type", "process"]
    command += ["--limit", str(limit), *(["--name", name] if name else [])]
    log = logs / (f"worker-{name}.log" if name else "worker.log")
    return start_logged(command, {**env, "BIKEFLOW_HOME": str(ROOT)}, log, cwd)


def source_allow_list(data: Path) -> dict[str, str]:
    """The allow-list a worker sets explicitly (docs/scale-out.md): the data folder, UCI's host."""
    return {"BIKEFLOW_SOURCE_ROOTS": str(data), "BIKEFLOW_SOURCE_HOSTS": "archive.ics.uci.edu"}


def make_folders(base: Path) -> tuple[Path, Path, Path, Path]:
    """home, logs, data (with a generated day.csv) and another working folder under base."""
    home, logs, data, elsewhere = (base / name for name in ("home", "logs", "data", "cwd"))
    for folder in (home, logs, data, elsewhere):
        folder.mkdir()
    (data / "day.csv").write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))
    return home, logs, data, elsewhere


# The files that use ``stack`` (test_deployments, test_load, test_ui) are one xdist work unit
# (tests/conftest.py's SHARED_UNITS): one worker runs them in a row and they share one stack,
# started once. It is stopped as soon as the next test on this worker does not use it (below):
# an idle server and worker would otherwise keep polling (a tenth of a core each) until the
# xdist worker ends. A later test that asks for it again gets a fresh one.
STACK_GROUP = "prefect-stack"
_running: dict[str, tuple[PrefectStack, list[subprocess.Popen[bytes]]]] = {}


def _start_stack(base: Path) -> tuple[PrefectStack, list[subprocess.Popen[bytes]]]:
    """Server on a free loopback port, the pool, `prefect deploy --all`, and a process worker.

    Prefect's default database (SQLite in PREFECT_HOME), no authentication.
    """
    home, logs, data, elsewhere = make_folders(base)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = base_env(home, f"{url}/api")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(start_server(env, port, logs, elsewhere))
        stack = PrefectStack(url=url, api=f"{url}/api", home=home, env=env, logs=logs, data=data)

        stack.cli("work-pool", "create", POOL, "--type", "process")
        stack.cli("--no-prompt", "deploy", "--all")

        # --limit 4: room for several runs, so only Prefect's deployment concurrency
        # limit can keep two retraining runs apart.
        worker_env = {**env, **source_allow_list(data)}
        processes.append(start_worker(worker_env, logs, elsewhere, limit=4))
    except BaseException:
        _stop_all(processes)
        raise
    return stack, processes


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in reversed(processes):
        stop(process)


def _stop_stack() -> None:
    """Stop the shared stack, if one is running."""
    if STACK_GROUP in _running:
        _stop_all(_running.pop(STACK_GROUP)[1])


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectStack]:
    """The running shared stack (started on first use): see STACK_GROUP above."""
    if STACK_GROUP not in _running:
        _running[STACK_GROUP] = _start_stack(tmp_path_factory.mktemp("prefect-stack"))
    yield _running[STACK_GROUP][0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Stop the shared stack after the last test in a row that uses it."""
    try:
        return (yield)
    finally:
        if nextitem is None or "stack" not in getattr(nextitem, "fixturenames", ()):
            _stop_stack()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the shared stack if a run ended early (-x, Ctrl-C) while it was still up."""
    _stop_stack()
