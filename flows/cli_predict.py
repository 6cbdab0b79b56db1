"""``bikeflow predict``: run the predict-batch flow; every PredictConfig field is a flag."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.config import PredictConfig


def add_predict_parser(commands: Any) -> None:
    """The ``bikeflow predict`` subcommand (flags from ``PredictConfig``, ``--config`` file)."""
    from flows.cli import add_config_flags

    predict = commands.add_parser(
        "predict",
        help="predict rentals for a CSV of days (or hours) with the registry's champion",
        description="Run the predict-batch flow. Every config field is a flag; --config reads "
        "a YAML/JSON file of fields first. The champion may be daily or hourly (an hourly "
        "champion reads an hr column), one model or an ensemble.",
    )
    predict.add_argument("--config", metavar="FILE", help="YAML or JSON file of config fields")
    predict.set_defaults(
        handler=run_predict, predict_destinations=add_config_flags(predict, PredictConfig)
    )


def run_predict(args: argparse.Namespace) -> int:
    """Run the predict-batch flow from parsed arguments; returns the process exit code."""
    from flows.cli import build_config

    try:
        config = build_config(PredictConfig, args.predict_destinations, args)
    except (ValidationError, ValueError, OSError, yaml.YAMLError) as error:
        print(f"bikeflow: invalid prediction configuration: {error}", file=sys.stderr)
        return 2
    if not os.environ.get("PREFECT_API_URL"):
        # As for `bikeflow run`: a slow machine needs longer for the temporary API server.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.predict import predict_batch
    from tasks.errors import BikeflowError

    state = predict_batch(config, return_state=True)
    if state.is_completed():
        summary = state.result()
        print("bikeflow: batch prediction completed")
        print(f"  rows:      {summary.rows} ({summary.first_date} .. {summary.last_date})")
        print(f"  champion:  {summary.champion}")
        print(f"  written:   {summary.output_csv}")
        return 0
    failure = state.result(raise_on_failure=False)
    known = isinstance(failure, BikeflowError | ValueError)
    message = str(failure) if known else f"{type(failure).__name__}: {failure}"
    print(f"bikeflow: batch prediction failed ({state.name}): {message}", file=sys.stderr)
    return 1
