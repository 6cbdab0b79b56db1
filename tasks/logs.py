"""The logger of the current Prefect run, or the library's outside one (a notebook's call)."""

from __future__ import annotations

import logging
from typing import Any

from prefect.exceptions import MissingContextError
from prefect.logging import get_logger, get_run_logger


def run_logger(name: str = "bikeflow") -> logging.Logger | Any:
    """The run's logger inside a flow or task run, else ``prefect.<name>`` (a plain call)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger(name)
