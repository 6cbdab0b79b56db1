"""The deployment's source allow-list: a refused folder or host is never read or connected to."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flows.retrain import retrain
from schemas.config import PredictConfig, RetrainConfig, SplitConfig, TrainingConfig
from schemas.errors import SourceRefusedError
from schemas.sources import SOURCE_HOSTS_ENV, SOURCE_ROOTS_ENV
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.prepare.ingest import fetch_source, ingest_source
from tasks.storage.store import ArtifactStore, read_bytes

DAY = to_csv_bytes(make_day_frame(60, seed=3))


class Server:
    """A real HTTP server on 127.0.0.1 that records every request it receives."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.redirect_to: str | None = None
        recorded = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                recorded.requests.append(f"{self.command} {self.path}")
                if recorded.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", recorded.redirect_to)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(DAY)))
                self.end_headers()
                if body:
                    self.wfile.write(DAY)

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}/day.csv"


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    """Two servers on different ports (one can be allowed, the other not)."""
    pair = (Server(), Server())
    threads = [threading.Thread(target=s.httpd.serve_forever, daemon=True) for s in pair]
    for thread in threads:
        thread.start()
    yield pair
    for server in pair:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An allowed folder and another one, each holding a day.csv; the env var unset."""
    monkeypatch.delenv(SOURCE_ROOTS_ENV, raising=False)
    monkeypatch.delenv(SOURCE_HOSTS_ENV, raising=False)
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    for folder in (allowed, other):
        folder.mkdir()
        (folder / "day.csv").write_bytes(DAY)
    return allowed, other


def store_is_empty(store: ArtifactStore) -> bool:
    return not store.objects.exists() or not any(store.objects.rglob("*.*"))


def test_unset_every_local_file_and_host_is_allowed(
    folders: tuple[Path, Path], servers: tuple[Server, Server], tmp_path: Path
):
    other = folders[1]
    assert RetrainConfig(source=str(other / "day.csv"))
    assert RetrainConfig(source=servers[0].url)
    raw = fetch_source(servers[0].url, ArtifactStore(tmp_path / "store"))
    assert read_bytes(raw.table) == DAY


def test_a_local_source_outside_the_listed_folders_is_refused_unread(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    allowed, other = folders
    monkeypatch.setenv(SOURCE_ROOTS_ENV, str(allowed))
    refused = other / "day.csv"
    with pytest.raises(ValidationError, match=f"source {refused} is not under .*ROOTS"):
        RetrainConfig(source=str(refused))
    # A symlink inside the allowed folder that leads out is the file it leads to.
    (allowed / "link.csv").symlink_to(refused)
    opened: list[str] = []
    real_open = builtins.open

    def spying_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    # A spy on open, not a mock: the cache policy hashes a local file before the task runs.
    monkeypatch.setattr(builtins, "open", spying_open)
    for source in (str(refused), f"file://{refused}", str(allowed / "link.csv"), "../x.csv"):
        store = ArtifactStore(tmp_path / "store")
        with pytest.raises(SourceRefusedError, match=SOURCE_ROOTS_ENV):
            fetch_source(source, store)
        with pytest.raises(SourceRefusedError, match=SOURCE_ROOTS_ENV):
            ingest_source(source, str(store.root))
        assert store_is_empty(store)
    monkeypatch.setattr(builtins, "open", real_open)
    assert not [name for name in opened if Path(name).resolve() == refused]
    with pytest.raises(ValidationError, match=SOURCE_ROOTS_ENV):
        PredictConfig(input_csv=str(refused))

    raw = fetch_source(str(allowed / "day.csv"), ArtifactStore(tmp_path / "store"))
    assert read_bytes(raw.table) == DAY
    assert RetrainConfig(source=str(allowed / "day.csv"))


def test_a_host_not_listed_is_refused_before_any_connection(
    folders: tuple[Path, Path],
    servers: tuple[Server, Server],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    allowed, listed = servers
    monkeypatch.setenv(SOURCE_HOSTS_ENV, f"archive.ics.uci.edu, {allowed.host}")
    with pytest.raises(ValidationError, match=rf"host {listed.host} is not listed"):
        RetrainConfig(source=listed.url)
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(SourceRefusedError, match=f"{SOURCE_HOSTS_ENV}.*no connection is made"):
        fetch_source(listed.url, store)
    # The task, with its cache policy's HEAD request, refuses before connecting too.
    with pytest.raises(SourceRefusedError):
        ingest_source(listed.url, str(tmp_path / "store"))
    assert listed.requests == [] and store_is_empty(store)
    # Only hosts listed: local files are refused as well.
    with pytest.raises(ValidationError, match=SOURCE_ROOTS_ENV):
        RetrainConfig(source=str(folders[0] / "day.csv"))

    raw = fetch_source(allowed.url, store)
    assert read_bytes(raw.table) == DAY and allowed.requests == ["GET /day.csv"]


def test_a_redirect_to_a_host_not_listed_is_refused_before_it_is_followed(
    servers: tuple[Server, Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    allowed, elsewhere = servers
    allowed.redirect_to = elsewhere.url
    monkeypatch.setenv(SOURCE_HOSTS_ENV, allowed.host)
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(SourceRefusedError, match=rf"host {elsewhere.host} is not listed"):
        fetch_source(allowed.url, store)
    assert allowed.requests == ["GET /day.csv"] and elsewhere.requests == []
    assert store_is_empty(store)


@pytest.mark.slow
def test_the_setting_is_read_where_the_flow_runs(
    servers: tuple[Server, Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Valid where the config was made (no allow-list), refused where the flow runs.
    server = servers[0]
    monkeypatch.delenv(SOURCE_HOSTS_ENV, raising=False)
    config = RetrainConfig(
        source=server.url,
        store_root=str(tmp_path / "store"),
        output_dir=str(tmp_path / "out"),
        registry_root=str(tmp_path / "models"),
        split=SplitConfig(test_days=10),
        training=TrainingConfig(epochs=1),
    )
    monkeypatch.setenv(SOURCE_HOSTS_ENV, "archive.ics.uci.edu")
    state = retrain(config, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, SourceRefusedError) and SOURCE_HOSTS_ENV in str(error)
    assert server.requests == [] and not (tmp_path / "store").exists()
