"""What ``bikeflow run`` prints: by default a few lines, one per step and never one per epoch,
then the summary with the promotion decision; ``--verbose`` Prefect's task-run log; ``--quiet``
the summary alone.

Each test runs the real command in a fresh interpreter, as a user would; its stdout is a pipe,
so the default shows the plain lines (the live display is for a terminal: test_progress.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.synthetic import make_day_frame, to_csv_bytes
from tests.flows.test_clean_failures import _run

pytestmark = pytest.mark.slow
EPOCH_LINE = re.compile(r"epoch \d+/\d+")


def _bikeflow_run(tmp_path: Path, *flags: str):
    source = tmp_path / "day.csv"
    if not source.exists():
        source.write_bytes(to_csv_bytes(make_day_frame(200, seed=1)))
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
        *flags,
    )


def test_the_default_terminal_of_a_forecaster_run_is_a_line_per_step_and_the_summary(
    tmp_path: Path,
):
    done = _bikeflow_run(tmp_path, "--preset", "forecaster", "--epochs", "2")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert len(output.splitlines()) <= 40, output
    assert not EPOCH_LINE.search(output), output
    assert "Task run" not in output and "INFO" not in done.stdout, output
    steps = [line.split()[1] for line in done.stdout.splitlines() if re.match(r"  \d:\d\d", line)]
    # On JAX (the default) the 3 members train as one group task, then their 3 refits as
    # another; each member's epoch is chosen on its own: each step once per task run.
    assert steps.count("train_member_group") == 2 and steps.count("train_model") == 0
    assert steps.count("select_best_epoch") == 3
    assert steps[0] == "check_paths" and steps[-1] == "promote_model"
    assert "bikeflow: retraining completed" in done.stdout
    assert "promotion:       promoted " in done.stdout and "the registry had no champion" in output


def test_verbose_shows_prefects_task_run_log_and_quiet_only_the_summary(tmp_path: Path):
    small = ("--epochs", "2", "--ensemble-size", "1", "--refit", "no")
    verbose = _bikeflow_run(tmp_path, "--verbose", *small)

    output = verbose.stdout + verbose.stderr
    assert verbose.returncode == 0, output
    assert "Task run 'train_model-" in verbose.stderr and "epoch 2/2" in verbose.stderr, output
    assert "Finished in state Completed()" in verbose.stderr
    # The training took the child the command started ahead, while it imported the flow.
    assert "a spare child, its jax imports done ahead" in verbose.stderr, output

    # The same config again: every step cached; the promotion keeps the champion.
    quiet = _bikeflow_run(tmp_path, "--quiet", *small)

    output = quiet.stdout + quiet.stderr
    assert quiet.returncode == 0, output
    lines = quiet.stdout.splitlines()
    assert lines[0] == "bikeflow: retraining completed", output
    assert all(line.startswith("  ") for line in lines[1:]), output
    assert "kept the champion" in quiet.stdout and "champion's very model" in quiet.stdout
    assert "Task run" not in output and "INFO" not in output, output
    # Nothing trained this time: the spare child started ahead was ended with the command.
    assert "spare child" not in output
    assert not orphaned_spares()


def orphaned_spares() -> list[str]:
    """Spare training children whose command has gone (adopted by init): there must be none."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):
            continue
        if b"tasks.training.child" in command and b"--warm" in command and parent == "1":
            found.append(proc.name)
    return found
