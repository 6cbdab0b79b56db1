"""Finding trip files (a folder or a glob) and opening each CSV in them: .csv, .csv.gz, .zip."""

from __future__ import annotations

import glob
import gzip
import io
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO

from schemas.errors import SourceError

SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".zip")


def is_trip_file(path: Path) -> bool:
    """True for a visible .csv, .csv.gz or .zip file (not a dotfile such as ._x.zip)."""
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(SUFFIXES)


def find_trip_files(pattern: str | Path) -> list[Path]:
    """The trip files of a folder (every .csv, .csv.gz, .zip in it) or of a glob, sorted."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        found = [child for child in path.iterdir() if is_trip_file(child)]
        what = f"the folder {path}"
    elif path.is_file():
        found = [path] if is_trip_file(path) else []
        what = f"the file {path}"
    else:
        found = [Path(name) for name in glob.glob(str(path)) if is_trip_file(Path(name))]
        what = f"the pattern {pattern}"
    if not found:
        raise SourceError(
            f"{what}: no trip files found (trip history is read from .csv, .csv.gz and .zip "
            "files; a folder is read without its subfolders)"
        )
    return sorted(found)


def is_csv_member(info: zipfile.ZipInfo) -> bool:
    """True for a CSV file in a zip, leaving out folders and macOS's __MACOSX/._ copies."""
    name = info.filename
    base = name.rsplit("/", 1)[-1]
    return (
        not info.is_dir()
        and name.lower().endswith(".csv")
        and not name.startswith("__MACOSX/")
        and not base.startswith(".")
    )


def _text(binary: IO[bytes] | gzip.GzipFile) -> io.TextIOWrapper:
    # utf-8-sig drops the byte order mark some exports start with; newline="" leaves line
    # ends to the CSV reader (quoted fields may hold them).
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


def open_trip_members(path: Path) -> Iterator[tuple[str, io.TextIOWrapper]]:
    """Yield (where, text stream) for a .csv, a .csv.gz, or each CSV member of a .zip.

    ``where`` names the place in messages: the file, or ``file.zip:member.csv``. Each stream
    is open only until the next one is asked for.
    """
    name = path.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                members = [info for info in archive.infolist() if is_csv_member(info)]
                if not members:
                    raise SourceError(f"{path}: the zip holds no CSV file")
                for info in members:
                    with ExitStack() as stack:
                        binary = stack.enter_context(archive.open(info))
                        yield f"{path}:{info.filename}", stack.enter_context(_text(binary))
        elif name.endswith(".gz"):
            with _text(gzip.open(path, "rb")) as stream:
                yield str(path), stream
        else:
            with _text(open(path, "rb")) as stream:
                yield str(path), stream
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError) as error:
        raise SourceError(f"{path}: cannot be read as {path.suffix} ({error})") from error
    except UnicodeDecodeError as error:
        raise SourceError(f"{path}: not UTF-8 text ({error})") from error
