"""What real exports look like: variants that must parse to the same table, and ones that fail.

Every file is built in code from the project's generator (never a real row). An accepted
variant goes through ingest and validation and must give the very arrays the plain file
gives; a rejected one must fail with a message that names its problem.
"""

from __future__ import annotations

import csv
import gzip
import io
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from schemas.errors import DataValidationError, SourceError
from schemas.records import HOUR_COLUMNS, Granularity
from schemas.synthetic import make_day_frame, make_records, to_csv_bytes
from tasks.prepare.ingest import fetch_source
from tasks.prepare.validate import minimum_rows, validate_table
from tasks.storage.store import ArtifactStore, load_array

ROWS = 80
TEST_DAYS = 30


def plain() -> bytes:
    return to_csv_bytes(make_day_frame(ROWS, seed=3))


def _rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(plain().decode())))


def _write(rows: list[list[str]], **options: object) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, **options).writerows(rows)  # type: ignore[arg-type]
    return buffer.getvalue().encode()


def _quoted() -> bytes:
    return _write(_rows(), quoting=csv.QUOTE_ALL, lineterminator="\n")


def _reordered() -> bytes:
    frame = make_day_frame(ROWS, seed=3)
    return to_csv_bytes(frame[list(frame.columns[::-1])])


def _excel() -> bytes:
    """What a spreadsheet saves: BOM, CRLF, every field quoted, no final line break."""
    text = _write(_rows(), quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    return b"\xef\xbb\xbf" + text.rstrip(b"\r\n")


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


# name -> (file name, bytes)
ACCEPTED: dict[str, tuple[str, Callable[[], bytes]]] = {
    "windows-line-endings": ("day.csv", lambda: plain().replace(b"\n", b"\r\n")),
    "utf8-bom": ("day.csv", lambda: b"\xef\xbb\xbf" + plain()),
    "quoted-fields": ("day.csv", _quoted),
    "columns-in-another-order": ("day.csv", _reordered),
    "blank-lines-at-the-end": ("day.csv", lambda: plain() + b"\n\n\n"),
    "blank-crlf-lines-at-the-end": ("day.csv", lambda: plain().replace(b"\n", b"\r\n") + b"\r\n"),
    "no-final-newline": ("day.csv", lambda: plain().rstrip(b"\n")),
    "gzip": ("day.csv.gz", lambda: gzip.compress(plain())),
    "gzip-without-gz-name": ("day.csv", lambda: gzip.compress(plain())),
    "spreadsheet-export": ("day.csv", _excel),
    "spreadsheet-export-gzip": ("export.gz", lambda: gzip.compress(_excel())),
    "uci-zip": ("data.zip", lambda: _zip({"Bike/day.csv": plain(), "Bike/hour.csv": b"x"})),
}


def _set(row: int, column: str, value: str) -> Callable[[], bytes]:
    def build() -> bytes:
        rows = _rows()
        rows[row][rows[0].index(column)] = value
        return _write(rows, lineterminator="\n")

    return build


def _hourly_file() -> bytes:
    return to_csv_bytes(make_records(20, granularity="hour", seed=2))


def _duplicate_header() -> bytes:
    rows = _rows()
    rows[0][rows[0].index("casual")] = "cnt"
    return _write(rows, lineterminator="\n")


def _extra_field(row: int) -> bytes:
    rows = _rows()
    rows[row].append("42")
    return _write(rows, lineterminator="\n")


def _other_table() -> bytes:
    return b"station_id,name,lat,lon\n1,Main St,38.9,-77.0\n2,Elm St,38.8,-77.1\n"


# name -> (file name, bytes, granularity, fragments the message must hold)
REJECTED: dict[str, tuple[str, Callable[[], bytes], Granularity, tuple[str, ...]]] = {
    "semicolon-delimited": (
        "day.csv",
        lambda: plain().replace(b",", b";"),
        "day",
        ("fields are separated by commas", "semicolons"),
    ),
    "semicolons-and-decimal-commas": (
        "day.csv",
        lambda: plain().replace(b",", b";").replace(b".", b","),
        "day",
        ("fields are separated by commas", "semicolons"),
    ),
    "tab-delimited": (
        "day.csv",
        lambda: plain().replace(b",", b"\t"),
        "day",
        ("fields are separated by commas", "tabs"),
    ),
    "duplicate-header-names": (
        "day.csv",
        _duplicate_header,
        "day",
        ("column names are unique", "given more than once: 'cnt'", "missing 'casual'"),
    ),
    "row-with-extra-fields": (
        "day.csv",
        lambda: _extra_field(20),
        "day",
        ("row 20", "every row has as many fields as the header", "saw 17"),
    ),
    "infinite-number": (
        "day.csv",
        _set(6, "windspeed", "inf"),
        "day",
        ("row 6", "column windspeed", "finite number"),
    ),
    "nan": ("day.csv", _set(8, "atemp", "NaN"), "day", ("row 8", "column atemp", "'NaN'")),
    "overflowing-integer": (
        "day.csv",
        _set(9, "casual", "9" * 40),
        "day",
        ("row 9", "column casual", "value is an integer"),
    ),
    "overflowing-float": (
        "day.csv",
        _set(10, "temp", "1e999"),
        "day",
        ("row 10", "column temp", "finite number"),
    ),
    "other-date-format": (
        "day.csv",
        _set(3, "dteday", "03/01/2011"),
        "day",
        ("row 3", "column dteday", "value is a date YYYY-MM-DD", "'03/01/2011'"),
    ),
    "undecodable-bytes": (
        "day.csv",
        lambda: plain().replace(b"2011-01-15", b"2011-01-1\xe9", 1),
        "day",
        ("file is UTF-8 text", "0xe9", "row 15"),
    ),
    "zip-without-the-member": (
        "data.zip",
        lambda: _zip({"readme.txt": b"hello"}),
        "day",
        ("the zip holds no day.csv", "readme.txt"),
    ),
    "hourly-file-as-daily": (
        "hour.csv",
        _hourly_file,
        "day",
        ("looks like hourly data", "--granularity hour"),
    ),
    "daily-file-as-hourly": (
        "day.csv",
        plain,
        "hour",
        ("looks like daily data", "--granularity day"),
    ),
    "field-of-megabytes": (
        "day.csv",
        _set(12, "hum", "wet " * 1_000_000),
        "day",
        ("row 12", "column hum", "4,000,000 characters"),
    ),
    "another-table": (
        "day.csv",
        _other_table,
        "day",
        ("the required columns are present", "missing 'instant'", "found 'station_id'"),
    ),
    "truncated-gzip": (
        "day.csv.gz",
        lambda: gzip.compress(plain())[:-40],
        "day",
        ("not a readable gzip file",),
    ),
    "html-page": (
        "day.csv",
        lambda: b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n",
        "day",
        ("HTML page",),
    ),
}


def ingest_and_validate(source: str, store: ArtifactStore, granularity: Granularity = "day"):
    """Ingest then validate as the flow does; the arrays, or raise the flow's error."""
    raw = fetch_source(source, store, f"{granularity}.csv")
    label = raw.source if raw.member is None else f"{raw.source}!{raw.member}"
    arrays, validator = validate_table(
        Path(raw.table.path), label, minimum_rows(TEST_DAYS), granularity, store
    )
    if arrays is None:
        raise DataValidationError.from_failures(label, validator.report.failures)
    return {name: load_array(ref) for name, ref in arrays.items()}


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, np.ndarray]:
    path = tmp_path / "plain" / "day.csv"
    path.parent.mkdir()
    path.write_bytes(plain())
    return ingest_and_validate(str(path), ArtifactStore(tmp_path / "plain-store"))


