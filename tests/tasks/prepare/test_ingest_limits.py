"""Hostile sources: zip-slip, zip bombs, lying or broken zips, oversized or stalled downloads."""

from __future__ import annotations

import io
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from schemas.errors import BikeflowError, SourceError
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.prepare.ingest import extract_member, fetch_source
from tasks.storage.store import ArtifactStore, read_bytes

DAY = to_csv_bytes(make_day_frame(20))


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def test_zip_slip_member_names_never_become_paths(tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "data.zip"
    archive.write_bytes(
        _zip({"../../escaped/day.csv": DAY, "/abs/evil.csv": b"x", "../../../x.sh": b"rm -rf"})
    )
    before = _files(tmp_path)
    raw = fetch_source(str(archive), ArtifactStore(work / "store"))
    assert raw.member == "../../escaped/day.csv" and read_bytes(raw.table) == DAY
    created = _files(tmp_path) - before
    # Only content-addressed objects under the store: no member name was used as a path.
    assert created and all(p.is_relative_to(work / "store" / "objects") for p in created)
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "x.sh").exists()


def test_only_the_member_named_day_csv_is_taken(tmp_path: Path):
    data = _zip({"day.csv.exe": b"MZ", "hour.csv": b"hr", "sub/day.csv": DAY})
    name, content = extract_member(data, "day.csv", "data.zip")
    assert name == "sub/day.csv" and content == DAY


def test_zip_bomb_is_refused_by_its_declared_size(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("tasks.prepare.ingest.MAX_MEMBER_BYTES", 1 << 20)
    bomb = _zip({"day.csv": b"0" * (8 << 20)})
    assert len(bomb) < 64 << 10  # 8 MB of zeros deflate to a few KB
    with pytest.raises(SourceError, match="over the 1048576-byte cap"):
        extract_member(bomb, "day.csv", "bomb.zip")


def _lie_about_size(data: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size in the local header and the central directory."""
    patched = bytearray(data)
    local = patched.find(b"PK\x03\x04")
    struct.pack_into("<I", patched, local + 22, size)
    central = patched.find(b"PK\x01\x02")
    struct.pack_into("<I", patched, central + 24, size)
    return bytes(patched)


def test_zip_bomb_with_a_lying_header_is_read_no_further_than_the_cap(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr("tasks.prepare.ingest.MAX_MEMBER_BYTES", 1 << 20)
    liar = _lie_about_size(_zip({"day.csv": b"0" * (8 << 20)}), 1000)
    with pytest.raises(SourceError, match="cannot be unpacked"):
        extract_member(liar, "day.csv", "liar.zip")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"PK\x03\x04" + b"\x00" * 40, "not a readable zip"),
        (_zip({"day.csv": DAY})[:-30], "not a readable zip"),
        (_zip({"hour.csv": DAY}), "holds no day.csv"),
    ],
)
def test_broken_zips_are_source_errors(data: bytes, message: str):
    with pytest.raises(SourceError, match=message):
        extract_member(data, "day.csv", "broken.zip")


def test_a_corrupted_member_is_a_source_error():
    data = bytearray(_zip({"day.csv": DAY}, zipfile.ZIP_STORED))
    start = data.find(DAY[:20])
    data[start + 5] ^= 0xFF  # flip one byte of the stored member: the CRC no longer matches
    with pytest.raises(SourceError, match="cannot be unpacked"):
        extract_member(bytes(data), "day.csv", "bad-crc.zip")


@pytest.mark.parametrize(
    "source",
    ["ftp://example.invalid/day.csv", "file+x://day.csv", "s3://bucket/day.csv", "gopher://x"],
)
def test_only_http_and_local_sources(tmp_path: Path, source: str):
    with pytest.raises(SourceError, match="only http"):
        fetch_source(source, ArtifactStore(tmp_path / "store"))


class _Handler(BaseHTTPRequestHandler):
    mode = "big"

    def do_GET(self):
        if self.mode == "stall":
            time.sleep(3)
            return
        self.send_response(200)
        if self.mode == "big-declared":
            self.send_header("Content-Length", str(10 << 20))
            self.end_headers()
            return
        self.end_headers()  # no Content-Length: the body streams past the cap
        for _ in range(64):
            self.wfile.write(b"0" * (64 << 10))

    def log_message(self, *args):
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/day.csv", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("mode", ["big", "big-declared"])
def test_download_size_cap_keeps_nothing(tmp_path: Path, server, monkeypatch, mode: str):
    url, handler = server
    handler.mode = mode
    monkeypatch.setattr("tasks.prepare.ingest.MAX_DOWNLOAD_BYTES", 1 << 20)
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(BikeflowError, match="cap"):
        fetch_source(url, store)
    assert not _files(tmp_path)


def test_stalled_download_times_out(tmp_path: Path, server, monkeypatch):
    url, handler = server
    handler.mode = "stall"
    monkeypatch.setattr("tasks.prepare.ingest.DOWNLOAD_TIMEOUT_SECONDS", 0.5)
    started = time.monotonic()
    with pytest.raises(SourceError, match="download failed"):
        fetch_source(url, ArtifactStore(tmp_path / "store"))
    assert time.monotonic() - started < 2.5
