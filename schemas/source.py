"""A run's source as a typed value: a local file, trip files, an http(s) URL, or an unread scheme.

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
# The characters that make a local path a glob pattern (pathlib's and glob's).
GLOB_CHARACTERS = frozenset("*?[")


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


@dataclass(frozen=True)
class TripsSource:
    """Trip files: a local folder (every trip file in it) or a glob pattern of them.

    ``folder`` is the part of the pattern before its first glob character, resolved: the
    allow-list checks it, and an output may not hold it. ``pattern`` is the resolved folder
    with the rest of the pattern (for a plain folder, the folder itself).
    """

    text: str
    folder: Path
    pattern: str

    @property
    def path(self) -> Path:
        """The folder the trip files are found under (what the allow-list checks)."""
        return self.folder

    def existing_file(self) -> Path:
        """Trip files are no single file: a ``SourceError`` for the steps that read one."""
        raise SourceError(
            f"source {self.pattern}: a folder or pattern of trip files is read by a run's "
            "prepare_data (and bikeflow aggregate), not as a single day.csv or hour.csv"
        )


ParsedSource = LocalSource | TripsSource | UrlSource | UnsupportedSource


def is_pattern(text: str) -> bool:
    """Tell whether a local path holds glob characters (``*``, ``?``, ``[``)."""
    return any(character in GLOB_CHARACTERS for character in text)


def _local(text: str, raw_path: str) -> LocalSource | TripsSource:
    """A local path: a file (as before), else a folder or glob pattern of trip files."""
    path = Path(raw_path).expanduser()
    resolved = path.resolve()
    # An existing file is a file even if its name holds a glob character ("day[1].csv").
    if resolved.is_file() or not (resolved.is_dir() or is_pattern(raw_path)):
        return LocalSource(text=text, path=resolved)
    if resolved.is_dir():
        return TripsSource(text=text, folder=resolved, pattern=str(resolved))
    parts = path.parts
    first = next(index for index, part in enumerate(parts) if is_pattern(part))
    folder = Path(*parts[:first]).resolve() if first else Path.cwd().resolve()
    return TripsSource(text=text, folder=folder, pattern=str(folder.joinpath(*parts[first:])))


def parse_source(text: str) -> ParsedSource:
    """Take a source string apart: a local path or ``file://`` URL, an http(s) URL, or neither.

    A local path that is a folder, or a pattern with glob characters, is trip files
    (``TripsSource``); URLs are single files.
    """
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
        return _local(text, parsed.path)
    if len(parsed.scheme) > 1:  # one letter would be a Windows drive, not a scheme
        return UnsupportedSource(text=text, scheme=parsed.scheme)
    return _local(text, text)
