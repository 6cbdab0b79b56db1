"""A cold run's head start: what the run will wait for later starts while the flow is imported.

A cold ``bikeflow run`` spends most of its seconds starting things, one after the other: this
process imports Prefect and the flow, Prefect's temporary API server starts in a subprocess of
its own, then the training child starts and imports Keras. None of them needs the other to
begin, so ``head_start`` starts the server before Prefect is imported, and ``HeadStart.wait``
the training child once the flow is:

- Prefect's temporary server (``tasks.temporary_server``: the process Prefect would start at
  the run's first API call, started without importing Prefect), where Prefect would start one
  (no ``PREFECT_API_URL`` in the environment, settings files or profile); the run finds it
  through ``PREFECT_API_URL``, set before Prefect reads its settings;
- a spare training child for the run's backend (``tasks.training.child_process.start_spare``),
  which the run's first training takes instead of starting one. It starts once the flow is
  imported (``HeadStart.wait``), not first thing: on two cores, three processes importing at
  once made the server answer later (flow run to flow run: 13.3 s, 11.3 s with the child
  started after the imports; ``benchmarks/flow_vs_plain.py``).

Where Prefect is imported already (a caller in the same process), or where a settings file
might name an API (``temporary_server.wanted``), Prefect's settings decide: its own
``SubprocessASGIServer`` starts in a thread then, unless they name an API.

``HeadStart.wait`` logs Prefect's "Starting temporary server" line and waits for the server to
answer, before the flow runs; ``HeadStart.close`` ends a spare no training took (a fully cached
rerun) and, once Prefect's queued logs and events are delivered, the server.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from tasks import temporary_server
from tasks.temporary_server import TemporaryServer


@dataclass
class HeadStart:
    """The subprocesses started ahead of a run."""

    verbosity: str
    server: TemporaryServer | None = None
    prefects_server: threading.Thread | None = None
    backend: str | None = None

    def wait(self) -> None:
        """Start the spare training child, then wait until the temporary server answers
        (``TemporaryServerError`` if it does not)."""
        if self.backend is not None:
            from tasks.training.child_process import start_spare

            # Only now, with the flow imported: while this process imported, the server and
            # it had the cores to themselves; the child's imports end while the server starts
            # and the data are prepared, before its request comes.
            start_spare(self.backend)
        if self.prefects_server is not None:
            # Its failure is not raised here: the run then starts it again itself, and says why.
            self.prefects_server.join()
        if self.server is not None:
            with _console(self.verbosity):
                self.server.wait_until_ready(_startup_timeout(), self._point_prefect_at_server)

    def _point_prefect_at_server(self) -> None:
        assert self.server is not None
        os.environ["PREFECT_API_URL"] = self.server.api_url
        if "prefect" in sys.modules:  # it read its settings from the environment on import
            from prefect.context import refresh_global_settings_context

            refresh_global_settings_context()

    def close(self) -> None:
        """End a spare training child that the run did not take, and the temporary server."""
        from tasks.training.child_process import discard_spares

        discard_spares()
        if self.server is None or self.server.process is None:
            return
        if "prefect" in sys.modules:
            # What Prefect does at exit before its server stops: send the logs and the events
            # (task runs' states among them) still queued.
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            APILogWorker.drain_all(timeout=5)
            EventsWorker.drain_all(timeout=5)
        with _console(self.verbosity):
            self.server.stop()
        if os.environ.get("PREFECT_API_URL") == self.server.api_url:
            del os.environ["PREFECT_API_URL"]
            if "prefect" in sys.modules:  # a later run in this process: Prefect decides again
                from prefect.context import refresh_global_settings_context

                refresh_global_settings_context()


@contextlib.contextmanager
def _console(verbosity: str) -> Iterator[None]:
    # Prefect's server lines obey --quiet/--verbose, as within the run.
    if "prefect" not in sys.modules:  # nothing prints them yet
        yield
        return
    from tasks.progress_display import prefect_console_level

    with prefect_console_level(verbosity):
        yield


def _startup_timeout() -> float:
    if "prefect" in sys.modules:
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        return float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 20)


def _start_prefects_server(verbosity: str) -> None:
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():  # set in a Prefect profile: the run uses that server
        return
    with contextlib.suppress(Exception), _console(verbosity):
        SubprocessASGIServer().start()


def head_start(backend: str | None, verbosity: str) -> HeadStart:
    """Start, without ``PREFECT_API_URL``, Prefect's temporary server and the run's training
    child (for ``backend``; None: the run trains nothing); return at once."""
    started = HeadStart(verbosity)
    if "prefect" not in sys.modules and temporary_server.wanted():
        started.server = TemporaryServer()
        started._point_prefect_at_server()
    elif not os.environ.get("PREFECT_API_URL"):  # Prefect's settings decide, as before
        started.prefects_server = threading.Thread(
            target=_start_prefects_server, args=(verbosity,), name="bikeflow-server-start"
        )
        started.prefects_server.start()
    started.backend = backend
    return started
