"""Leaderboard: rank a sweep's trials on validation, write the CSVs and the curves plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict

from tasks.evaluation.figures import figure_png, new_figure, png_bytes_data_uri
from tasks.storage.descriptors import BestEpoch, Evaluation
from tasks.storage.publish import publish_directory
from tasks.storage.store import FileRef
from tasks.sweep.trials import Trial, TrialRun
from tasks.training.task import TrainingRun

SCORES = ("val_rmse", "test_rmse", "test_mae")


class TrialResult(BaseModel):
    """What one trial scored: validation (used to rank) and test (reported only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    seed: int
    # None when the training diverged (no finite validation loss): the trial is kept and
    # reported, and its config ranks after every config whose seeds all trained.
    best_epoch: int | None
    val_loss: float | None
    val_rmse: float | None
    val_mae: float | None
    test_rmse: float | None
    test_mae: float | None
    val_curve: tuple[float | None, ...]
    model: FileRef | None
    # The Dask worker address (or host/pid) that trained it.
    worker: str = ""


class LeaderRow(BaseModel):
    """One config over its seeds: mean and spread (population std) of each score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int
    label: str
    seeds: int
    diverged: int
    val_rmse_mean: float
    val_rmse_std: float
    test_rmse_mean: float
    test_rmse_std: float
    test_mae_mean: float
    test_mae_std: float
    best_epoch_mean: float


class Leaderboard(BaseModel):
    """The ranked configs, every trial, the baselines and the files written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: tuple[LeaderRow, ...]
    trials: tuple[TrialResult, ...]
    baselines: dict[str, dict[str, float]]
    output_dir: str
    winner: str


def _trial_frame(results: Sequence[TrialResult]) -> pd.DataFrame:
    frame = pd.DataFrame([r.model_dump(exclude={"model", "val_curve"}) for r in results])
    numeric = ["val_loss", "val_rmse", "val_mae", "test_rmse", "test_mae"]
    frame[numeric] = frame[numeric].astype(float)
    frame["best_epoch"] = frame["best_epoch"].astype("Int64")
    return frame


def rank_results(results: Sequence[TrialResult]) -> list[LeaderRow]:
    """Group trials by label; rank the groups by mean validation RMSE (never by test)."""
    frame = _trial_frame(results)
    trained = frame[frame["val_rmse"].notna()]
    grouped = trained.groupby("label")
    # Population std (ddof=0): the spread of these seeds, not an estimate for unseen ones.
    board = pd.DataFrame(
        {
            **{f"{s}_mean": grouped[s].mean() for s in SCORES},
            **{f"{s}_std": grouped[s].std(ddof=0) for s in SCORES},
            "best_epoch_mean": grouped["best_epoch"].mean().astype(float),
        }
    ).reindex(frame["label"].unique())
    board["seeds"] = frame.groupby("label").size()
    board["diverged"] = board["seeds"] - trained.groupby("label").size().reindex(
        board.index, fill_value=0
    )
    board = board.rename_axis("label").reset_index()
    # A config with a diverged seed ranks after those whose seeds all trained; ties by label.
    board["_order"] = board["val_rmse_mean"].fillna(math.inf)
    board["_any_diverged"] = board["diverged"] > 0
    board = board.sort_values(["_any_diverged", "_order", "label"], kind="stable")
    board["rank"] = range(1, len(board) + 1)
    fields = list(LeaderRow.model_fields)
    return [LeaderRow.model_validate(row) for row in board[fields].to_dict("records")]


def leaderboard_csv(rows: Sequence[LeaderRow]) -> bytes:
    """The ranked configs as CSV."""
    frame = pd.DataFrame([row.model_dump() for row in rows], columns=list(LeaderRow.model_fields))
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n").encode()


def trials_csv(results: Sequence[TrialResult]) -> bytes:
    """Every trial (config x seed) as CSV, with its validation curve joined by ';'."""
    frame = _trial_frame(results)
    frame["val_curve"] = [
        ";".join("" if v is None else f"{v:.6g}" for v in r.val_curve) for r in results
    ]
    columns = ["label", "seed", "best_epoch", "val_loss", "val_rmse", "val_mae"]
    columns += ["test_rmse", "test_mae", "val_curve", "worker"]
    return frame[columns].to_csv(index=False, float_format="%.6g", lineterminator="\n").encode()


def plot_validation_curves(
    results: Sequence[TrialResult], size: tuple[float, float] = (10, 5), dpi: int = 100
) -> bytes:
    """Validation loss per epoch of every trial, one colour per config, as PNG bytes."""
    import matplotlib.pyplot as plt

    figure, axes = new_figure(size, dpi)
    labels = sorted({r.label for r in results})
    colours = plt.get_cmap("tab10")
    for index, label in enumerate(labels):
        for n, result in enumerate(r for r in results if r.label == label):
            curve = [float("nan") if v is None else v for v in result.val_curve]
            axes.plot(
                range(1, len(curve) + 1),
                curve,
                color=colours(index % 10),
                alpha=0.8,
                label=label if n == 0 else None,
            )
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation loss (normalised MSE)")
    axes.set_title("Sweep: validation curves (one line per seed)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure_png(figure)


def _finite(value: float) -> float | None:
    # NaN/inf cannot go into a JSON task result; a diverged epoch is recorded as None.
    return value if math.isfinite(value) else None


def has_diverged(run: TrainingRun) -> bool:
    """True when no epoch of the run reached a finite validation loss."""
    return not any(math.isfinite(record.val_loss) for record in run.history)


def diverged_trial(trial: Trial, trained: TrialRun) -> TrialResult:
    """A trial whose every validation loss is NaN/inf: kept, with no scores."""
    return TrialResult(
        label=trial.label,
        seed=trial.seed,
        best_epoch=None,
        val_loss=None,
        val_rmse=None,
        val_mae=None,
        test_rmse=None,
        test_mae=None,
        val_curve=tuple(_finite(record.val_loss) for record in trained.run.history),
        model=None,
        worker=trained.worker,
    )


def baseline_scores(evaluations: Sequence[Evaluation]) -> dict[str, dict[str, float]]:
    """The naive baselines' test scores (the same for every trial on one split)."""
    return {
        name: {"rmse": scores.rmse, "mae": scores.mae}
        for name, scores in evaluations[0].baselines.items()
    }


def winner_index(
    board: Leaderboard, trials: Sequence[Trial], evaluations: Sequence[Evaluation | None]
) -> int:
    """The winning config's seed with the lowest validation RMSE."""
    scored = {i: e for i, e in enumerate(evaluations) if e is not None}
    return min(
        (i for i, t in enumerate(trials) if t.label == board.winner and i in scored),
        key=lambda i: scored[i].validation.rmse,
    )


@task(name="collect_trial")
def collect_trial(
    trial: Trial, trained: TrialRun, best: BestEpoch, evaluation: Evaluation
) -> TrialResult:
    """Turn one trial's training, best epoch and evaluation into a leaderboard entry."""
    return TrialResult(
        label=trial.label,
        seed=trial.seed,
        best_epoch=best.epoch,
        val_loss=best.val_loss,
        val_rmse=evaluation.validation.rmse,
        val_mae=evaluation.validation.mae,
        test_rmse=evaluation.test.rmse,
        test_mae=evaluation.test.mae,
        val_curve=tuple(_finite(record.val_loss) for record in trained.run.history),
        model=best.model,
        worker=trained.worker,
    )


def _table(rows: Sequence[LeaderRow], baselines: dict[str, dict[str, float]]) -> list[dict]:
    table: list[dict] = [
        {
            "rank": row.rank,
            "config": row.label,
            "seeds": row.seeds if not row.diverged else f"{row.seeds} ({row.diverged} diverged)",
            "val RMSE": f"{row.val_rmse_mean:.0f} ± {row.val_rmse_std:.0f}",
            "test RMSE": f"{row.test_rmse_mean:.0f} ± {row.test_rmse_std:.0f}",
            "test MAE": f"{row.test_mae_mean:.0f} ± {row.test_mae_std:.0f}",
        }
        for row in rows
    ]
    return table + [
        {
            "rank": "",
            "config": f"baseline: {name}",
            "seeds": "",
            "val RMSE": "",
            "test RMSE": f"{scores['rmse']:.0f}",
            "test MAE": f"{scores['mae']:.0f}",
        }
        for name, scores in baselines.items()
    ]


@task(name="publish_leaderboard")
def publish_leaderboard(
    results: list[TrialResult], baselines: dict[str, dict[str, float]], output_dir: str
) -> Leaderboard:
    """Rank the configs, write the CSVs and the plot, and post the table to the Prefect UI."""
    rows = rank_results(results)
    destination = Path(output_dir).expanduser().resolve()
    publish_directory(
        destination,
        {
            "leaderboard.csv": leaderboard_csv(rows),
            "trials.csv": trials_csv(results),
            "validation_curves.png": plot_validation_curves(results),
        },
        field="leaderboard_dir",
    )
    create_table_artifact(
        key="sweep-leaderboard",
        table=_table(rows, baselines),
        description="Configs ranked by mean validation RMSE; test scores are reported only",
    )
    # A small copy of the plot, inline: the UI shows it without reaching the output folder.
    thumbnail = png_bytes_data_uri(plot_validation_curves(results, size=(6, 3), dpi=72))
    create_markdown_artifact(
        key="sweep-winner",
        markdown=f"# Sweep winner\n\n`{rows[0].label}` (lowest mean validation RMSE).\n\n"
        f"![validation curves]({thumbnail})\n",
        description="Winner of the sweep",
    )
    return Leaderboard(
        rows=tuple(rows),
        trials=tuple(results),
        baselines=baselines,
        output_dir=str(destination),
        winner=rows[0].label,
    )
