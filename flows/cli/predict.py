"""``bikeflow predict``: run the predict-batch flow; every PredictConfig field is a flag."""

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
from schemas.config import PredictConfig


def add_parser(commands: Any) -> None:
    """The ``bikeflow predict`` subcommand (flags from ``PredictConfig``, ``--config`` file)."""
    predict = commands.add_parser(
        "predict",
        help="predict rentals for a CSV of days (or hours) with the registry's champion",
        description="Run the predict-batch flow. Every config field is a flag; --config reads "
        "a YAML/JSON file of fields first. The champion may be daily or hourly (an hourly "
        "champion reads an hr column), one model or an ensemble.",
    )
    predict.add_argument("--config", metavar="FILE", help="YAML or JSON file of config fields")
    predict.set_defaults(
        predict_destinations=add_config_flags(predict, PredictConfig), handler=run_predict
    )


def run_predict(args: argparse.Namespace) -> int:
    """Run the predict-batch flow from parsed arguments; returns the process exit code."""
    try:
        config = build_config(PredictConfig, args.predict_destinations, args)
    except CONFIG_ERRORS as error:
        message = describe_config_error(error)
        print(f"bikeflow: invalid prediction configuration: {message}", file=sys.stderr)
        return 1
    prepare_local_server()
    from flows.predict import predict_batch

    code, summary = run_and_report(predict_batch, config, "batch prediction")
    if code == 0:
        print("bikeflow: batch prediction completed")
        print(f"  rows:      {summary.rows} ({summary.first_date} .. {summary.last_date})")
        print(f"  champion:  {summary.champion}")
        print(f"  written:   {summary.output_csv}")
    return code
