"""Where a source is and how it is reached, and the fingerprint that keys the ingest step.

A source is a local file (a path or a ``file://`` URL) or an http(s) URL behind the source
allow-list. The fingerprint is what ``ingest_source``'s cache key adds to the step's code and
parameters. This module imports neither Prefect nor, for a local file, httpx, because
``bikeflow plan`` computes the same key on every call and should answer in about a second.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from schemas.errors import SourceError
from schemas.sources import check_host, check_source

if TYPE_CHECKING:
    import httpx


def is_url(source: str) -> bool:
    """Tell whether a source names an http(s) URL rather than a local file."""
    return urlparse(source).scheme in ("http", "https")


def local_path(source: str) -> Path:
    """Resolve a local source (plain path or file:// URL) to an existing file."""
    parsed = urlparse(source)
    if parsed.scheme == "file":
        source = parsed.path
    elif len(parsed.scheme) > 1:  # one letter would be a Windows drive, not a scheme
        raise SourceError(
            f"source {source!r}: only http(s) URLs and local files are supported, "
            f"not {parsed.scheme!r}"
        )
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise SourceError(f"source {path}: no such file")
    return path


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
    source = inputs["source"]
    # The same relative store_root in two working folders is two stores.
    material["store"] = str(Path(inputs["store_root"]).expanduser().resolve())
    try:
        check_source(source)  # refused: no key, and the task itself reports the refusal
        fingerprint = _url_validators(source) if is_url(source) else _file_digest(source)
    except (SourceError, OSError):
        # No key: the task runs and reports the problem with the source itself.
        return None
    if fingerprint is None:
        return None
    material["source"] = fingerprint
    return material


def _file_digest(source: str) -> str:
    digest = hashlib.sha256()
    with open(local_path(source), "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
