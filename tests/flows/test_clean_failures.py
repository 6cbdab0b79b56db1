"""What the terminal shows: a user error once, without a traceback; a bug with its traceback;
a successful run without TensorFlow's C++ start-up lines.

Each test runs the real command in a fresh interpreter (``python -m flows.cli``), as a user
would, against this session's Prefect server so the run's state and artifacts can be read.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_URL

from flows.cli.quiet import is_tensorflow_noise
from schemas.synthetic import make_day_frame, to_csv_bytes

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
TF_WORDS = ("cuInit", "oneDNN", "cpu_feature_guard", "cudart_stub", "absl::InitializeLog")


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it: unset
    env.update(
        {
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_LOCAL_STORAGE_PATH": str(tmp_path / "records"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
            "BIKEFLOW_ROOTS": str(tmp_path),
        }
    )
    return env


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )


def _bikeflow_run(tmp_path: Path, source: Path) -> subprocess.CompletedProcess[str]:
    return _run(
        tmp_path,
        "-m",
        "flows.cli",
        "run",
        "--source",
        str(source),
        "--store-root",
        str(tmp_path / "store"),
        "--output-dir",
        str(tmp_path / "out"),
        "--registry-root",
        str(tmp_path / "models"),
        "--test-days",
        "30",
        "--batch-size",
        "16",
        "--epochs",
        "1",
    )


def _latest_flow_run():
    with get_client(sync_client=True) as client:
        run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    return run, artifacts


def _bad_value() -> bytes:
    frame = make_day_frame(80, seed=3)
    frame.loc[10, "hum"] = 1.7
    return to_csv_bytes(frame)


# name -> (bytes, the sentence that must be said exactly once, words the artifact must hold)
BAD_FILES = {
    "value-out-of-range": (
        _bad_value,
        "row 11 (line 12), column hum: rule 'less_than_or_equal_to(1.0)' broken by value 1.7",
        ("less_than_or_equal_to(1.0)", "1.7"),
    ),
    "not-a-day-table": (
        lambda: b"station_id,name\n1,Main St\n",
        "rule 'the required columns are present' broken by value missing 'instant', 'dteday'",
        ("the required columns are present", "found 'station_id', 'name'"),
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_is_said_once_without_a_traceback_and_the_run_keeps_it(
    name: str, tmp_path: Path
):
    build, sentence, reported = BAD_FILES[name]
    source = tmp_path / "day.csv"
    source.write_bytes(build())

    done = _bikeflow_run(tmp_path, source)

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert output.count(sentence) == 1, output
    assert f"bikeflow: retraining failed: {source}" in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "models").exists()
    run, artifacts = _latest_flow_run()
    assert run.state is not None and run.state.is_failed()
    assert sentence in (run.state.message or "")
    reports = [a for a in artifacts if a.key == "validation-report"]
    assert len(reports) == 1
    for words in (str(source), *reported):
        assert words in str(reports[0].data)


TINY_FLOW = """
import sys

from prefect import flow, task

from flows.cli.common import run_and_report
from schemas.errors import SourceError


@task
def step(kind: str) -> None:
    if kind == "bug":
        {}["no such key"]  # a KeyError: our own bug, not the user's
    raise SourceError("source nowhere.csv: no such file")


@flow
def tiny(kind: str) -> None:
    step(kind)


if __name__ == "__main__":
    sys.exit(run_and_report(tiny, sys.argv[1], "tiny")[0])
"""


@pytest.mark.parametrize("kind", ["bug", "user"])
def test_a_bug_keeps_its_traceback_and_a_user_error_does_not(kind: str, tmp_path: Path):
    script = tmp_path / "tiny_flow.py"
    script.write_text(TINY_FLOW)

    done = _run(tmp_path, str(script), kind)

    output = done.stdout + done.stderr
    # A bug exits 70 (EX_SOFTWARE), a user error 1: a scheduler can tell them apart.
    assert done.returncode == (70 if kind == "bug" else 1), output
    if kind == "bug":
        assert "Traceback (most recent call last)" in output
        assert "KeyError: 'no such key'" in output
        assert "unexpected KeyError" in done.stderr and "a bug" in done.stderr
    else:
        assert "Traceback" not in output
        assert output.count("source nowhere.csv: no such file") == 1, output
        assert "bikeflow: tiny failed: source nowhere.csv: no such file" in done.stderr
    run, _ = _latest_flow_run()
    assert run.state is not None and run.state.is_failed()
    assert ("KeyError" if kind == "bug" else "nowhere.csv") in (run.state.message or "")


def test_a_spreadsheet_export_trains_to_the_end_without_tensorflow_lines(tmp_path: Path):
    # BOM, Windows line endings, every field quoted, no final newline, gzip-compressed.
    lines = to_csv_bytes(make_day_frame(80, seed=3)).decode().splitlines()
    quoted = "\r\n".join(",".join(f'"{cell}"' for cell in line.split(",")) for line in lines)
    source = tmp_path / "export.csv.gz"
    source.write_bytes(gzip.compress(b"\xef\xbb\xbf" + quoted.encode()))

    done = _bikeflow_run(tmp_path, source)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "bikeflow: retraining completed" in done.stdout
    assert (tmp_path / "out" / "metrics.json").is_file()
    assert "Traceback" not in output
    assert not [line for line in output.splitlines() if is_tensorflow_noise(line.encode())]
    for word in TF_WORDS:
        assert word not in output, output