def _assert_same(arrays: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> None:
    assert arrays.keys() == reference.keys() == {"dates", "features", "target"}
    for name, expected in reference.items():
        np.testing.assert_array_equal(arrays[name], expected, err_msg=name)
        assert arrays[name].dtype == expected.dtype


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_variant_gives_the_same_table_as_the_plain_file(
    name: str, tmp_path: Path, reference: dict[str, np.ndarray]
):
    file_name, build = ACCEPTED[name]
    data = build()
    assert data != plain()  # a real variant
    path = tmp_path / "in" / file_name
    path.parent.mkdir()
    path.write_bytes(data)
    arrays = ingest_and_validate(str(path), ArtifactStore(tmp_path / "store"))
    assert len(arrays["dates"]) == ROWS
    _assert_same(arrays, reference)


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_variant_fails_naming_its_problem(name: str, tmp_path: Path):
    file_name, build, granularity, fragments = REJECTED[name]
    path = tmp_path / "in" / file_name
    path.parent.mkdir()
    path.write_bytes(build())
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises((SourceError, DataValidationError)) as caught:
        ingest_and_validate(str(path), store, granularity)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message[:2000]!r}"
    assert len(message) < 4000  # one paragraph, even for a field of megabytes
    assert not list(store.objects.rglob("*.npy"))  # nothing derived from the bad bytes


def test_hourly_variant_in_another_column_order_gives_the_same_table(tmp_path: Path):
    frame = make_records(45, granularity="hour", seed=2)
    (tmp_path / "a.csv").write_bytes(to_csv_bytes(frame))
    crlf = to_csv_bytes(frame[list(HOUR_COLUMNS[::-1])]).replace(b"\n", b"\r\n")
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"\xef\xbb\xbf" + crlf))
    first = ingest_and_validate(str(tmp_path / "a.csv"), ArtifactStore(tmp_path / "s1"), "hour")
    second = ingest_and_validate(str(tmp_path / "b.csv.gz"), ArtifactStore(tmp_path / "s2"), "hour")
    _assert_same(second, first)


# --- sources by URL: a real http.server on 127.0.0.1 ---------------------------------------


class _Server(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self) -> None:
        status, kind, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_gzip_by_url_gives_the_same_table(
    server: str, tmp_path: Path, reference: dict[str, np.ndarray]
):
    _Server.routes = {"/day.csv.gz": (200, "application/gzip", gzip.compress(_excel()))}
    arrays = ingest_and_validate(f"{server}/day.csv.gz", ArtifactStore(tmp_path / "store"))
    _assert_same(arrays, reference)


@pytest.mark.parametrize(
    ("path", "route", "fragment"),
    [
        ("/gone.csv", None, "HTTP 404"),
        ("/login.csv", (200, "text/html; charset=utf-8", b"<html>Sign in</html>"), "HTML page"),
        ("/plain.csv", (200, "text/plain", b"\n  <!doctype html><html></html>"), "HTML page"),
    ],
)
def test_url_that_is_not_a_csv_fails_naming_the_problem(
    server: str, tmp_path: Path, path: str, route: tuple[int, str, bytes] | None, fragment: str
):
    _Server.routes = {path: route} if route else {}
    with pytest.raises(SourceError) as caught:
        ingest_and_validate(f"{server}{path}", ArtifactStore(tmp_path / "store"))
    assert f"{server}{path}" in str(caught.value) and fragment in str(caught.value)


def test_a_csv_mislabelled_as_html_is_still_read(
    server: str, tmp_path: Path, reference: dict[str, np.ndarray]
):
    _Server.routes = {"/day.csv": (200, "text/html", plain())}
    _assert_same(ingest_and_validate(f"{server}/day.csv", ArtifactStore(tmp_path / "s")), reference)
