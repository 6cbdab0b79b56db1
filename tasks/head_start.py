"""A cold run's head start: what the run will wait for later starts while the flow is imported.

A cold ``bikeflow run`` spends most of its seconds starting things, one after the other: this
process imports Prefect and the flow, Prefect's temporary API server starts in a subprocess of
its own, then the training child starts and imports Keras. None of them needs the other to
begin, so ``head_start`` begins the two subprocesses at once, before the flow is imported:

- a spare training child for the run's backend (``tasks.training.child_process.start_spare``),
  which the run's first training takes instead of starting one;
- Prefect's temporary server, started in a thread by Prefect's own ``SubprocessASGIServer``
  (the one the run would start at its first API call), only where no ``PREFECT_API_URL`` is
  set.

``HeadStart.wait`` joins the server's thread before the flow runs; ``HeadStart.close`` ends a
spare no training took (a fully cached rerun).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass


@dataclass
class HeadStart:
    """The subprocesses started ahead of a run."""

    server: threading.Thread | None

    def wait(self) -> None:
        """Wait until the temporary server's start has finished (or failed: the run then
        starts it again itself, and reports what went wrong)."""
        if self.server is not None:
            self.server.join()

    def close(self) -> None:
        """End a spare training child that the run did not take."""
        from tasks.training.child_process import discard_spares

        discard_spares()


def _start_temporary_server(verbosity: str) -> None:
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    from tasks.progress_display import prefect_console_level

    if PREFECT_API_URL.value():  # set in a Prefect profile: the run uses that server
        return

    # Its "Starting temporary server" line obeys --quiet/--verbose, as within the run.
    with contextlib.suppress(Exception), prefect_console_level(verbosity):
        SubprocessASGIServer().start()


def head_start(backend: str | None, verbosity: str) -> HeadStart:
    """Start the run's training child (for ``backend``; None: the run trains nothing) and,
    without ``PREFECT_API_URL``, Prefect's temporary server; return at once."""
    if backend is not None:
        from tasks.training.child_process import start_spare

        start_spare(backend)
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server = threading.Thread(
            target=_start_temporary_server, args=(verbosity,), name="bikeflow-server-start"
        )
        server.start()
    return HeadStart(server)
