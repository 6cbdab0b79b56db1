"""Flow tests talk to the session's Prefect server (a module sets NEEDS_PREFECT = False if not)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _prefect_api(request: pytest.FixtureRequest) -> None:
    """Start (once) and use the session's temporary Prefect API."""
    if getattr(request.module, "NEEDS_PREFECT", True):
        request.getfixturevalue("prefect_server")
