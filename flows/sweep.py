"""The sweep flow: train a list/grid of configs x seeds in parallel, rank them on validation."""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import wait
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from schemas.config import ZOO_DEFAULTS, FeatureConfig, RetrainConfig, SweepConfig
from tasks.errors import TrainingError
from tasks.evaluate import Evaluation, evaluate_model
from tasks.ingest import ingest_source
from tasks.normalise import NormalisedData, normalise_features
from tasks.registry import promote_model
from tasks.select import BestEpoch, select_best_epoch
from tasks.split import split_by_date
from tasks.store import FileRef, publish_directory
from tasks.train import TrainingRun, train_model
from tasks.validate import validate_records


class Trial(BaseModel):
    """One config of the sweep with one seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    seed: int
    config: RetrainConfig


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


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(override: dict[str, Any], prefix: str = "") -> list[str]:
    parts: list[str] = []
    for key, value in override.items():
        if isinstance(value, dict):
            parts += _describe(value, f"{prefix}{key}.")
        else:
            parts.append(f"{key}={value}")
    return parts


def default_zoo_names(granularity: str) -> list[str]:
    """Every zoo entry, less those that need daily rows (previous-day weather) on hourly data."""
    return [
        name
        for name in ZOO_DEFAULTS
        if granularity != "hour"
        or not ZOO_DEFAULTS[name].get("features", {}).get("previous_weather")
    ]


def expand_trials(sweep: SweepConfig) -> list[Trial]:
    """Cross the trials with the grid and the seeds; validate each into a full config."""
    overrides: list[dict[str, Any]] = [dict(t) for t in sweep.trials] or [
        {"name": name, "model": {"architecture": name}}
        for name in default_zoo_names(sweep.base.granularity)
    ]
    names = sorted(sweep.grid)
    combos = list(itertools.product(*(sweep.grid[name] for name in names))) or [()]
    # A zoo entry's settings fill the fields still at their generic defaults (see config).
    base = sweep.base.model_dump(mode="json")
    trials: list[Trial] = []
    labels: set[str] = set()
    for override in overrides:
        override = dict(override)
        name = override.pop("name", None)
        for combo in combos:
            # A deep copy: the grid writes into nested sections that would otherwise be shared.
            data = _merge(copy.deepcopy(base), override)
            grid_part: dict[str, Any] = {}
            for dotted, value in zip(names, combo, strict=True):
                _set_dotted(data, dotted, value)
                _set_dotted(grid_part, dotted, value)
            label = " ".join([str(name)] if name else _describe(override) or ["base"])
            if grid_part:
                label = f"{label} {' '.join(_describe(grid_part))}"
            if label in labels:
                raise ValueError(f"two trials share the label {label!r}; give them names")
            labels.add(label)
            for seed in sweep.seeds:
                config = RetrainConfig.model_validate(data)
                training = config.training.model_copy(update={"seed": seed})
                trials.append(
                    Trial(
                        label=label,
                        seed=seed,
                        config=config.model_copy(update={"training": training}),
                    )
                )
    return trials


def trials_for_stations(trials: list[Trial], defaulted: bool) -> list[Trial]:
    """The trials that can train on a table with a station column.

    The default list (every zoo model) leaves out tf-core, which has no station input, so it
    does not fail the whole sweep; trials the user listed are kept, and tf-core among them
    fails with its own clear error.
    """
    if not defaulted:
        return trials
    kept = [trial for trial in trials if trial.config.model.architecture != "tf-core"]
    return kept or trials


def rank_results(results: Sequence[TrialResult]) -> list[LeaderRow]:
    """Group trials by label; rank the groups by mean validation RMSE (never by test)."""
    import numpy as np

    groups: dict[str, list[TrialResult]] = {}
    for result in results:
        groups.setdefault(result.label, []).append(result)

    def stats(values: list[float]) -> tuple[float, float]:
        return float(np.mean(values)), float(np.std(values))

    nan = float("nan")
    rows = []
    for label, all_members in groups.items():
        members = [m for m in all_members if m.val_rmse is not None]
        diverged = len(all_members) - len(members)
        if members:
            val = stats([m.val_rmse for m in members if m.val_rmse is not None])
            test = stats([m.test_rmse for m in members if m.test_rmse is not None])
            mae = stats([m.test_mae for m in members if m.test_mae is not None])
        else:
            val = test = mae = (nan, nan)
        order = (diverged > 0, val[0] if members else float("inf"), label)
        rows.append((order, label, len(all_members), diverged, val, test, mae, members))
    rows.sort(key=lambda row: row[0])
    return [
        LeaderRow(
            rank=index + 1,
            label=label,
            seeds=count,
            diverged=diverged,
            val_rmse_mean=val[0],
            val_rmse_std=val[1],
            test_rmse_mean=test[0],
            test_rmse_std=test[1],
            test_mae_mean=mae[0],
            test_mae_std=mae[1],
            best_epoch_mean=float(np.mean([m.best_epoch or 0 for m in members]))
            if members
            else nan,
        )
        for index, (_, label, count, diverged, val, test, mae, members) in enumerate(rows)
    ]


def leaderboard_csv(rows: Sequence[LeaderRow]) -> bytes:
    """The ranked configs as CSV."""
    fields = list(LeaderRow.model_fields)
    lines = [",".join(fields)]
    for row in rows:
        values = row.model_dump()
        lines.append(",".join(_csv_cell(values[name]) for name in fields))
    return ("\n".join(lines) + "\n").encode()


def trials_csv(results: Sequence[TrialResult]) -> bytes:
    """Every trial (config x seed) as CSV, with its validation curve joined by ';'."""
    lines = ["label,seed,best_epoch,val_loss,val_rmse,val_mae,test_rmse,test_mae,val_curve"]
    for r in results:
        curve = ";".join(_csv_cell(v) for v in r.val_curve)
        cells = [r.label, r.seed, r.best_epoch, r.val_loss, r.val_rmse, r.val_mae]
        cells += [r.test_rmse, r.test_mae, curve]
        lines.append(",".join(_csv_cell(c) for c in cells))
    return ("\n".join(lines) + "\n").encode()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return f'"{text}"' if "," in text or " " in text else text


def plot_validation_curves(results: Sequence[TrialResult]) -> bytes:
    """Validation loss per epoch of every trial, one colour per config, as PNG bytes."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5), dpi=100)
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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _finite(value: float) -> float | None:
    import math

    # NaN/inf cannot go into a JSON task result; a diverged epoch is recorded as None.
    return value if math.isfinite(value) else None


