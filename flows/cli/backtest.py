"""``bikeflow backtest``: replay the nightly retraining over history and compare policies."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.common import add_config_command, build_config, config_or_none, run_flow
from schemas.config import RetrainConfig
from schemas.flow_configs import BacktestConfig

BACKTEST_FLAGS = ("start_date", "every_days", "end_date", "max_parallel", "backtest_dir")


def add_parser(commands: Any) -> None:
    """The ``bikeflow backtest`` subcommand: the retrain flags set the config of every origin."""
    add_config_command(
        commands,
        "backtest",
        RetrainConfig,
        run_backtest,
        help="replay the nightly retraining over history and compare promotion policies",
        description="Run the backtest flow. The retrain flags (and --config) set the config "
        "every origin trains with; the backtest's own registry lives under --backtest-dir.",
        config_help="YAML or JSON file of retrain fields",
        own_flags=add_backtest_flags,
    )


def add_backtest_flags(parser: argparse.ArgumentParser) -> None:
    """The backtest's own fields, each a flag (the retrain fields follow them)."""
    for name in BACKTEST_FLAGS:
        info = BacktestConfig.model_fields[name]
        kind = int if info.annotation is int else str
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"backtest_{name}",
            type=kind,
            default=None,
            help=f"{info.description} (default: {info.default or 'empty'})",
        )


def build_backtest_config(args: argparse.Namespace) -> BacktestConfig:
    """Merge the retrain flags and file with the backtest flags, and validate."""
    base = build_config(RetrainConfig, args.config_destinations, args)
    data: dict[str, Any] = {"base": base.model_dump(exclude_unset=True)}
    for name in BACKTEST_FLAGS:
        value = getattr(args, f"backtest_{name}")
        if value is not None:
            data[name] = value
    return BacktestConfig.model_validate(data)


def print_backtest(report: Any) -> None:
    """Print the per-window table, the overall errors and the champion changes."""
    from tasks.backtest.steps import POLICIES

    print("bikeflow: backtest completed (RMSE in bikes on the window after each origin)")
    print(f"  {'origin':<11} {'days':>4} {'decision':<15}" + "".join(f"{p:>10}" for p in POLICIES))
    for r in report.origins:
        print(
            f"  {r.origin.date:<11} {r.origin.stop - r.origin.start:>4} {r.outcome:<15}"
            + "".join(f"{r.scores[p].rmse:>10,.0f}" for p in POLICIES)
        )
    print(f"  {'overall':<32}" + "".join(f"{report.overall[p].rmse:>10,.0f}" for p in POLICIES))
    print(f"  {'champion changes':<32}" + "".join(f"{report.changes[p]:>10}" for p in POLICIES))
    print(f"  report:   {report.report_dir}")
    print(f"  registry: {report.registry_root}")


def run_backtest(args: argparse.Namespace) -> int:
    """Run the backtest flow from parsed arguments; returns the process exit code."""
    config = config_or_none(lambda: build_backtest_config(args), "backtest configuration")
    if config is None:
        return 1
    return run_flow("flows.backtest:backtest", config, "backtest", print_backtest, args.verbosity)
