"""What the runner tests share: one small sweep's CLI flags, its CSVs, and a score comparison."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

TRIALS = "seed-mlp,dropout"
SEED = 3


def sweep_flags(folder: Path, source: Path) -> list[str]:
    """``bikeflow sweep`` flags for two trials x one seed, two epochs, outputs in ``folder``."""
    return [
        "sweep",
        "--source",
        str(source),
        "--store-root",
        str(folder / "store"),
        "--output-dir",
        str(folder / "out"),
        "--registry-root",
        str(folder / "models"),
        "--leaderboard-dir",
        str(folder / "board"),
        "--test-days",
        "30",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--architectures",
        TRIALS,
        "--seeds",
        str(SEED),
    ]


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a leaderboard CSV."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def assert_same_scores(board: list[dict[str, str]], reference: list[dict[str, str]]) -> None:
    """Same trials in the same order, same best epoch, same scores and curves to 1e-4."""
    assert [(r["label"], r["seed"]) for r in board] == [(r["label"], r["seed"]) for r in reference]
    for mine, theirs in zip(board, reference, strict=True):
        assert mine["best_epoch"] == theirs["best_epoch"]
        for column in ("val_rmse", "test_rmse", "test_mae", "val_curve"):
            left = [float(v) for v in mine[column].split(";")]
            right = [float(v) for v in theirs[column].split(";")]
            assert left == pytest.approx(right, rel=1e-4), column
