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
from urllib.parse import urlparse

from pydantic import AfterValidator

from schemas.errors import SourceRefusedError

SOURCE_ROOTS_ENV = "BIKEFLOW_SOURCE_ROOTS"
SOURCE_HOSTS_ENV = "BIKEFLOW_SOURCE_HOSTS"
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


def local_source(source: str) -> Path | None:
    """The resolved file a local source names (plain path or file:// URL), None for a URL."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "file":
        source = parsed.path
    elif len(parsed.scheme) > 1:  # ftp:, s3: ...: not a local file either
        return None
    return Path(source).expanduser().resolve()


def _listed(names: tuple[str, ...] | tuple[Path, ...]) -> str:
    return ", ".join(str(name) for name in names) or "nothing"


def check_host(url: str, host: str, port: int | None, scheme: str) -> None:
    """Refuse a URL whose host (and port) is not in ``$BIKEFLOW_SOURCE_HOSTS``."""
    if not allow_list_on():
        return
    host = host.lower().strip("[]")
    port = port or _DEFAULT_PORTS.get(scheme)
    for entry in source_hosts():
        listed = urlparse(f"//{entry}")
        if (listed.hostname or "") == host and listed.port in (None, port):
            return
    raise SourceRefusedError(
        f"source {url}: host {host}:{port} is not listed in {SOURCE_HOSTS_ENV} "
        f"({_listed(source_hosts())}), so no connection is made"
    )


def check_source(source: str) -> str:
    """Refuse a source the allow-list does not cover, before any byte is read; return it."""
    if not allow_list_on():
        return source
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        try:
            port = parsed.port
        except ValueError as error:
            raise SourceRefusedError(f"source {source}: {error}") from error
        check_host(source, parsed.hostname or "", port, parsed.scheme)
        return source
    path = local_source(source)
    if path is not None and any(path.is_relative_to(root) for root in source_roots()):
        return source
    where = path if path is not None else repr(source)
    raise SourceRefusedError(
        f"source {where} is not under a folder listed in {SOURCE_ROOTS_ENV} "
        f"({_listed(source_roots())}), so it is not read"
    )


Source = Annotated[str, AfterValidator(check_source)]
