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
from collections.abc import Callable, Iterator
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

    def raise_reported_error(self, what: str = "training") -> None:
        """Raise the error the child reported (a user error without its traceback)."""
        error = self.error
        if error is None:
            return
        if error.get("user_error"):
            raise TrainingError(f"{what} failed: {error['type']}: {error['message']}")
        raise TrainingProcessError(
            f"{what} failed: {error['type']}: {error['message']}\n{error['traceback']}"
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


class _Child:
    """A training child process, its stderr read into a tail from its start to its end."""

    def __init__(self, warm_backend: str | None = None) -> None:
        command, env = _child_command(warm_backend)
        # Our own interpreter and module, with arguments we built: no user input in the command.
        self.process = subprocess.Popen(  # noqa: S603
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stderr_tail: deque[str] = deque(maxlen=40)
        # Read from the start: a child waiting for its request must never block on a full pipe.
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_tail.append(line.rstrip())

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def finish(self, kill: bool = False) -> int:
        """End the child (closing its stdin ends its loop; ``kill``: at once); its exit code."""
        if kill:
            self.process.kill()
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.drainer.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return code


_lock = threading.Lock()
# Spare children: started before the run needs them (``start_spare``), each already past its
# Python start and its Keras/JAX imports (seconds of a cold run) and waiting for a request.
_spares: dict[str, list[_Child]] = {}
# Idle children kept for the next request of their backend while ``reusing_children`` holds.
_idle: dict[str, list[_Child]] = {}
_reuse_depth = 0
# Reused between requests: JAX children (one process can train one group after another).
# TensorFlow children are not: TensorFlow keeps a GPU's memory until its process exits.
REUSABLE_BACKENDS = frozenset({"jax"})


def start_spare(backend: str) -> None:
    """Start a training child for ``backend`` now, so its start-up overlaps the run's own.

    ``bikeflow run`` calls it before it imports Prefect: the child imports Keras on
    ``backend`` while this process imports the flow and Prefect's temporary server starts.
    The next training on that backend takes it instead of starting a child
    (``run_child``); ``discard_spares`` ends one nobody took.
    """
    child = _Child(warm_backend=backend)
    with _lock:
        first = not _spares
        _spares.setdefault(backend, []).append(child)
    if first:
        atexit.register(discard_spares)


def _take(pool: dict[str, list[_Child]], backend: str | None) -> _Child | None:
    with _lock:
        waiting = pool.get(backend or "", [])
        while waiting:
            child = waiting.pop(0)
            if child.alive():  # one that died is replaced by a fresh one by the caller
                return child
    return None


def discard_spares() -> None:
    """End every spare child no training took.

    Killed, not asked: a spare has only imported modules (it writes nothing before its
    request), and one still importing would keep an exit waiting for seconds.
    """
    with _lock:
        spares = [child for waiting in _spares.values() for child in waiting]
        _spares.clear()
    for child in spares:
        child.finish(kill=True)


@contextlib.contextmanager
def reusing_children() -> Iterator[None]:
    """Within: a JAX child that finished a request waits for the next one instead of exiting.

    One child trains a run's member group and then its refits, or a backtest's origins one
    after another, paying its Python start and Keras imports once. On leaving (the outermost
    scope), the idle children are ended; a child that failed or timed out is never kept.
    """
    global _reuse_depth
    with _lock:
        _reuse_depth += 1
    try:
        yield
    finally:
        with _lock:
            _reuse_depth -= 1
            idle = [child for waiting in _idle.values() for child in waiting]
            if _reuse_depth == 0:
                _idle.clear()
            else:
                idle = []
        for child in idle:
            child.finish()


def _keep_for_reuse(child: _Child, backend: str | None) -> bool:
    with _lock:
        if _reuse_depth == 0 or backend not in REUSABLE_BACKENDS:
            return False
        _idle.setdefault(backend, []).append(child)
        return True


def run_child(
    request_json: str,
    timeout_minutes: float,
    on_event: Callable[[dict[str, Any]], None],
    backend: str | None = None,
) -> ChildOutcome:
    """Run ``python -m tasks.training.child`` on one request; every event but ``error`` goes to
    ``on_event`` as it arrives. The child is killed after ``timeout_minutes``.

    ``backend``: the request's Keras backend. An idle child of that backend
    (``reusing_children``) or a spare one (``start_spare``) is used if there is one.
    """
    child = _take(_idle, backend) or _take(_spares, backend) or _Child()
    process = child.process
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
    ended = False
    try:
        # One request a line; the child serves lines until its stdin closes.
        process.stdin.write(request_json.replace("\n", " ") + "\n")
        process.stdin.flush()
        for line in process.stdout:
            event = json.loads(line)
            if event["event"] == "end":
                ended = True
                break
            if event["event"] == "error":
                error = event
            else:
                on_event(event)
    finally:
        watchdog.cancel()
        if not ended or error is not None or timed_out.is_set():
            code = child.finish(kill=process.poll() is None and not ended)
        elif _keep_for_reuse(child, backend):
            code = 0
        else:
            code = child.finish()
    return ChildOutcome(code, timed_out.is_set(), error, list(child.stderr_tail))
