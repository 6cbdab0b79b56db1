"""Reading CSV text: the header, chunks of rows as text, and typed columns with every bad cell.

File-level problems (not UTF-8, no header, ragged rows, missing columns) and cells that are
empty or not a number or date of the right kind go into the report; nothing here raises for
a user's file.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import IO

import numpy as np
import pandas as pd

from schemas.errors import Failure
from schemas.records import STATION_COLUMN
from schemas.report import ValidationReport, format_value

RAGGED_RULE = "every row has as many fields as the header"


def parser_failure(error: Exception) -> Failure:
    """A pandas parser error as a failure, with the row it names."""
    message = str(error).strip()
    line = re.search(r"line (\d+)", message)
    row = int(line.group(1)) - 1 if line else None
    return Failure(row, None, RAGGED_RULE, message)


def first_undecodable(handle: IO[bytes]) -> tuple[int | None, int | None, int | None]:
    """Row, file offset and value of the first byte that is not UTF-8 (None where unknown).

    pandas reports the offset within its own read buffer, so the file is scanned again, line
    by line, to name the row; this only runs once a file has already failed.
    """
    try:
        handle.seek(0)
    except (OSError, ValueError):
        return None, None, None
    offset = 0
    for line_number, line in enumerate(handle, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            # The header is line 1, so data row N is line N + 1.
            return line_number - 1 or None, offset + error.start, line[error.start]
        offset += len(line)
    return None, None, None


def report_read_error(error: Exception, handle: IO[bytes], report: ValidationReport) -> None:
    """Record why a CSV stream could not be read (the error is one pandas raises for a file)."""
    if isinstance(error, UnicodeDecodeError):
        row, offset, byte = first_undecodable(handle)
        report.fail(
            Failure(
                row,
                None,
                "file is UTF-8 text",
                f"byte {byte if byte is not None else error.object[error.start]:#04x} "
                f"at offset {offset if offset is not None else error.start}",
            )
        )
    elif isinstance(error, pd.errors.EmptyDataError):
        report.fail(Failure(None, None, "file has a header row", "empty file"))
    elif isinstance(error, pd.errors.ParserError | pd.errors.ParserWarning):
        report.fail(parser_failure(error))
    else:
        report.fail(Failure(None, None, "file is a CSV table", str(error).strip()))


# What pandas raises for a file it cannot read (its parser errors are ValueErrors).
READ_ERRORS = (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserWarning, ValueError)


def read_header(handle: IO[bytes], report: ValidationReport) -> list[str] | None:
    """The column names of a binary CSV stream (rewound after), or None with the reason.

    Names are as written: a UTF-8 byte-order mark is dropped and quotes are undone, but a
    name given twice stays twice (pandas would rename the second one), so that the check
    of the columns can say so.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            header = pd.read_csv(handle, nrows=0, index_col=False, encoding="utf-8")
    except READ_ERRORS as error:
        report_read_error(error, handle, report)
        return None
    names = [str(name) for name in header.columns]
    handle.seek(0)
    line = handle.readline(1 << 20).decode("utf-8-sig", errors="replace")
    handle.seek(0)
    try:
        written = next(csv.reader(line.splitlines()[:1]), [])
    except csv.Error:  # pandas read it; keep its names
        return names
    return written if len(written) == len(names) else names


def _listing(names: Iterable[str], shown: int = 20) -> str:
    names = list(names)
    text = ", ".join(format_value(name) for name in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def read_chunks(
    handle: IO[bytes], text_columns: Iterable[str], chunk_rows: int, report: ValidationReport
) -> Iterator[pd.DataFrame]:
    """Yield chunks of rows of a binary CSV stream; a file-level problem ends them, reported."""
    try:
        with warnings.catch_warnings():
            # A first data row longer than the header is only a warning to pandas.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(
                handle,
                dtype=dict.fromkeys(text_columns, str),
                keep_default_na=False,
                index_col=False,
                chunksize=chunk_rows,
                encoding="utf-8",
            )
            yield from reader
    except READ_ERRORS as error:
        report_read_error(error, handle, report)


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars"}


def _header_failure(columns: list[str], rule: str, value: str) -> Failure:
    """A broken rule of the header, naming its column when exactly one column breaks it."""
    return Failure(None, columns[0] if len(columns) == 1 else None, rule, value)


