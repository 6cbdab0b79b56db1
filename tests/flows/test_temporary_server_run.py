"""A cold ``bikeflow run`` on Prefect's embedded default: the temporary server the command
starts ahead (``tasks/head_start.py``) is the one its run talks to, the only one, and it ends
with the command, after a success and after a user error alike.

Each test runs the real command in a fresh interpreter without ``PREFECT_API_URL``, with a
Prefect home of its own, and watches its processes in /proc while it runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schemas.synthetic import make_day_frame, to_csv_bytes

pytestmark = [pytest.mark.slow, pytest.mark.minutes(2)]
NEEDS_PREFECT = False  # the command starts its own server
ROOT = Path(__file__).resolve().parents[2]
APP = b"prefect.server.api.server:create_app"
STARTING = re.compile(r"Starting temporary server on http://127\.0\.0\.1:(\d+)")


def _servers() -> dict[int, tuple[int, int]]:
    """Every Prefect API server process: pid -> (its parent's pid, its port)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if APP in command and b"--port" in command:
            found[int(proc.name)] = (parent, int(command[command.index(b"--port") + 1]))
    return found


def _recorded(home: Path) -> tuple[dict[str, str], set[str], list[str]]:
    """What the server's database holds: flow name -> its run's state, the task runs' states,
    every log message."""
    with contextlib.closing(sqlite3.connect(home / "prefect.db")) as database:
        flows = dict(
            database.execute(
                "SELECT flow.name, flow_run.state_type FROM flow_run "
                "JOIN flow ON flow.id = flow_run.flow_id"
            ).fetchall()
        )
        tasks = {state for (state,) in database.execute("SELECT state_type FROM task_run")}
        logs = [message for (message,) in database.execute("SELECT message FROM log")]
    return flows, tasks, logs


def _watched_run(tmp_path: Path, *flags: str) -> tuple[subprocess.CompletedProcess[str], set[int]]:
    """Run ``bikeflow run --verbose`` cold; return it and the servers seen among its children."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
        BIKEFLOW_ROOTS=str(tmp_path),
    )
    argv = [sys.executable, "-m", "flows.cli", "run", "--verbose", *flags]
    argv += ["--store-root", str(tmp_path / "store"), "--output-dir", str(tmp_path / "out")]
    argv += ["--registry-root", str(tmp_path / "models"), "--test-days", "30"]
    argv += ["--batch-size", "16", "--epochs", "1", "--ensemble-size", "1", "--refit", "no"]
    (tmp_path / "log").mkdir(exist_ok=True)
    with open(tmp_path / "log" / "out", "w+") as out, open(tmp_path / "log" / "err", "w+") as err:
        command = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=out, stderr=err, text=True)
        seen = set()
        deadline = time.monotonic() + 600
        while command.poll() is None and time.monotonic() < deadline:
            seen |= {port for parent, port in _servers().values() if parent == command.pid}
            time.sleep(0.05)
        command.kill()
        code = command.wait()
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(argv, code, out.read(), err.read())
    return done, seen


def test_the_run_uses_the_one_server_started_ahead_and_it_ends_with_the_command(
    tmp_path: Path,
):
    source = tmp_path / "day.csv"
    source.write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))

    done, seen = _watched_run(tmp_path, "--source", str(source))

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    ports = [int(port) for port in STARTING.findall(done.stderr)]
    # One server, started by the command itself, on the port its log names: Prefect started
    # none of its own (it would have logged a second "Starting temporary server").
    assert len(ports) == 1 and seen == set(ports), output
    assert f"Stopping temporary server on http://127.0.0.1:{ports[0]}" in done.stderr
    # The run's states and logs reached that server before it stopped: its database has them.
    assert "Finished in state Completed()" in done.stderr
    assert not [port for _, port in _servers().values() if port in ports]
    flows, tasks, logs = _recorded(tmp_path / "prefect-home")
    assert flows == {"retrain": "COMPLETED", "prepare_data": "COMPLETED"}, flows
    assert tasks == {"COMPLETED"}, tasks  # task runs' states arrive as events
    finished = "Finished in state Completed()"
    assert logs.count(finished) == done.stderr.count(finished) > 1, logs

    # A user error (a source that does not exist): exit 1, and no server outlives it either.
    failed, seen = _watched_run(tmp_path, "--source", str(tmp_path / "missing.csv"))

    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "bikeflow: retraining failed" in failed.stderr and "Traceback" not in output
    ports = [int(port) for port in STARTING.findall(failed.stderr)]
    assert len(ports) == 1 and seen == set(ports), output
    assert not [port for _, port in _servers().values() if port in ports]