def diverged_trial(trial: Trial, run: TrainingRun) -> TrialResult:
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
        val_curve=tuple(_finite(record.val_loss) for record in run.history),
        model=None,
    )


@task(name="collect_trial")
def collect_trial(
    trial: Trial, run: TrainingRun, best: BestEpoch, evaluation: Evaluation
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
        val_curve=tuple(_finite(record.val_loss) for record in run.history),
        model=best.model,
    )


@task(name="publish_leaderboard")
def publish_leaderboard(
    results: list[TrialResult], baselines: dict[str, dict[str, float]], output_dir: str
) -> Leaderboard:
    """Rank the configs, write the CSVs and the plot, and post the table to the Prefect UI."""
    from pathlib import Path

    rows = rank_results(results)
    destination = Path(output_dir).expanduser().resolve()
    publish_directory(
        destination,
        {
            "leaderboard.csv": leaderboard_csv(rows),
            "trials.csv": trials_csv(results),
            "validation_curves.png": plot_validation_curves(results),
        },
    )
    table = [
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
    table += [
        {"rank": "", "config": f"baseline: {name}", "seeds": "", "val RMSE": "", **scores_cells}
        for name, scores in baselines.items()
        for scores_cells in [
            {"test RMSE": f"{scores['rmse']:.0f}", "test MAE": f"{scores['mae']:.0f}"}
        ]
    ]
    create_table_artifact(
        key="sweep-leaderboard",
        table=table,
        description="Configs ranked by mean validation RMSE; test scores are reported only",
    )
    return Leaderboard(
        rows=tuple(rows),
        trials=tuple(results),
        baselines=baselines,
        output_dir=str(destination),
        winner=rows[0].label,
    )


@contextlib.contextmanager
def trial_resources(gpus: int) -> Iterator[None]:
    """Ask a Ray or Dask task runner for ``gpus`` GPUs per submitted task (no-op otherwise)."""
    with contextlib.ExitStack() as stack:
        if gpus:
            # prefect-ray reads remote_options, prefect-dask reads dask annotations, when a
            # task is submitted; neither package is a bikeflow dependency.
            with contextlib.suppress(ImportError):
                from prefect_ray.context import remote_options

                stack.enter_context(remote_options(num_gpus=gpus))
            with contextlib.suppress(ImportError):
                import dask

                stack.enter_context(dask.annotate(resources={"GPU": gpus}))
        yield


def _in_batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@flow(name="sweep", result_serializer="json")
def sweep(config: SweepConfig = SweepConfig()) -> Leaderboard:  # noqa: B008
    """Train every trial config over several seeds in parallel and rank them on validation."""
    logger = get_run_logger()
    base = config.base
    trials = expand_trials(config)
    logger.info("sweep of %d trials (%d seeds each)", len(trials), len(config.seeds))
    raw = ingest_source(base.source, base.store_root, f"{base.granularity}.csv")
    table = validate_records(raw, base.split.test_days, base.store_root, base.granularity)
    plan = split_by_date(table, base.split)
    if table.stations is not None:
        kept = trials_for_stations(trials, defaulted=not config.trials)
        if len(kept) < len(trials):
            logger.warning("the data has stations: tf-core (no station input) is left out")
        trials = kept
    # One normalisation per distinct feature config, shared (and cached) by its trials.
    normalised: dict[FeatureConfig, NormalisedData] = {}
    for trial in trials:
        features = trial.config.features
        if features not in normalised:
            normalised[features] = normalise_features(table, plan, base.store_root, features)
    data = [normalised[t.config.features] for t in trials]

    runs: list[Any] = []
    # Each training runs in its own child process (the JSON-lines trainer); at most
    # max_parallel of them at once.
    for batch in _in_batches(list(range(len(trials))), config.max_parallel):
        with trial_resources(config.gpus_per_trial):
            futures = [
                train_model.submit(
                    data[i], trials[i].config.model, trials[i].config.training, base.store_root
                )
                for i in batch
            ]
        wait(futures)
        runs += [future.result() for future in futures]
    results: list[TrialResult] = []
    evaluations: list[Evaluation | None] = []
    for trial, run, trial_data in zip(trials, runs, data, strict=True):
        if not any(math.isfinite(record.val_loss) for record in run.history):
            logger.warning(
                "trial %s seed %d diverged (no finite val_loss)", trial.label, trial.seed
            )
            evaluations.append(None)
            results.append(diverged_trial(trial, run))
            continue
        best = select_best_epoch(run)
        evaluation = evaluate_model(best, trial_data, table, plan, base.store_root)
        evaluations.append(evaluation)
        results.append(collect_trial(trial, run, best, evaluation))
    scored = [e for e in evaluations if e is not None]
    if not scored:
        raise TrainingError("every trial of the sweep diverged (try a lower learning_rate)")
    baselines = {
        name: {"rmse": scores.rmse, "mae": scores.mae}
        for name, scores in scored[0].baselines.items()
    }
    board = publish_leaderboard(results, baselines, config.leaderboard_dir)
    create_markdown_artifact(
        key="sweep-winner",
        markdown=f"# Sweep winner\n\n`{board.winner}` (lowest mean validation RMSE).",
        description="Winner of the sweep",
    )
    if config.promote_winner:
        hand_over_winner(board, trials, runs, data, evaluations, table, plan)
    return board


def hand_over_winner(
    board: Leaderboard,
    trials: Sequence[Trial],
    runs: Sequence[TrainingRun],
    data: Sequence[NormalisedData],
    evaluations: Sequence[Evaluation | None],
    table: Any,
    plan: Any,
) -> Any:
    """Give the winner's best-validated seed to the registry's ``promote_model`` step."""
    scored = {i: e for i, e in enumerate(evaluations) if e is not None}
    index = min(
        (i for i, t in enumerate(trials) if t.label == board.winner and i in scored),
        key=lambda i: scored[i].validation.rmse,
    )
    best = select_best_epoch(runs[index])
    return promote_model(
        trials[index].config, table, plan, data[index], runs[index], best, scored[index]
    )
