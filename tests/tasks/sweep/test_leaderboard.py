import base64
import csv
import io

import pytest

from tasks.evaluation.figures import png_bytes_data_uri
from tasks.sweep.leaderboard import (
    TrialResult,
    leaderboard_csv,
    plot_validation_curves,
    rank_results,
    trials_csv,
)


def trial(label: str, seed: int, val: float | None, worker: str = "w") -> TrialResult:
    return TrialResult(
        label=label,
        seed=seed,
        best_epoch=None if val is None else 2,
        val_loss=val,
        val_rmse=val,
        val_mae=val,
        test_rmse=None if val is None else val + 1,
        test_mae=val,
        val_curve=(val, val),
        model=None,
        worker=worker,
    )


def test_a_config_with_a_diverged_seed_ranks_after_configs_that_all_trained():
    rows = rank_results(
        [
            trial("steady", 0, 900.0),
            trial("steady", 1, 950.0),
            trial("lucky", 0, 700.0),
            trial("lucky", 1, None),  # diverged
            trial("good", 0, 800.0),
            trial("good", 1, 820.0),
            trial("lost", 0, None),  # every seed diverged
        ]
    )
    assert [row.label for row in rows] == ["good", "steady", "lucky", "lost"]
    assert [row.rank for row in rows] == [1, 2, 3, 4]
    assert [row.diverged for row in rows] == [0, 0, 1, 1]
    assert [row.seeds for row in rows] == [2, 2, 2, 1]
    assert rows[0].val_rmse_mean == pytest.approx(810.0)
    assert rows[0].val_rmse_std == pytest.approx(10.0)  # population std over the seeds
    assert rows[0].test_rmse_mean == pytest.approx(811.0)
    assert rows[2].val_rmse_mean == pytest.approx(700.0) and rows[2].best_epoch_mean == 2.0
    assert rows[3].val_rmse_mean != rows[3].val_rmse_mean  # NaN: nothing trained


def test_ties_rank_by_label():
    rows = rank_results([trial("b", 0, 5.0), trial("a", 0, 5.0)])
    assert [row.label for row in rows] == ["a", "b"]


def test_csv_cells_with_quotes_and_commas_read_back_unchanged():
    label = 'mlp "wide", lr=0.1'
    worker = "tcp://127.0.0.1:4001"
    results = [trial(label, 0, 900.0, worker), trial(label, 1, None, worker)]
    rows = list(csv.DictReader(io.StringIO(leaderboard_csv(rank_results(results)).decode())))
    assert [r["label"] for r in rows] == [label]
    assert rows[0]["seeds"] == "2" and rows[0]["diverged"] == "1"
    assert float(rows[0]["val_rmse_mean"]) == pytest.approx(900.0)
    trials = list(csv.DictReader(io.StringIO(trials_csv(results).decode())))
    assert [(t["label"], t["seed"], t["worker"]) for t in trials] == [
        (label, "0", worker),
        (label, "1", worker),
    ]
    # An integer stays an integer; a diverged trial's scores are empty cells.
    assert trials[0]["best_epoch"] == "2" and trials[1]["best_epoch"] == ""
    assert trials[0]["val_curve"] == "900;900" and trials[1]["val_curve"] == ";"


def test_the_inline_plot_is_a_small_png_data_uri():
    results = [trial(f"config {i}", s, 900.0 + i * 10 + s) for i in range(6) for s in range(3)]
    uri = png_bytes_data_uri(plot_validation_curves(results, size=(6, 3), dpi=72))
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    png = base64.b64decode(uri[len(prefix) :])
    assert png[:4] == b"\x89PNG" and len(uri) < 60_000
