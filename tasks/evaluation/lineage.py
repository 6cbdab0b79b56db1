"""Where a model came from: the code, the Prefect flow run, the libraries, the data and config.

Recorded in metrics.json and in each registry version (tasks/promotion/registry.py). Prefect is
imported only inside ``flow_run_lineage``: the registry reads this module and must stay
Prefect-free for ``bikeflow plan``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks.storage.library_versions import NOT_INSTALLED
from tasks.storage.library_versions import library_versions as storage_versions

PACKAGE = "bikeflow"
# The libraries whose versions shape a model's numbers or how it was run.
LIBRARIES = ("numpy", "pandas", "keras", "tensorflow", "prefect", "pandera")
# The checkout this code runs from, when it runs from one (not from an installed wheel).
SOURCE_ROOT = Path(__file__).resolve().parents[2]


class GitState(BaseModel):
    """The commit of the checkout the code ran from, and whether it had local changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commit: str
    dirty: bool


class FlowRunLineage(BaseModel):
    """The Prefect flow run that made the model (its deployment when it had one)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str | None = None
    deployment: str | None = None
    ui_url: str | None = None


class Lineage(BaseModel):
    """Everything a registry version records about its origin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package_version: str | None
    git: GitState | None
    flow_run: FlowRunLineage | None
    libraries: dict[str, str | None]
    source_sha256: str
    config: dict[str, Any]
    created_at: str


def package_version() -> str | None:
    """The installed bikeflow's version, or None when it is not installed."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def library_versions() -> dict[str, str | None]:
    """The installed version of each library in ``LIBRARIES`` (None when absent).

    Read as the cache keys read them (``tasks.storage.library_versions``), so a version
    card and a key never disagree about what was installed.
    """
    found = storage_versions(LIBRARIES)
    return {name: None if version == NOT_INSTALLED else version for name, version in found.items()}


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # A fixed argument list (no shell), git found on PATH: nothing from the user runs.
        done = subprocess.run(  # noqa: S603
            [git, "-C", str(SOURCE_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state() -> GitState | None:
    """The checkout's commit and dirty flag; None without git or outside a checkout."""
    if not (SOURCE_ROOT / ".git").exists():
        # An installed wheel: site-packages may sit inside some unrelated repository.
        return None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    if commit is None or status is None:
        return None
    return GitState(commit=commit.strip(), dirty=bool(status.strip()))


def flow_run_lineage() -> FlowRunLineage | None:
    """The current Prefect flow run (id, name, deployment, UI link), or None outside one."""
    with contextlib.suppress(ImportError):
        from prefect.runtime import deployment, flow_run

        run_id = flow_run.id
        if run_id is None:
            return None
        deployment_name = deployment.name if deployment.id else None
        url = None
        with contextlib.suppress(Exception):
            # Only when PREFECT_UI_URL (or a server's API URL) lets Prefect build it.
            url = flow_run.ui_url
        return FlowRunLineage(
            id=str(run_id), name=flow_run.name, deployment=deployment_name, ui_url=url
        )
    return None


def gather_lineage(source_sha256: str, config: dict[str, Any]) -> Lineage:
    """The lineage of a model made now, from this code, in this flow run."""
    return Lineage(
        package_version=package_version(),
        git=git_state(),
        flow_run=flow_run_lineage(),
        libraries=library_versions(),
        source_sha256=source_sha256,
        config=config,
        created_at=datetime.now(UTC).isoformat(),
    )


def with_lineage(
    metrics: dict[str, Any], first_date: str, last_date: str, source_sha256: str
) -> dict[str, Any]:
    """metrics.json's content with the data's date range and the lineage added."""
    # Added here, not in build_metrics: evaluate_model's cache key digests metrics.py.
    lineage = gather_lineage(source_sha256, metrics["config"])
    return {
        **metrics,
        "data_first_date": first_date,
        "data_last_date": last_date,
        "lineage": lineage.model_dump(mode="json"),
    }
