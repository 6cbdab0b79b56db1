"""How a user error shows in Prefect's logs: its message, without a traceback.

Prefect's task and flow engines log a failure with ``exc_info``, so every bad value in a user's
file came with two tracebacks of Prefect internals. ``UserErrorFilter`` is a standard
``logging.Filter`` on Prefect's run loggers (``prefect.task_runs``, ``prefect.flow_runs``):
for an exception of ours (``BikeflowError``) it drops the traceback and keeps the message,
in the terminal and in the API's logs alike. Any other exception is a bug and keeps its
traceback. The flows install it when they are imported, so it holds wherever they run (CLI,
Python, a worker's flow-run process).

The ``bikeflow`` command prints the failure itself, once; ``console_quiet_for_user_errors``
keeps Prefect's lines about that failure off the terminal meanwhile (the UI still has them).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Iterator

from schemas.errors import BikeflowError

RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")
# A record that carried a user error, or repeats the message of one (a "Finished in state
# Failed(...)" line) has this attribute set to True.
USER_ERROR_ATTRIBUTE = "bikeflow_user_error"
_NEEDLE_CHARS = 120


class UserErrorFilter(logging.Filter):
    """Drop the traceback of a ``BikeflowError`` from a log record; mark the records about it."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        # Messages of recent user errors, to mark the state lines that repeat them.
        self._recent: deque[str] = deque(maxlen=16)

    def filter(self, record: logging.LogRecord) -> bool:
        """Strip ``exc_info`` of our own errors; never drops a record."""
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BikeflowError):
            record.exc_info = None
            record.exc_text = None
            setattr(record, USER_ERROR_ATTRIBUTE, True)
            text = str(error)[:_NEEDLE_CHARS]
            with self._lock:
                self._recent.extend((text, repr(text)[1:-1]))
        elif error is None and self._recent:
            message = record.getMessage()
            with self._lock:
                if any(needle and needle in message for needle in self._recent):
                    setattr(record, USER_ERROR_ATTRIBUTE, True)
        return True


_FILTER = UserErrorFilter()


def install_user_error_filter() -> None:
    """Put the filter on Prefect's run loggers (once; safe to call again)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def _not_about_user_errors(record: logging.LogRecord) -> bool:
    return not getattr(record, USER_ERROR_ATTRIBUTE, False)


@contextlib.contextmanager
def console_quiet_for_user_errors() -> Iterator[None]:
    """Within: terminal handlers skip Prefect's lines about a user error (the caller says it)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    install_user_error_filter()
    handlers = [
        handler
        for logger in (logging.getLogger(), *(logging.getLogger(n) for n in RUN_LOGGERS))
        for handler in logger.handlers
        if isinstance(handler, PrefectConsoleHandler)
    ]
    for handler in handlers:
        handler.addFilter(_not_about_user_errors)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(_not_about_user_errors)
