"""Ingest: copy the source's bytes (CSV, or day.csv out of the UCI zip) into the store."""

from __future__ import annotations

import gzip
import io
import itertools
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prefect import task

from schemas.errors import ArtifactError, SourceError, SourceUnavailableError
from schemas.source import UnsupportedSource, UrlSource
from schemas.sources import allowed_source
from tasks.prepare.retries import (
    INGEST_RETRIES,
    JITTER_FACTOR,
    download_attempt,
    is_transient_status,
    retry_after_seconds,
    retry_delays,
    retry_transient,
)
from tasks.prepare.source_access import http_client, known_digest, source_key_material
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import RawData
from tasks.storage.store import ArtifactStore, FileRef

MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
MAX_MEMBER_BYTES = 512 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 60.0
_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"
# Markers of an HTML or XML page (a login or error page served where a CSV was expected).
_MARKUP = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--")


def looks_like_markup(start: bytes) -> bool:
    """True when the first bytes of a file are an HTML/XML page rather than CSV text."""
    text = start.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<") and any(marker in text[:1024] for marker in _MARKUP)


PROGRESS_SECONDS = 10.0  # a progress line at most this often: long downloads, quiet logs


def _with_progress(chunks: Iterator[bytes], total: int, url: str) -> Iterator[bytes]:
    """Pass chunks through, logging the bytes received so far every PROGRESS_SECONDS."""
    from prefect.context import TaskRunContext
    from prefect.logging import get_run_logger

    logger = get_run_logger() if TaskRunContext.get() else None
    received, last = 0, time.monotonic()
    for chunk in chunks:
        received += len(chunk)
        if logger is not None and time.monotonic() - last > PROGRESS_SECONDS:
            last = time.monotonic()
            share = f" of {total / 1e6:.1f} MB ({100 * received / total:.0f}%)" if total else ""
            logger.info("downloaded %.1f MB%s from %s", received / 1e6, share, url)
        yield chunk


def _unavailable(url: str, reason: str) -> SourceUnavailableError:
    """The transient failure of one attempt, saying which attempt it was (Prefect retries it)."""
    attempt, attempts = download_attempt()
    return SourceUnavailableError(
        f"source {url}: download failed ({reason}) on attempt {attempt} of {attempts}; "
        "a connection error, a 5xx or a 429 is retried with growing waits, so the server "
        "stayed unavailable throughout"
    )


def _check_status(url: str, response: httpx.Response) -> None:
    """Raise for an answer that is not the file: transient ones retried, the rest at once."""
    if response.status_code == 200:
        return
    reason = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    if is_transient_status(response.status_code):
        # Prefect's retry delays are fixed per task; a server that says when to come back
        # is waited for here, within a bound, before the attempt fails.
        wait = retry_after_seconds(response.headers.get("retry-after"))
        if wait:
            time.sleep(wait)
        raise _unavailable(url, reason)
    raise SourceError(f"source {url}: the server answered {reason}")


def _download(url: str, store: ArtifactStore, suffix: str) -> FileRef:
    """Stream a URL into the store in one attempt; never keeps a partial file.

    A transient failure raises ``SourceUnavailableError``, which ``ingest_source``'s Prefect
    retries try again; any other failure raises ``SourceError`` and fails at once.
    """
    try:
        with (
            http_client(DOWNLOAD_TIMEOUT_SECONDS) as client,
            client.stream("GET", url) as response,
        ):
            _check_status(url, response)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            declared = int(response.headers.get("content-length") or 0)
            if declared > MAX_DOWNLOAD_BYTES:
                raise SourceError(
                    f"source {url}: {declared} bytes is over the {MAX_DOWNLOAD_BYTES}-byte cap"
                )
            chunks: Iterator[bytes] = response.iter_bytes(1 << 20)
            if kind in ("text/html", "application/xhtml+xml"):
                # A mislabelled CSV is let through; a page that is markup is not.
                first = next(chunks, b"")
                if looks_like_markup(first):
                    raise SourceError(
                        f"source {url}: the server sent an HTML page ({kind}), not a CSV "
                        "file (a login or error page? check the URL)"
                    )
                chunks = itertools.chain([first], chunks)
            chunks = _with_progress(chunks, declared, url)
            return store.put_stream(chunks, suffix, max_bytes=MAX_DOWNLOAD_BYTES)
    except httpx.TransportError as error:
        # Connection refused or reset, a timeout, a broken stream: worth another attempt.
        raise _unavailable(url, f"{type(error).__name__}: {error}") from error


