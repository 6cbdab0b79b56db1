"""Where a source is and how it is reached, and the fingerprint that keys the ingest step.

A source is a local file (a path or a ``file://`` URL) or an http(s) URL behind the source
allow-list. The fingerprint is what ``ingest_source``'s cache key adds to the step's code and
parameters. This module imports neither Prefect nor, for a local file, httpx, because
``bikeflow plan`` computes the same key on every call and should answer in about a second.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.errors import SourceError
from schemas.source import LocalSource, UrlSource
from schemas.sources import allowed_source, check_host
from tasks.storage.store import sha256_file

if TYPE_CHECKING:
    import httpx


# The fingerprint's digest of a local file, by the file's identity and mtime: ingest's copy,
# in the same process right after, finds it here and reads the file no second time.
_digests: dict[tuple[str, int, int, int], str] = {}
_digests_lock = threading.Lock()


def _identity(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


def file_digest(path: Path) -> str:
    """The sha256 of a local source file, read once per process while the file is unchanged."""
    identity = _identity(path)
    with _digests_lock:
        known = _digests.get(identity)
    if known is None:
        known = sha256_file(path)
        with _digests_lock:
            _digests[identity] = known
    return known


def known_digest(path: Path) -> str | None:
    """The digest ``file_digest`` already took of this file as it is now (None: not taken)."""
    identity = _identity(path)
    with _digests_lock:
        return _digests.get(identity)


def _allowed_request(request: httpx.Request) -> None:
    # httpx calls this before every request it sends, each redirect included, so a redirect
    # to a host the allow-list does not name is refused before its connection is opened.
    url = request.url
    check_host(str(url), url.host, url.port, url.scheme)


def http_client(timeout: float) -> httpx.Client:
    """An httpx client that follows redirects only to hosts the source allow-list permits."""
    import httpx

    return httpx.Client(
        timeout=timeout, follow_redirects=True, event_hooks={"request": [_allowed_request]}
    )


def source_key_material(material: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any] | None:
    """Add the store and the source's fingerprint to ingest's key (None: the step runs uncached).

    A local file is hashed. A URL is keyed on its HTTP validators (ETag, Last-Modified,
    length); a server that sends none gives no key, so the file is downloaded every run.
    """
    # The same relative store_root in two working folders is two stores.
    material["store"] = str(Path(inputs["store_root"]).expanduser().resolve())
    try:
        # Refused: no key, and the task itself reports the refusal.
        source = allowed_source(inputs["source"])
        fingerprint: str | list[str | None] | None
        if isinstance(source, UrlSource):
            fingerprint = _url_validators(source.text)
        elif isinstance(source, LocalSource):
            fingerprint = file_digest(source.existing_file())
        else:
            return None  # a scheme ingest does not read: the task says so
    except (SourceError, OSError):
        # No key: the task runs and reports the problem with the source itself.
        return None
    if fingerprint is None:
        return None
    material["source"] = fingerprint
    return material


def _url_validators(url: str) -> list[str | None] | None:
    import httpx

    try:
        with http_client(10.0) as client:
            response = client.head(url)
    except httpx.HTTPError:
        return None
    validators = [response.headers.get(name) for name in ("etag", "last-modified")]
    if response.status_code != 200 or not any(validators):
        return None
    return [*validators, response.headers.get("content-length")]
