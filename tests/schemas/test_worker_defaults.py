"""Safe worker defaults: with no allow-list set, a run a worker started reads only the
checkout's data/ folder and the UCI host; a local CLI run still reads any file."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.errors import SourceRefusedError
from schemas.sources import (
    FLOW_RUN_ENV,
    SOURCE_HOSTS_ENV,
    SOURCE_ROOTS_ENV,
    UCI_HOST,
    allowed_source,
    decide_allow_list,
    default_data_root,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def nothing_set(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (SOURCE_ROOTS_ENV, SOURCE_HOSTS_ENV, FLOW_RUN_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_default_decision_by_who_started_the_run(nothing_set: pytest.MonkeyPatch):
    local = decide_allow_list(deployment_run=False)
    assert not local.on
    worker = decide_allow_list(deployment_run=True)
    assert worker.on and worker.defaults
    assert worker.roots == (ROOT / "data",) == (default_data_root(),)
    assert worker.hosts == (UCI_HOST,)
    # An operator's list wins over the defaults, for a worker and a local run alike.
    nothing_set.setenv(SOURCE_HOSTS_ENV, "example.org")
    for deployment_run in (False, True):
        chosen = decide_allow_list(deployment_run=deployment_run)
        assert chosen.on and not chosen.defaults and chosen.hosts == ("example.org",)


def test_a_local_run_reads_any_file(nothing_set: pytest.MonkeyPatch, tmp_path: Path):
    source = tmp_path / "mine.csv"
    source.write_text("a,b\n")
    assert allowed_source(str(source)).path == source.resolve()  # type: ignore[union-attr]
    assert allowed_source("http://127.0.0.1:9/day.csv").host == "127.0.0.1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("source", "setting"),
    [("/etc/passwd", SOURCE_ROOTS_ENV), ("http://127.0.0.1:8080/day.csv", SOURCE_HOSTS_ENV)],
)
def test_a_worker_run_with_nothing_set_refuses_naming_the_setting(
    nothing_set: pytest.MonkeyPatch, source: str, setting: str
):
    # What a Prefect worker or runner sets in the process of each flow run it starts.
    nothing_set.setenv(FLOW_RUN_ENV, "00000000-0000-0000-0000-000000000001")
    with pytest.raises(SourceRefusedError) as raised:
        allowed_source(source)
    message = str(raised.value)
    assert f"{setting} on the worker" in message
    assert f"{setting} is unset" in message
    assert "root:" not in message  # nothing of /etc/passwd is read, let alone shown


def test_a_worker_run_with_nothing_set_reads_the_checkout_data_and_uci(
    nothing_set: pytest.MonkeyPatch,
):
    nothing_set.setenv(FLOW_RUN_ENV, "00000000-0000-0000-0000-000000000001")
    inside = allowed_source(str(ROOT / "data" / "day.csv"))
    assert inside.path == (ROOT / "data" / "day.csv").resolve()  # type: ignore[union-attr]
    uci = allowed_source(f"https://{UCI_HOST}/static/public/275/bike+sharing+dataset.zip")
    assert uci.host == UCI_HOST  # type: ignore[union-attr]
