"""``bikeflow run``: run the retrain flow; every RetrainConfig field is a flag."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flows.cli.common import (
    CONFIG_ERRORS,
    add_config_flags,
    build_config,
    describe_config_error,
    prepare_local_server,
    run_and_report,
)
from schemas.config import RetrainConfig


def add_parser(commands: Any) -> None:
    """The ``bikeflow run`` subcommand (flags from ``RetrainConfig``, ``--config`` file)."""
    parser = commands.add_parser(
        "run",
        help="run the retrain flow locally (or against PREFECT_API_URL when it is set)",
        description="Run the retrain flow. Every config field is a flag; --config reads a "
        "YAML/JSON file of fields first.",
    )
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON file of config fields")
    parser.set_defaults(
        run_destinations=add_config_flags(parser, RetrainConfig), handler=run_retrain
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


def run_retrain(args: argparse.Namespace) -> int:
    """Run the retrain flow from parsed arguments; returns the process exit code."""
    try:
        config = build_config(RetrainConfig, args.run_destinations, args)
    except CONFIG_ERRORS as error:
        print(f"bikeflow: invalid configuration: {describe_config_error(error)}", file=sys.stderr)
        return 1

    prepare_local_server()
    # Imported here so that `bikeflow --help` and bad flags answer without loading Prefect.
    from flows.retrain import retrain

    code, summary = run_and_report(retrain, config, "retraining")
    if code == 0:
        print_summary(summary)
    return code
