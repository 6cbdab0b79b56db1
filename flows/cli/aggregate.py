"""``bikeflow aggregate``: count trip files into the UCI layout and write it (CSV or Parquet)."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.common import add_config_command, build_config, config_or_none, run_flow
from schemas.aggregate_config import AggregateConfig


def add_parser(commands: Any) -> None:
    """The ``bikeflow aggregate`` subcommand (flags from ``AggregateConfig``, ``--config``)."""
    add_config_command(
        commands,
        "aggregate",
        AggregateConfig,
        run_aggregate,
        help="count trip history files into day or hour rows (the UCI layout) and write them",
        description="Count trip files (a folder or glob: .csv, .csv.gz, .zip, either published "
        "layout) by local start day or hour, join the weather and the holiday calendar, and "
        "write the table in day.csv's (or hour.csv's) layout with --output-csv (or "
        "--output-parquet). The same tasks and per-file cache as a run with a trips source.",
    )


def run_aggregate(args: argparse.Namespace) -> int:
    """Run the aggregate flow from parsed arguments; returns the process exit code."""
    config = config_or_none(
        lambda: build_config(AggregateConfig, args.config_destinations, args),
        "aggregate configuration",
    )
    if config is None:
        return 1
    return run_flow(
        "flows.aggregate:aggregate_trips_table",
        config,
        "aggregation",
        print_aggregate,
        args.verbosity,
    )


def print_aggregate(summary: Any) -> None:
    """Print what was written: the rows, their dates, the trips and files behind them."""
    print("bikeflow: aggregation completed")
    print(f"  rows:      {summary.rows} ({summary.first_date} .. {summary.last_date})")
    print(f"  trips:     {summary.trips:,} from {summary.files} file(s)")
    print(f"  written:   {summary.output}")
