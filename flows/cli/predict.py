"""``bikeflow predict``: run the predict-batch flow; every PredictConfig field is a flag."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.common import add_config_command, build_config, config_or_none, run_flow
from schemas.config import PredictConfig


def add_parser(commands: Any) -> None:
    """The ``bikeflow predict`` subcommand (flags from ``PredictConfig``, ``--config`` file)."""
    add_config_command(
        commands,
        "predict",
        PredictConfig,
        run_predict,
        help="predict rentals for a CSV of days (or hours) with the registry's champion",
        description="Run the predict-batch flow. Every config field is a flag; --config reads "
        "a YAML/JSON file of fields first. The champion may be daily or hourly (an hourly "
        "champion reads an hr column), one model or an ensemble.",
    )


def run_predict(args: argparse.Namespace) -> int:
    """Run the predict-batch flow from parsed arguments; returns the process exit code."""
    config = config_or_none(
        lambda: build_config(PredictConfig, args.config_destinations, args),
        "prediction configuration",
    )
    if config is None:
        return 1
    return run_flow(
        "flows.predict:predict_batch", config, "batch prediction", print_prediction, args.verbosity
    )


def print_prediction(summary: Any) -> None:
    """Print what was predicted, with which champion, and where it was written."""
    print("bikeflow: batch prediction completed")
    print(f"  rows:      {summary.rows} ({summary.first_date} .. {summary.last_date})")
    print(f"  champion:  {summary.champion}")
    print(f"  written:   {summary.output_csv}")
