import io
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from schemas.errors import SourceError
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.prepare.ingest import extract_member, fetch_source, ingest_source
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

    def do_GET(self):
        cls = type(self)
        if cls.failures_left > 0:
            cls.failures_left -= 1
            self.send_response(503)
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


def test_download_retries_transient_errors(tmp_path: Path, http_server, monkeypatch):
    monkeypatch.setattr("tasks.prepare.ingest.time.sleep", lambda seconds: None)
    url, handler = http_server
    handler.body = to_csv_bytes(make_day_frame(20))
    handler.failures_left = 2
    raw = fetch_source(f"{url}/day.csv", ArtifactStore(tmp_path / "store"))
    assert read_bytes(raw.table) == handler.body
    assert handler.failures_left == 0


def test_download_that_keeps_failing_leaves_no_file(tmp_path: Path, http_server, monkeypatch):
    monkeypatch.setattr("tasks.prepare.ingest.time.sleep", lambda seconds: None)
    url, handler = http_server
    handler.failures_left = 100
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(SourceError, match="download failed after"):
        fetch_source(f"{url}/day.csv", store)
    assert not store.objects.exists()
    assert not store.tmp.exists() or not any(store.tmp.iterdir())
