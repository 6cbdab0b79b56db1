"""Concurrent runs in separate processes share one artifact store and one cache safely."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterStartTime,
    TaskRunFilter,
    TaskRunFilterName,
)
from prefect.settings import PREFECT_API_URL

from schemas.synthetic import make_day_frame, to_csv_bytes

pytestmark = [pytest.mark.slow, pytest.mark.minutes(1)]
ROOT = Path(__file__).resolve().parents[2]


def _launch(tmp_path: Path, source: Path, name: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        {
            # Every process talks to this session's server and shares one cache and one store.
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "records"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
            "BIKEFLOW_ROOTS": str(tmp_path),
        }
    )
    command = [
        sys.executable,
        "-m",
        "flows.cli",
        "run",
        "--source",
        str(source),
        "--store-root",
        str(tmp_path / "store"),
        "--output-dir",
        str(tmp_path / "out" / name),
        "--test-days",
        "30",
        "--batch-size",
        "16",
        "--epochs",
        "2",
    ]
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _refs(value: Any) -> list[dict[str, Any]]:
    """Every artifact descriptor (a dict with path and sha256) inside a JSON document."""
    if isinstance(value, dict):
        found = [value] if {"path", "sha256"} <= value.keys() else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


def _train_states(since: datetime) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="train_model")),
        )
    return sorted(run.state.name for run in runs if run.state)


def test_parallel_runs_share_the_store_and_cache_without_damage(tmp_path: Path):
    same = tmp_path / "same.csv"
    same.write_bytes(to_csv_bytes(make_day_frame(160, seed=1)))
    other = tmp_path / "other.csv"
    other.write_bytes(to_csv_bytes(make_day_frame(160, seed=2)))
    started = datetime.now(UTC)

    runs = {
        "a": _launch(tmp_path, same, "a"),
        "b": _launch(tmp_path, same, "b"),
        "c": _launch(tmp_path, other, "c"),
    }
    results = {name: process.communicate(timeout=900) for name, process in runs.items()}
    for name, process in runs.items():
        assert process.returncode == 0, (name, results[name][1][-3000:])

    metrics = {
        name: json.loads((tmp_path / "out" / name / "metrics.json").read_text()) for name in runs
    }
    # Same data and config: the same model and scores, whichever run computed them.
    for key in ("best_epoch", "test_rmse", "val_rmse", "data_sha256"):
        assert metrics["a"][key] == metrics["b"][key]
    assert metrics["a"]["data_sha256"] != metrics["c"]["data_sha256"]
    model_a = (tmp_path / "out" / "a" / "model.keras").read_bytes()
    assert model_a == (tmp_path / "out" / "b" / "model.keras").read_bytes()

    # Cache isolation: the two same-data runs trained once between them (one waited on the
    # key's lock, then read the finished record); the other data trained on its own.
    assert _train_states(started) == ["Cached", "Completed", "Completed"]

    # Every stored object is whole: its name is the sha256 of its content; nothing is left
    # half-written in the temporary folder.
    objects = [p for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file()]
    assert objects
    for path in objects:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name.split(".")[0], path
    assert not list((tmp_path / "store" / "tmp").iterdir())

    # Every cache record is valid JSON whose artifacts are intact.
    records = [p for p in (tmp_path / "records").iterdir() if len(p.name) == 64]
    assert records
    for record in records:
        for ref in _refs(json.loads(record.read_bytes())):
            path = Path(ref["path"])
            assert hashlib.sha256(path.read_bytes()).hexdigest() == ref["sha256"], record

    # And the shared cache serves a later run whole.
    again = _launch(tmp_path, same, "d")
    _out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-3000:]
    assert (
        json.loads((tmp_path / "out" / "d" / "metrics.json").read_text())["test_rmse"]
        == (metrics["a"]["test_rmse"])
    )
