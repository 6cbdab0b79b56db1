"""How ingest retries a download, with Prefect's task retries: which failures, how long between.

A connection error, a 5xx, a 408/425 or a 429 is transient: ``ingest_source`` is tried again
after 2, 4, 8, 16, 30, 30 s (Prefect's ``exponential_backoff``, capped, with jitter), about a
minute and a half in all, so a source down for a minute still succeeds. Anything else (a 404,
a host the allow-list refuses, a bad file) fails at once. ``$BIKEFLOW_RETRY_BASE_SECONDS``
sets the first wait (read at each retry; tests set 0).
"""

from __future__ import annotations

import email.utils
import os
import time
from typing import Any

from prefect.context import TaskRunContext
from prefect.logging.loggers import task_run_logger
from prefect.tasks import exponential_backoff

from schemas.errors import SourceUnavailableError

INGEST_RETRIES = 6
RETRY_BASE_ENV = "BIKEFLOW_RETRY_BASE_SECONDS"
DEFAULT_RETRY_BASE_SECONDS = 2.0
MAX_RETRY_DELAY_SECONDS = 30.0
# Each delay is drawn between itself and 1.5 times itself, so many workers do not retry at once.
JITTER_FACTOR = 0.5
# A Retry-After longer than this is not waited for in full: the retries' own waits follow.
MAX_RETRY_AFTER_SECONDS = 60.0
_TRANSIENT_STATUS = {408, 425, 429}


def retry_base_seconds() -> float:
    """The first retry's wait, from ``$BIKEFLOW_RETRY_BASE_SECONDS`` (default 2 s)."""
    text = os.environ.get(RETRY_BASE_ENV, "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_RETRY_BASE_SECONDS
    except ValueError:
        return DEFAULT_RETRY_BASE_SECONDS


class _BackoffDelays(list[float]):
    """Prefect's retry delays, computed again at each retry from the current base wait.

    Prefect indexes ``retry_delay_seconds`` when a retry is due, so an operator's (or a
    test's) ``$BIKEFLOW_RETRY_BASE_SECONDS`` applies without re-importing the task.
    """

    def __getitem__(self, index: Any) -> Any:
        delays = [
            min(delay, MAX_RETRY_DELAY_SECONDS)
            for delay in exponential_backoff(retry_base_seconds())(len(self))
        ]
        return delays[index]


def retry_delays() -> list[float]:
    """The waits before each of ``INGEST_RETRIES`` retries (a list, as Prefect expects)."""
    return _BackoffDelays([0.0] * INGEST_RETRIES)


def is_transient_status(status: int) -> bool:
    """Tell whether an HTTP status is worth another attempt (5xx, 408, 425, 429)."""
    return status >= 500 or status in _TRANSIENT_STATUS


def retry_after_seconds(header: str | None) -> float:
    """The wait a ``Retry-After`` header asks for (seconds or a date), at most a minute."""
    if not header:
        return 0.0
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def download_attempt() -> tuple[int, int]:
    """This attempt's number and the number of attempts in all (1 of 1 outside a task)."""
    context = TaskRunContext.get()
    if context is None or context.task_run is None:
        return 1, 1
    return max(context.task_run.run_count, 1), context.task.retries + 1


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's retry condition: retry a transient download failure, nothing else."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # an unreadable failure is no transient download failure
            return False
    if isinstance(error, SourceUnavailableError):
        return True
    if isinstance(error, BaseException):
        # Prefect logs a failure it does not retry only once no retries are left; this one
        # fails the task now, so it is logged here as Prefect logs a task without retries
        # (with the error attached: tasks/error_logs.py then treats a user error as such).
        task_run_logger(task_run, task=task).error(
            "Task run failed with exception: %r",
            error,
            exc_info=(type(error), error, error.__traceback__),
        )
    return False
