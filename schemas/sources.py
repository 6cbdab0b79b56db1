"""Which sources a run may read: the operator's allow-list, read where the flow runs.

``$BIKEFLOW_SOURCE_ROOTS`` lists folders (os.pathsep-separated, like ``BIKEFLOW_ROOTS``) that
local sources must resolve under; ``$BIKEFLOW_SOURCE_HOSTS`` lists URL hosts (comma-separated;
``host`` allows any port, ``host:port`` that port only; exact names, no wildcards). Setting
either one turns the allow-list on, and then a source must be listed in one of them: a
worker that lists only hosts reads no local files. With neither set every local file and
http(s) URL is allowed, as for local CLI use. The check needs no byte of the source and no
connection, and ``tasks/prepare/ingest.py`` runs it again before each request, redirects included.

Safe worker defaults: a flow run started by a worker or runner (a deployment, the UI) with
neither variable set reads only the checkout's ``data/`` folder and the UCI dataset's host
(``archive.ics.uci.edu``). The checkout is the folder holding this package and a
``pyproject.toml``; an installed package has none, and then ``data/`` is the working folder's.
Such a run is recognised by ``PREFECT__FLOW_RUN_ID``, which Prefect's workers and runners set
in the process of every flow run they start, and which ``bikeflow run`` never sets. Local CLI
runs keep reading any file or URL the user names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

from schemas.errors import SourceRefusedError
from schemas.source import LocalSource, ParsedSource, TripsSource, UrlSource, parse_source

SOURCE_ROOTS_ENV = "BIKEFLOW_SOURCE_ROOTS"
SOURCE_HOSTS_ENV = "BIKEFLOW_SOURCE_HOSTS"
# Validation context of a config revalidated on the worker: its source fields are left to the
# step that reads them (ingest, the batch prediction), which checks them before the first byte.
_WHERE_READ = "sources_checked_where_read"
CHECKED_WHERE_READ = {_WHERE_READ: True}
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Set by Prefect's workers and runners in each flow run's process (prefect.runtime reads it).
FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"
UCI_HOST = "archive.ics.uci.edu"
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def source_roots() -> tuple[Path, ...]:
    """The folders local sources must resolve under (empty: none listed)."""
    parts = os.environ.get(SOURCE_ROOTS_ENV, "").split(os.pathsep)
    return tuple(Path(part).expanduser().resolve() for part in parts if part.strip())


def source_hosts() -> tuple[str, ...]:
    """The URL hosts sources may come from, lower-case (empty: none listed)."""
    parts = os.environ.get(SOURCE_HOSTS_ENV, "").split(",")
    return tuple(part.strip().lower() for part in parts if part.strip())


def default_data_root() -> Path:
    """The worker's default source folder: the checkout's data/, else the working folder's."""
    if (_PROJECT_ROOT / "pyproject.toml").is_file():
        return _PROJECT_ROOT / "data"
    return Path.cwd().resolve() / "data"


def started_by_deployment() -> bool:
    """Tell whether this process runs a flow run a worker or runner started (a deployment)."""
    return bool(os.environ.get(FLOW_RUN_ENV, "").strip())


@dataclass(frozen=True)
class AllowList:
    """The folders and hosts a run may read; ``on`` False means everything is allowed."""

    roots: tuple[Path, ...]
    hosts: tuple[str, ...]
    on: bool
    # True when nothing is set and a deployment's run gets the safe defaults.
    defaults: bool = False

    def describe(self, name: str, listed: tuple[str, ...] | tuple[Path, ...]) -> str:
        """What a refusal says the setting holds: its entries, or that the defaults apply."""
        if self.defaults:
            return f"{name} is unset, so a run started by a deployment reads only {_listed(listed)}"
        return _listed(listed)


def decide_allow_list(deployment_run: bool) -> AllowList:
    """The allow-list in force: the operator's, else the safe defaults for a deployment's run."""
    roots, hosts = source_roots(), source_hosts()
    if roots or hosts:
        return AllowList(roots=roots, hosts=hosts, on=True)
    if deployment_run:
        return AllowList(roots=(default_data_root(),), hosts=(UCI_HOST,), on=True, defaults=True)
    return AllowList(roots=(), hosts=(), on=False)


def current_allow_list() -> AllowList:
    """The allow-list for this process (see ``decide_allow_list``)."""
    return decide_allow_list(started_by_deployment())


def allow_list_on() -> bool:
    """Tell whether an allow-list applies: set by the operator, or a deployment's defaults."""
    return current_allow_list().on


def _listed(names: tuple[str, ...] | tuple[Path, ...]) -> str:
    return ", ".join(str(name) for name in names) or "nothing"


def check_host(url: str, host: str, port: int | None, scheme: str) -> None:
    """Refuse a URL whose host (and port) is not in ``$BIKEFLOW_SOURCE_HOSTS``."""
    allowed = current_allow_list()
    if not allowed.on:
        return
    host = host.lower().strip("[]")
    port = port or _DEFAULT_PORTS.get(scheme)
    for entry in allowed.hosts:
        listed = parse_source(f"http://{entry}")  # always a URL: the scheme is http
        if not isinstance(listed, UrlSource):
            continue
        if listed.port_error is not None:
            raise ValueError(listed.port_error)  # an entry whose port is not a port
        if listed.host == host and listed.port in (None, port):
            return
    raise SourceRefusedError(
        f"source {url}: host {host}:{port} is not listed in {SOURCE_HOSTS_ENV} "
        f"({allowed.describe(SOURCE_HOSTS_ENV, allowed.hosts)}), so no connection "
        f"is made; list the host in {SOURCE_HOSTS_ENV} on the worker to allow it"
    )


def check_allowed(source: ParsedSource) -> None:
    """Refuse a source the allow-list does not cover, before any byte is read."""
    allowed = current_allow_list()
    if not allowed.on:
        return
    if isinstance(source, UrlSource):
        if source.port_error is not None:
            raise SourceRefusedError(f"source {source.text}: {source.port_error}")
        check_host(source.text, source.host, source.port, source.scheme)
        return
    # Trip files: the folder they are found under (each file found is checked again).
    path = source.path if isinstance(source, LocalSource | TripsSource) else None
    if path is not None and any(path.is_relative_to(root) for root in allowed.roots):
        return
    where = path if path is not None else repr(source.text)
    raise SourceRefusedError(
        f"source {where} is not under a folder listed in {SOURCE_ROOTS_ENV} "
        f"({allowed.describe(SOURCE_ROOTS_ENV, allowed.roots)}), so it is not "
        f"read; list its folder in {SOURCE_ROOTS_ENV} on the worker to allow it"
    )


def allowed_source(text: str) -> ParsedSource:
    """Parse a source and refuse it if the allow-list does not cover it; return the value."""
    source = parse_source(text)
    check_allowed(source)
    return source


def check_source(text: str) -> str:
    """Refuse a source string the allow-list does not cover (the config field's check)."""
    if allow_list_on():  # unset, every source is allowed: no need to take it apart
        allowed_source(text)
    return text


def _check_field(value: str, info: ValidationInfo) -> str:
    context = info.context if isinstance(info.context, dict) else {}
    if context.get(_WHERE_READ):
        return value
    return check_source(value)


def _check_optional_field(value: str, info: ValidationInfo) -> str:
    # Empty: no such source given (the weather of a day.csv source is in its own rows).
    return value if not value.strip() else _check_field(value, info)


Source = Annotated[str, AfterValidator(_check_field)]
# A source that may be left empty (the weather table, needed only by a trips source).
OptionalSource = Annotated[str, AfterValidator(_check_optional_field)]