def extract_member(data: bytes, wanted: str, source: str) -> tuple[str, bytes]:
    """Take one file out of a zip by its base name, with a cap on its uncompressed size."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise SourceError(f"source {source}: not a readable zip ({error})") from error
    with archive:
        matches = [
            info
            for info in archive.infolist()
            if not info.is_dir() and info.filename.replace("\\", "/").rsplit("/", 1)[-1] == wanted
        ]
        if not matches:
            names = ", ".join(info.filename for info in archive.infolist()[:20])
            raise SourceError(f"source {source}: the zip holds no {wanted} (it holds: {names})")
        info = min(matches, key=lambda item: item.filename.count("/"))
        if info.file_size > MAX_MEMBER_BYTES:
            raise SourceError(
                f"source {source}: {info.filename} unpacks to {info.file_size} bytes, "
                f"over the {MAX_MEMBER_BYTES}-byte cap"
            )
        # Read no more than the cap even if the header lies about the size (zip bomb).
        try:
            with archive.open(info) as member:
                content = member.read(MAX_MEMBER_BYTES + 1)
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            RuntimeError,
            NotImplementedError,
        ) as error:
            # A corrupt or lying member (bad CRC, truncated stream), encryption or an
            # unsupported compression method: the user's zip, not our bug.
            raise SourceError(
                f"source {source}: {info.filename} cannot be unpacked ({error})"
            ) from error
        if len(content) > MAX_MEMBER_BYTES:
            raise SourceError(f"source {source}: {info.filename} unpacks past the size cap")
        return info.filename, content


def gunzip(path: Path, source: str, store: ArtifactStore) -> FileRef:
    """Decompress a gzip file into the store, with the same cap as a zip member."""

    def chunks() -> Iterator[bytes]:
        with gzip.open(path, "rb") as member:
            # Read no more than the cap, whatever the stream claims (gzip bomb).
            while chunk := member.read(1 << 20):
                yield chunk

    try:
        return store.put_stream(chunks(), ".csv", max_bytes=MAX_MEMBER_BYTES)
    except ArtifactError as error:
        if "size cap" not in str(error):
            raise
        raise SourceError(
            f"source {source}: unpacks to more than the {MAX_MEMBER_BYTES}-byte cap"
        ) from error
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise SourceError(f"source {source}: not a readable gzip file ({error})") from error


def _copy_file(path: Path, store: ArtifactStore) -> FileRef:
    """Copy a local file into the store, unless the store holds it under this run's digest."""
    suffix = path.suffix[:8] or ".bin"
    try:
        # The cache policy hashed this file moments ago (same process, file unchanged): when
        # the store already holds those bytes, the file is not read a second time.
        digest = known_digest(path)
        if digest is not None:
            stored = store.stored_file(digest, suffix, path.stat().st_size)
            if stored is not None:
                return stored
        return store.put_file(path, suffix)
    except OSError as error:
        raise SourceError(f"source {path}: cannot be read ({error.strerror})") from error


def fetch_source(source: str, store: ArtifactStore, member: str = "day.csv") -> RawData:
    """Copy a source into the store and take the table out of it.

    A zip yields ``member``; a gzip file (found by its first bytes, whatever its name) is
    decompressed; an HTML page is refused.
    """
    # The deployment's allow-list: nothing is read or opened before it.
    parsed = allowed_source(source)
    if isinstance(parsed, UrlSource):
        fetched = _download(source, store, parsed.suffix)
    elif isinstance(parsed, UnsupportedSource):
        raise parsed.refusal()
    else:
        fetched = _copy_file(parsed.existing_file(), store)
    with open(fetched.path, "rb") as handle:
        start = handle.read(1024)
    if start.startswith(_ZIP_MAGIC):
        name, content = extract_member(Path(fetched.path).read_bytes(), member, source)
        table = store.put_bytes(content, ".csv")
        return RawData(source=source, fetched=fetched, table=table, member=name)
    if start.startswith(_GZIP_MAGIC):
        table = gunzip(Path(fetched.path), source, store)
        return RawData(source=source, fetched=fetched, table=table)
    if looks_like_markup(start):
        raise SourceError(
            f"source {source}: is an HTML page, not a CSV file (a login or error page? "
            "check the URL or the file)"
        )
    return RawData(source=source, fetched=fetched, table=fetched)


class SourceFingerprint(ArtifactCache):
    """Key ingest on the source's content, so an edited source invalidates everything after it.

    A local file is hashed. A URL is keyed on its HTTP validators (ETag, Last-Modified,
    length); a server that sends none is downloaded every run, and the steps after ingest are
    still cached because they key on the digest of what was downloaded.
    """

    def key_material(self, task: Any, inputs: dict[str, Any]) -> dict[str, Any] | None:
        material = super().key_material(task, inputs)
        return None if material is None else source_key_material(material, inputs)


@task(
    name="ingest_source",
    cache_policy=SourceFingerprint(),
    # Prefect's own retries, for transient download failures only (tasks/prepare/retries.py):
    # about a minute and a half of waits in all, so a source down for a minute still succeeds.
    retries=INGEST_RETRIES,
    retry_delay_seconds=retry_delays(),
    retry_jitter_factor=JITTER_FACTOR,
    retry_condition_fn=retry_transient,
    persist_result=True,
    result_serializer="json",
)
def ingest_source(source: str, store_root: str, member: str = "day.csv") -> RawData:
    """Copy the source's bytes into the artifact store under their sha256."""
    return fetch_source(source, ArtifactStore(store_root), member)