def check_columns(
    present: Iterable[str], expected: Iterable[str], report: ValidationReport
) -> bool:
    """Record what is wrong with a header, one sentence per kind; True when all is right.

    The kinds: not comma-separated, a name given twice, required columns missing (with the
    columns found), columns that are not expected (``station`` is optional).
    """
    expected = tuple(expected)
    present = [str(name) for name in present]
    if not set(present) & set(expected):
        # Not one known name: an export with another separator reads as one or two columns.
        header = ",".join(present)
        separator = next((s for s in SEPARATORS if s in header), None)
        if separator is not None:
            report.fail(
                Failure(
                    None,
                    None,
                    "fields are separated by commas",
                    f"the header is separated by {SEPARATORS[separator]}: {format_value(header)}",
                )
            )
            return False
    ok = True
    repeated = [name for name, count in Counter(present).items() if count > 1]
    if repeated:
        ok = False
        report.fail(
            _header_failure(
                repeated, "column names are unique", "given more than once: " + _listing(repeated)
            )
        )
    missing = [name for name in expected if name not in present]
    unexpected = [name for name in present if name not in (*expected, STATION_COLUMN)]
    if missing:
        ok = False
        report.fail(
            _header_failure(
                missing,
                "the required columns are present",
                f"missing {_listing(missing)}; found {_listing(dict.fromkeys(present))}",
            )
        )
    elif unexpected:
        ok = False
        report.fail(
            _header_failure(
                unexpected, "no unexpected columns", _listing(dict.fromkeys(unexpected))
            )
        )
    return ok


def parse_columns(
    frame: pd.DataFrame,
    int_columns: Iterable[str],
    float_columns: Iterable[str],
    date_column: str,
    report: ValidationReport,
) -> pd.DataFrame:
    """Convert a chunk to int64/float64/datetime; record and drop rows that do not parse.

    Columns that pandas already read as clean numbers take a fast path; a column with any
    odd cell is re-read as text to say which cell is wrong and why.
    """
    typed: dict[str, pd.Series] = {}
    bad_rows = np.zeros(len(frame), dtype=bool)

    def flag(column: str, mask: np.ndarray, rule: str) -> None:
        nonlocal bad_rows
        for index in np.flatnonzero(mask):
            value = frame[column].iloc[index]
            report.fail(Failure(int(frame.index[index]) + 1, column, rule, format_value(value)))
        bad_rows |= mask

    for column in int_columns:
        series = frame[column]
        if pd.api.types.is_integer_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        ):
            typed[column] = series.astype("int64")
            continue
        raw = series.astype(str).str.strip()
        number = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        empty = (raw == "").to_numpy()
        flag(column, empty, "value is not empty")
        # inf, fractions and integers too large for float64 to hold exactly are not integers
        # (and would make the int64 cast below raise a raw pandas error).
        with np.errstate(invalid="ignore"):
            whole = np.isfinite(number) & (np.mod(number, 1) == 0) & (np.abs(number) <= 2**53)
        flag(column, (~empty) & ~whole, "value is an integer")
        typed[column] = pd.Series(np.where(whole, number, 0), index=frame.index).astype("int64")
    for column in float_columns:
        series = frame[column]
        if pd.api.types.is_float_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype):
            number = series.astype("float64")
            flag(column, ~np.isfinite(number.to_numpy()), "value is a finite number")
            typed[column] = number
            continue
        raw = series.astype(str).str.strip()
        number = pd.to_numeric(raw, errors="coerce")
        empty = (raw == "").to_numpy()
        flag(column, empty, "value is not empty")
        flag(
            column,
            (~empty) & ~np.isfinite(number.to_numpy(dtype=float)),
            "value is a finite number",
        )
        typed[column] = number.astype("float64")
    text = frame[date_column].astype(str).str.strip()
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce", cache=True)
    flag(date_column, dates.isna().to_numpy(), "value is a date YYYY-MM-DD")
    typed[date_column] = dates
    parsed = pd.DataFrame(typed, index=frame.index)[list(frame.columns)]
    return parsed[~bad_rows] if bad_rows.any() else parsed


def read_table(data: bytes, report: ValidationReport) -> pd.DataFrame | None:
    """Parse CSV bytes of a small file as text columns; file-level problems go into the report."""
    handle = io.BytesIO(data)
    if read_header(handle, report) is None:
        return None
    try:
        with warnings.catch_warnings():
            # A first data row longer than the header is only a warning to pandas.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                handle, dtype=str, keep_default_na=False, index_col=False, encoding="utf-8"
            )
    except READ_ERRORS as error:
        report_read_error(error, handle, report)
        return None
