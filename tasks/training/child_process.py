"""The parent's side of one training child: start it, feed its request, read its events, and
kill it at its timeout or on any way out, so that no child outlives the task that started it.

Used by ``train_model`` (one member, ``tasks.training.task``) and ``train_member_group``
(several members in one child, ``tasks.training.group_task``); each reads the events it
expects and turns the outcome into its result or a ``TrainingError``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import TrainingError


class TrainingProcessError(TrainingError):
    """The training child process died or reported an error."""


@dataclass
class ChildOutcome:
    """How a child ended: its exit code, whether the watchdog killed it, its error event."""

    code: int
    timed_out: bool
    error: dict[str, Any] | None = None
    stderr_tail: list[str] = field(default_factory=list)

    def raise_reported_error(self) -> None:
        """Raise the error the child reported (a user error without its traceback)."""
        error = self.error
        if error is None:
            return
        if error.get("user_error"):
            raise TrainingError(f"training failed: {error['type']}: {error['message']}")
        raise TrainingProcessError(
            f"training failed: {error['type']}: {error['message']}\n{error['traceback']}"
        )

    def ended_early(self, epochs_done: int) -> TrainingProcessError:
        """The error for a child that ended without its results (a crash, a signal)."""
        code = self.code
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        tail = "\n".join(self.stderr_tail)
        return TrainingProcessError(
            f"the training process ended ({how}) after {epochs_done} epoch(s); last output:\n{tail}"
        )


def _child_command(warm_backend: str | None) -> tuple[list[str], dict[str, str]]:
    """The child's command line and environment (``--warm BACKEND``: a spare, see below)."""
    project_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    # The child must import the same code as this process, wherever the flow was loaded from.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The child works in this process's folder, so a relative store root names the same store
    # (-P: that folder is not put on the child's import path; the code comes from PYTHONPATH).
    command = [sys.executable, "-P", "-m", "tasks.training.child"]
    return command + (["--warm", warm_backend] if warm_backend else []), env


def _spawn(warm_backend: str | None = None) -> subprocess.Popen[str]:
    command, env = _child_command(warm_backend)
    # Our own interpreter and module, with arguments we built: no user input in the command.
    return subprocess.Popen(  # noqa: S603
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


# Spare children: started before the run needs them (``start_spare``), each already past its
# Python start and its Keras/JAX imports (seconds of a cold run) and waiting for a request.
_spares: dict[str, list[subprocess.Popen[str]]] = {}
_spares_lock = threading.Lock()


def start_spare(backend: str) -> None:
    """Start a training child for ``backend`` now, so its start-up overlaps the run's own.

    ``bikeflow run`` calls it before it imports Prefect: the child imports Keras on
    ``backend`` while this process imports the flow and Prefect's temporary server starts.
    The next training on that backend takes it instead of starting a child
    (``run_child``); ``discard_spares`` ends one nobody took.
    """
    process = _spawn(warm_backend=backend)
    with _spares_lock:
        first = not _spares
        _spares.setdefault(backend, []).append(process)
    if first:
        atexit.register(discard_spares)


def _take_spare(backend: str | None) -> subprocess.Popen[str] | None:
    with _spares_lock:
        waiting = _spares.get(backend or "", [])
        while waiting:
            process = waiting.pop(0)
            if process.poll() is None:  # a spare that died is started afresh by the caller
                return process
    return None


def discard_spares() -> None:
    """End every spare child no training took.

    Killed, not asked: a spare has only imported modules (it writes nothing before its
    request), and one still importing would keep an exit waiting for seconds.
    """
    with _spares_lock:
        spares = [process for waiting in _spares.values() for process in waiting]
        _spares.clear()
    for process in spares:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def run_child(
    request_json: str,
    timeout_minutes: float,
    on_event: Callable[[dict[str, Any]], None],
    backend: str | None = None,
) -> ChildOutcome:
    """Run ``python -m tasks.training.child`` on one request; every event but ``error`` goes to
    ``on_event`` as it arrives. The child is killed after ``timeout_minutes``.

    ``backend``: the request's Keras backend; a spare child started for it is used if there
    is one (``start_spare``).
    """
    process = _take_spare(backend) or _spawn()
    stderr_tail: deque[str] = deque(maxlen=40)

    def drain_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr_tail.append(line.rstrip())

    drainer = threading.Thread(target=drain_stderr, daemon=True)
    drainer.start()
    assert process.stdin is not None and process.stdout is not None
    # training.timeout_minutes: a hung child (its epochs stop, the flow's heartbeats go on)
    # is killed, which ends its stdout below; the finally kills it on any other way out too
    # (Prefect's own task timeout, a flow cancelled), so no child outlives its task.
    timed_out = threading.Event()

    def stop_hung_child() -> None:
        timed_out.set()
        process.kill()

    watchdog = threading.Timer(60.0 * timeout_minutes, stop_hung_child)
    watchdog.daemon = True
    watchdog.start()
    error: dict[str, Any] | None = None
    try:
        process.stdin.write(request_json)
        process.stdin.close()
        for line in process.stdout:
            event = json.loads(line)
            if event["event"] == "error":
                error = event
            else:
                on_event(event)
        code = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    drainer.join(timeout=5)
    return ChildOutcome(code, timed_out.is_set(), error, list(stderr_tail))
