"""A source URL through the real command: 503 twice, then the file, and the run completes (Prefect
retried ingest); a 404 fails at once with one paragraph, exit 1, and the flow run is Failed."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from schemas.synthetic import make_day_frame, to_csv_bytes
from tests.flows.test_clean_failures import _bikeflow_run, _latest_flow_run

pytestmark = pytest.mark.slow


class _Source(BaseHTTPRequestHandler):
    body = b""
    failures: list[int] = []  # replaced per server: the fixture makes a subclass
    requests = 0

    def do_GET(self):
        cls = type(self)
        cls.requests += 1
        status = cls.failures.pop(0) if cls.failures else 200
        self.send_response(status)
        body = cls.body if status == 200 else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def source_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, type[_Source]]]:
    # The command inherits this: Prefect's retries without their waits (RELIABILITY.md).
    monkeypatch.setenv("BIKEFLOW_RETRY_BASE_SECONDS", "0")
    handler = type("Handler", (_Source,), {"failures": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/day.csv", handler
    finally:
        server.shutdown()
        server.server_close()


def test_a_source_that_answers_503_twice_is_retried_and_the_run_completes(
    tmp_path: Path, source_server
):
    url, handler = source_server
    handler.body = to_csv_bytes(make_day_frame(80, seed=3))
    handler.failures = [503, 503]

    done = _bikeflow_run(tmp_path, url)  # type: ignore[arg-type]

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert handler.requests == 3 and not handler.failures
    assert (tmp_path / "out" / "metrics.json").is_file()
    run, _ = _latest_flow_run()
    assert run.state is not None and run.state.is_completed()


def test_a_404_fails_at_once_with_one_paragraph(tmp_path: Path, source_server):
    url, handler = source_server
    handler.failures = [404] * 10
    assert os.environ["BIKEFLOW_RETRY_BASE_SECONDS"] == "0"

    done = _bikeflow_run(tmp_path, url)  # type: ignore[arg-type]

    output = done.stdout + done.stderr
    sentence = f"source {url}: the server answered HTTP 404 Not Found"
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert output.count(sentence) == 1, output
    assert handler.requests == 1  # no retry
    run, _ = _latest_flow_run()
    assert run.state is not None and run.state.is_failed()
    assert sentence in (run.state.message or "")
