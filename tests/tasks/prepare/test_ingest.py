import email.utils
import io
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from schemas.errors import SourceError, SourceUnavailableError
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.prepare.ingest import extract_member, fetch_source, ingest_source
from tasks.prepare.retries import (
    DEFAULT_RETRY_BASE_SECONDS,
    INGEST_RETRIES,
    MAX_RETRY_AFTER_SECONDS,
    MAX_RETRY_DELAY_SECONDS,
    RETRY_BASE_ENV,
    retry_after_seconds,
)
from tasks.storage.store import ArtifactStore, read_bytes, sha256_file


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_local_csv_is_copied_under_its_digest_and_left_alone(tmp_path: Path, day_csv: Path):
    before = sha256_file(day_csv)
    raw = ingest_source.fn(str(day_csv), str(tmp_path / "store"))
    assert raw.table.sha256 == before == sha256_file(day_csv)
    assert Path(raw.table.path).is_relative_to(tmp_path / "store")
    assert read_bytes(raw.table) == day_csv.read_bytes()


def test_the_fingerprint_and_the_copy_share_one_digest(
    tmp_path: Path, day_csv: Path, monkeypatch: pytest.MonkeyPatch
):
    import builtins

    from tasks.prepare.source_access import source_key_material

    store = ArtifactStore(tmp_path / "store")
    inputs = {"source": str(day_csv), "store_root": str(store.root)}
    first = fetch_source(str(day_csv), store)  # an earlier run stored these bytes
    opened: list[Path] = []
    real_open = builtins.open

    def spying_open(file, *args, **kwargs):
        opened.append(Path(file).resolve())
        return real_open(file, *args, **kwargs)

    # A spy on open, not a mock: the cache policy's fingerprint hashes the file, then ingest
    # (same process, file unchanged) finds those bytes in the store and reads it no more.
    monkeypatch.setattr(builtins, "open", spying_open)
    material = source_key_material({}, inputs)
    again = fetch_source(str(day_csv), store)
    monkeypatch.setattr(builtins, "open", real_open)
    assert material is not None and material["source"] == sha256_file(day_csv)
    assert opened.count(day_csv.resolve()) == 1
    assert again == first
    # An edited file is a new identity: it is hashed and copied again.
    day_csv.write_bytes(day_csv.read_bytes() + b"\n")
    assert source_key_material({}, inputs)["source"] == sha256_file(day_csv)
    assert fetch_source(str(day_csv), store).fetched.sha256 == sha256_file(day_csv)


def test_day_csv_is_taken_out_of_the_uci_zip(tmp_path: Path):
    day = to_csv_bytes(make_day_frame(30))
    archive = tmp_path / "Bike-Sharing-Dataset.zip"
    archive.write_bytes(_zip_bytes({"Readme.txt": b"hi", "hour.csv": b"x", "day.csv": day}))
    raw = fetch_source(str(archive), ArtifactStore(tmp_path / "store"))
    assert raw.member == "day.csv"
    assert read_bytes(raw.table) == day
    assert raw.fetched.sha256 == sha256_file(archive)


def test_missing_file_is_a_source_error(tmp_path: Path):
    with pytest.raises(SourceError, match="no such file"):
        fetch_source(str(tmp_path / "nope.csv"), ArtifactStore(tmp_path / "store"))


def test_unsupported_scheme_is_refused(tmp_path: Path):
    with pytest.raises(SourceError, match="only http"):
        fetch_source("ftp://example.invalid/day.csv", ArtifactStore(tmp_path / "store"))


def test_zip_without_day_csv_names_what_it_holds():
    with pytest.raises(SourceError, match=r"no day.csv \(it holds: hour.csv"):
        extract_member(_zip_bytes({"hour.csv": b"x"}), "day.csv", "data.zip")


class _Flaky(BaseHTTPRequestHandler):
    body = b""
    failures_left = 0
    failure_status = 503
    retry_after = ""
    requests = 0

    def do_GET(self):
        cls = type(self)
        cls.requests += 1
        if cls.failures_left > 0:
            cls.failures_left -= 1
            self.send_response(cls.failure_status)
            if cls.retry_after:
                self.send_header("Retry-After", cls.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(cls.body)))
        self.end_headers()
        self.wfile.write(cls.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real task with Prefect's real retries, only without the waits between attempts.
    monkeypatch.setenv(RETRY_BASE_ENV, "0")


def test_download_retries_transient_errors(tmp_path: Path, http_server, no_retry_waits):
    url, handler = http_server
    handler.body = to_csv_bytes(make_day_frame(20))
    handler.failures_left = 2
    raw = ingest_source(f"{url}/day.csv", str(tmp_path / "store"))
    assert read_bytes(raw.table) == handler.body
    assert handler.failures_left == 0
    assert handler.requests == 3


def test_a_429_waits_for_its_retry_after(tmp_path: Path, http_server, no_retry_waits):
    url, handler = http_server
    handler.body = to_csv_bytes(make_day_frame(20))
    handler.failures_left, handler.failure_status, handler.retry_after = 1, 429, "1"
    started = time.monotonic()
    raw = ingest_source(f"{url}/day.csv", str(tmp_path / "store"))
    assert read_bytes(raw.table) == handler.body
    assert handler.requests == 2
    assert time.monotonic() - started >= 1.0


def test_download_that_keeps_failing_leaves_no_file(tmp_path: Path, http_server, no_retry_waits):
    url, handler = http_server
    handler.failures_left = 100
    store = ArtifactStore(tmp_path / "store")
    attempts = INGEST_RETRIES + 1
    with pytest.raises(SourceUnavailableError, match=f"on attempt {attempts} of {attempts}"):
        ingest_source(f"{url}/day.csv", str(store.root))
    assert handler.requests == attempts
    assert not store.objects.exists()
    assert not store.tmp.exists() or not any(store.tmp.iterdir())


def test_a_404_fails_at_once(tmp_path: Path, http_server, monkeypatch: pytest.MonkeyPatch):
    # The default waits, as a worker has them; the one request shows there was no retry.
    monkeypatch.delenv(RETRY_BASE_ENV, raising=False)
    url, handler = http_server
    handler.failures_left, handler.failure_status = 100, 404
    with pytest.raises(SourceError, match=r"answered HTTP 404 Not Found$") as raised:
        ingest_source(f"{url}/day.csv", str(tmp_path / "store"))
    assert not isinstance(raised.value, SourceUnavailableError)
    assert handler.requests == 1


def test_retry_waits_cover_a_minute_and_grow_to_a_cap(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv(RETRY_BASE_ENV, raising=False)
    delays = [ingest_source.retry_delay_seconds[index] for index in range(INGEST_RETRIES)]
    assert delays == sorted(delays) and delays[0] == DEFAULT_RETRY_BASE_SECONDS
    assert max(delays) == MAX_RETRY_DELAY_SECONDS
    assert sum(delays) >= 60.0  # a source down for a minute still succeeds
    monkeypatch.setenv(RETRY_BASE_ENV, "0")
    assert ingest_source.retry_delay_seconds[INGEST_RETRIES - 1] == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, 0.0), ("3", 3.0), ("-4", 0.0), ("9999", MAX_RETRY_AFTER_SECONDS), ("soon", 0.0)],
)
def test_retry_after_is_read_and_bounded(header: str | None, seconds: float):
    assert retry_after_seconds(header) == seconds


def test_retry_after_as_a_date():
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.0 <= retry_after_seconds(later) <= 5.0
