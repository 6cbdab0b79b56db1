"""Prefect's temporary API server for one command, started before Prefect is imported.

Without ``PREFECT_API_URL``, Prefect starts this server itself at a run's first API call
(``prefect.server.api.server.SubprocessASGIServer``). That class lives in Prefect's server
package, whose import takes 3.7 s against 1.2 s for ``import prefect`` (2-core machine, bytecode
compiled): CPU that held the GIL against the flow's own imports when a thread imported it. So a
cold run starts the same process the same way, without importing Prefect at all: uvicorn with
Prefect's app factory, Prefect's three variables over this environment, a port in Prefect's
range (a new one when uvicorn cannot start: exit 3), and points the run at it through
``PREFECT_API_URL`` set before Prefect is imported. Prefect's other settings reach the server as
they reach Prefect's: it reads the same environment, profile and working folder.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import http.client
import importlib.util
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

PORTS = range(8000, 9000)  # SubprocessASGIServer._port_range
STARTUP_FAILURE = 3  # uvicorn's exit code when it cannot start (a port taken among others)
ENABLED = ("PREFECT_SERVER_EPHEMERAL_ENABLED", "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE")
# Files from which Prefect may read an API URL; rather than parse them, leave it to Prefect.
SETTINGS_FILES = (".env", "prefect.toml")
logger = logging.getLogger("prefect")  # Prefect logs its server's lines on this logger


class TemporaryServerError(RuntimeError):
    """The temporary API server did not start: why, and the last lines it wrote."""


def _active_profile(environ: dict[str, str]) -> dict[str, object] | None:
    """The settings of the profile Prefect would load (None: unreadable), as Prefect finds it."""
    home = Path(environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    named = environ.get("PREFECT_PROFILES_PATH", "").replace("$PREFECT_HOME", str(home))
    path = Path(named).expanduser() if named else home / "profiles.toml"
    spec = importlib.util.find_spec("prefect")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    default = Path(spec.submodule_search_locations[0]) / "settings" / "profiles.toml"
    try:
        if path.is_file():
            data = tomllib.loads(path.read_text())
            active = environ.get("PREFECT_PROFILE") or data.get("active")
            if active in data.get("profiles", {}):  # else Prefect takes its default profile
                return dict(data["profiles"][active])
        data = tomllib.loads(default.read_text())
        return dict(data["profiles"][data.get("active", "ephemeral")])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return None


def wanted(environ: dict[str, str] | None = None, cwd: Path | None = None) -> bool:
    """Tell whether Prefect would start a temporary server here: no API URL in the
    environment, settings files or active profile, and ephemeral mode on (as by default)."""
    environ = dict(os.environ if environ is None else environ)
    cwd = Path.cwd() if cwd is None else cwd
    pyproject = cwd / "pyproject.toml"
    if environ.get("PREFECT_API_URL") or any((cwd / name).exists() for name in SETTINGS_FILES):
        return False
    if pyproject.is_file() and "tool.prefect" in pyproject.read_text(errors="replace"):
        return False
    profile = _active_profile(environ)
    if profile is None or profile.get("PREFECT_API_URL"):
        return False
    # The environment first, then the profile; off by default (the default profile turns it on).
    enabled: list[object] = [environ[name] for name in ENABLED if environ.get(name)]
    enabled += [profile[name] for name in ENABLED if name in profile]
    return str(next(iter(enabled), False)).lower() in ("true", "1", "yes", "on", "t", "y")


def _free_port() -> int:
    for _ in range(10):
        port = random.choice(PORTS)  # noqa: S311 (a port, as Prefect picks it; not a secret)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with contextlib.closing(probe), contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return port
    raise TemporaryServerError(f"no free port in {PORTS.start}-{PORTS.stop - 1} on 127.0.0.1")


class TemporaryServer:
    """One uvicorn process serving Prefect's API on 127.0.0.1, for this process's runs."""

    def __init__(self) -> None:
        spec = importlib.util.find_spec("prefect")
        assert spec is not None and spec.submodule_search_locations
        self.app_dir = str(Path(spec.submodule_search_locations[0]).parent)
        extra = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}
        self.env = {**os.environ, **extra, "PREFECT__SERVER_FINAL": "1"}
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        self.announced = False
        self.process: subprocess.Popen[str] | None = None
        self._launch()
        atexit.register(self.stop)

    @property
    def api_url(self) -> str:
        """The URL the run's Prefect client talks to."""
        return f"http://127.0.0.1:{self.port}/api"

    def _launch(self) -> None:
        self.port = _free_port()
        command = [sys.executable, "-m", "uvicorn", "--app-dir", self.app_dir, "--factory"]
        command += ["prefect.server.api.server:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        self.process = subprocess.Popen(  # noqa: S603
            command, env=self.env, stderr=subprocess.PIPE, text=True, errors="replace"
        )
        # Its stderr still reaches ours, line by line; the last lines are kept for an error.
        self.relay = threading.Thread(target=self._relay, args=(self.process,), daemon=True)
        self.relay.start()

    def _relay(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.tail.append(line)
            sys.stderr.write(line)

    def wait_until_ready(
        self, timeout: float, on_new_port: Callable[[], None] | None = None
    ) -> None:
        """Log Prefect's "Starting temporary server" line, then wait for ``/api/health``;
        a new port when uvicorn could not start (``on_new_port()`` is called then)."""
        self._announce("Starting")
        deadline = time.monotonic() + timeout
        restarts = 0
        while time.monotonic() < deadline:
            assert self.process is not None
            code = self.process.poll()
            if code == STARTUP_FAILURE and restarts < 3:
                restarts += 1
                self._launch()
                self._announce("Starting")
                if on_new_port is not None:
                    on_new_port()
                continue
            if code is not None:
                self._fail(f"exited with code {code} before it answered")
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection.request("GET", "/api/health")
                if connection.getresponse().status == 200:
                    return
            connection.close()
            time.sleep(0.05)
        self._fail(f"did not answer within {timeout:g} s")

    def _fail(self, what: str) -> None:
        self.stop()
        self.relay.join(timeout=1)  # its last lines, up to its exit
        said = "".join(self.tail).strip() or "nothing"
        raise TemporaryServerError(
            f"Prefect's temporary API server (uvicorn, {self.api_url}) {what} "
            f"(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS sets the wait); it wrote: {said}"
        )

    def _announce(self, verb: str) -> None:
        # Prefect's own lines, word for word; "Stopping" only after a "Starting".
        if verb == "Starting":
            self.announced = True
            more = "https://www.prefect.io/docs/v3/concepts/server#how-to-guides"
            logger.info(
                f"Starting temporary server on http://127.0.0.1:{self.port}\nSee {more} "
                "for more information on running a dedicated Prefect server."
            )
        elif self.announced:
            logger.info(f"Stopping temporary server on http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        """End the server (as Prefect does: terminate, 5 s, kill); safe to call again."""
        process, self.process = self.process, None
        if process is None:
            return
        self._announce("Stopping")
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
