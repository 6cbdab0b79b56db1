"""A run's source as a typed value: a local file, an http(s) URL, or a scheme bikeflow cannot read.

The config keeps the source as the string the user gave (the UI form and prefect.yaml fill it
with a string); ``parse_source`` turns that string into one of these values where it is used,
and is the one place a source is taken apart. It reads no byte of the source and opens no
connection, so the allow-list (``schemas/sources.py``) can check the value before anything is
read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from schemas.errors import SourceError

URL_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class LocalSource:
    """A local file, named by a plain path or a ``file://`` URL, resolved (``~``, symlinks)."""

    text: str
    path: Path

    def existing_file(self) -> Path:
        """The file itself; a ``SourceError`` when nothing (or a folder) is there."""
        if not self.path.is_file():
            raise SourceError(f"source {self.path}: no such file")
        return self.path


@dataclass(frozen=True)
class UrlSource:
    """An http(s) URL: its host (lower-case), its port if given, and the path it asks for.

    A port that is not a number in 0-65535 is kept as ``port_error`` rather than refused here:
    unless the allow-list is on, such a URL is left for the download to report.
    """

    text: str
    scheme: str
    host: str
    port: int | None
    path: str
    port_error: str | None = None

    @property
    def suffix(self) -> str:
        """The file suffix the URL's path ends with (at most 8 characters, ``.bin`` if none)."""
        return Path(self.path).suffix[:8] or ".bin"


@dataclass(frozen=True)
class UnsupportedSource:
    """A URL of a scheme bikeflow does not read (ftp:, s3:, ...)."""

    text: str
    scheme: str

    def refusal(self) -> SourceError:
        """The error that says which sources bikeflow reads."""
        return SourceError(
            f"source {self.text!r}: only http(s) URLs and local files are supported, "
            f"not {self.scheme!r}"
        )


ParsedSource = LocalSource | UrlSource | UnsupportedSource


def parse_source(text: str) -> ParsedSource:
    """Take a source string apart: a local path or ``file://`` URL, an http(s) URL, or neither."""
    parsed = urlparse(text)
    if parsed.scheme in URL_SCHEMES:
        try:
            port, port_error = parsed.port, None
        except ValueError as error:
            port, port_error = None, str(error)
        return UrlSource(
            text=text,
            scheme=parsed.scheme,
            host=parsed.hostname or "",
            port=port,
            path=parsed.path,
            port_error=port_error,
        )
    if parsed.scheme == "file":
        return LocalSource(text=text, path=Path(parsed.path).expanduser().resolve())
    if len(parsed.scheme) > 1:  # one letter would be a Windows drive, not a scheme
        return UnsupportedSource(text=text, scheme=parsed.scheme)
    return LocalSource(text=text, path=Path(text).expanduser().resolve())
