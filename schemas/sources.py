"""Which sources a run may read: the operator's allow-list, read where the flow runs.

``$BIKEFLOW_SOURCE_ROOTS`` lists folders (os.pathsep-separated, like ``BIKEFLOW_ROOTS``) that
local sources must resolve under; ``$BIKEFLOW_SOURCE_HOSTS`` lists URL hosts (comma-separated;
``host`` allows any port, ``host:port`` that port only; exact names, no wildcards). Setting
either one turns the allow-list on, and then a source must be listed in one of them: a
worker that lists only hosts reads no local files. With neither set every local file and
http(s) URL is allowed, as for local CLI use. The check needs no byte of the source and no
connection, and ``tasks/prepare/ingest.py`` runs it again before each request, redirects included.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

from schemas.errors import SourceRefusedError
from schemas.source import LocalSource, ParsedSource, UrlSource, parse_source

SOURCE_ROOTS_ENV = "BIKEFLOW_SOURCE_ROOTS"
SOURCE_HOSTS_ENV = "BIKEFLOW_SOURCE_HOSTS"
# Validation context of a config revalidated on the worker: its source fields are left to the
# step that reads them (ingest, the batch prediction), which checks them before the first byte.
_WHERE_READ = "sources_checked_where_read"
CHECKED_WHERE_READ = {_WHERE_READ: True}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def source_roots() -> tuple[Path, ...]:
    """The folders local sources must resolve under (empty: none listed)."""
    parts = os.environ.get(SOURCE_ROOTS_ENV, "").split(os.pathsep)
    return tuple(Path(part).expanduser().resolve() for part in parts if part.strip())


def source_hosts() -> tuple[str, ...]:
    """The URL hosts sources may come from, lower-case (empty: none listed)."""
    parts = os.environ.get(SOURCE_HOSTS_ENV, "").split(",")
    return tuple(part.strip().lower() for part in parts if part.strip())


def allow_list_on() -> bool:
    """Tell whether the operator set either allow-list variable."""
    return bool(source_roots() or source_hosts())


def _listed(names: tuple[str, ...] | tuple[Path, ...]) -> str:
    return ", ".join(str(name) for name in names) or "nothing"


def check_host(url: str, host: str, port: int | None, scheme: str) -> None:
    """Refuse a URL whose host (and port) is not in ``$BIKEFLOW_SOURCE_HOSTS``."""
    if not allow_list_on():
        return
    host = host.lower().strip("[]")
    port = port or _DEFAULT_PORTS.get(scheme)
    for entry in source_hosts():
        listed = parse_source(f"http://{entry}")  # always a URL: the scheme is http
        if not isinstance(listed, UrlSource):
            continue
        if listed.port_error is not None:
            raise ValueError(listed.port_error)  # an entry whose port is not a port
        if listed.host == host and listed.port in (None, port):
            return
    raise SourceRefusedError(
        f"source {url}: host {host}:{port} is not listed in {SOURCE_HOSTS_ENV} "
        f"({_listed(source_hosts())}), so no connection is made"
    )


def check_allowed(source: ParsedSource) -> None:
    """Refuse a source the allow-list does not cover, before any byte is read."""
    if not allow_list_on():
        return
    if isinstance(source, UrlSource):
        if source.port_error is not None:
            raise SourceRefusedError(f"source {source.text}: {source.port_error}")
        check_host(source.text, source.host, source.port, source.scheme)
        return
    path = source.path if isinstance(source, LocalSource) else None
    if path is not None and any(path.is_relative_to(root) for root in source_roots()):
        return
    where = path if path is not None else repr(source.text)
    raise SourceRefusedError(
        f"source {where} is not under a folder listed in {SOURCE_ROOTS_ENV} "
        f"({_listed(source_roots())}), so it is not read"
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


Source = Annotated[str, AfterValidator(_check_field)]
