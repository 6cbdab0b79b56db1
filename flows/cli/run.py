"""``bikeflow run``: run the retrain flow; every RetrainConfig field is a flag."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.common import add_config_command, build_config, config_or_none, run_flow
from schemas.config import RetrainConfig


def add_parser(commands: Any) -> None:
    """The ``bikeflow run`` subcommand (flags from ``RetrainConfig``, ``--config`` file)."""
    add_config_command(
        commands,
        "run",
        RetrainConfig,
        run_retrain,
        help="run the retrain flow locally (or against PREFECT_API_URL when it is set)",
        description="Run the retrain flow. Every config field is a flag; --config reads a "
        "YAML/JSON file of fields first.",
    )


def print_summary(summary: Any) -> None:
    """Print the run's scores and outputs (or why retraining was skipped)."""
    if not summary.trained:
        print(f"bikeflow: retraining skipped: {summary.new_data.summary}")
        print(f"  champion test RMSE: {summary.test_rmse:,.0f} bikes ({summary.output_dir})")
        return
    baselines = ", ".join(f"{name} {rmse:,.0f}" for name, rmse in summary.baseline_rmse.items())
    print("bikeflow: retraining completed")
    print(
        f"  best epoch:      {summary.best_epoch} (validation RMSE {summary.val_rmse:,.0f} bikes)"
    )
    print(f"  test RMSE:       {summary.test_rmse:,.0f} bikes (baselines: {baselines})")
    print(f"  test MAE:        {summary.test_mae:,.0f} bikes")
    print(f"  model:           {summary.members} member(s){', refitted' if summary.refit else ''}")
    print(f"  outputs:         {summary.output_dir}")
    linear = summary.baseline_rmse.get("linear_regression")
    if linear is not None and summary.test_rmse > linear:
        print(
            f"  WARNING: the model is worse than the linear-regression baseline "
            f"({summary.test_rmse:,.0f} > {linear:,.0f} bikes); --preset forecaster beats it"
        )

    if summary.new_data is not None:
        print(f"  {summary.new_data.summary}")
    if summary.promotion is not None:
        print(f"  promotion:       {promotion_text(summary.promotion)}")


def promotion_text(note: Any) -> str:
    """The decision in one line: promoted or kept, which version is champion, and why."""
    if note.outcome == "rejected":
        verdict = f"kept the champion {note.champion_after}"
    else:
        verdict = f"promoted {note.challenger} to champion"
        verdict += " (the first)" if note.outcome == "first-champion" else ""
    return f"{verdict}: {note.reason}"


def run_retrain(args: argparse.Namespace) -> int:
    """Run the retrain flow from parsed arguments; returns the process exit code."""
    config = config_or_none(lambda: build_config(RetrainConfig, args.config_destinations, args))
    if config is None:
        return 1
    return run_flow(
        lambda: timed_retrain(config),
        config,
        "retraining",
        print_summary,
        args.verbosity,
        trains_on=config.training.backend,
    )


# Besides its trainings (each bounded by training.timeout_minutes), a run reads, validates,
# evaluates and publishes: an hour is far more than that takes on the real data.
REST_OF_THE_RUN_SECONDS = 3600.0


def timed_retrain(config: RetrainConfig) -> Any:
    """The retrain flow with Prefect's ``timeout_seconds``: every training round, plus the rest.

    Members train ``parallel_members`` at a time, and once more when refitted; each round is
    bounded by ``training.timeout_minutes``, so the run as a whole is bounded by their sum.
    """
    from flows.retrain import retrain

    training = config.training
    rounds = -(-training.ensemble_size // training.parallel_members) * (2 if training.refit else 1)
    seconds = 60.0 * training.timeout_minutes * rounds + REST_OF_THE_RUN_SECONDS
    return retrain.with_options(timeout_seconds=seconds)
