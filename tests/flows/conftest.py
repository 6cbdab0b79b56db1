"""Every flow test talks to the session's Prefect server."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _prefect_api(prefect_server: None) -> None:
    """Start (once) and use the session's temporary Prefect API."""
