"""``bikeflow sweep``: run the sweep flow; the retrain flags set the base config of every trial."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from flows.cli.common import (
    add_config_command,
    build_config,
    config_or_none,
    prepare_local_server,
    run_flow,
)
from schemas.config import RetrainConfig


def add_parser(commands: Any) -> None:
    """The ``bikeflow sweep`` subcommand: the retrain flags set the base config of the sweep."""
    add_config_command(
        commands,
        "sweep",
        RetrainConfig,
        run_sweep,
        help="train a list/grid of configs x seeds in parallel and print the leaderboard",
        description="Run the sweep flow. The retrain flags set the base config; --sweep-file "
        "reads trials, grid, seeds, max_parallel, leaderboard_dir and promote_winner from "
        "YAML/JSON. Without trials every zoo model is a trial.",
        config_help="YAML or JSON file of base config fields",
        own_flags=add_sweep_flags,
    )


def add_sweep_flags(sweep: argparse.ArgumentParser) -> None:
    """The sweep's own flags (the retrain fields follow them)."""
    sweep.add_argument("--sweep-file", metavar="FILE", help="YAML or JSON file of sweep fields")
    sweep.add_argument(
        "--architectures", metavar="A,B", help="comma-separated zoo entries to sweep"
    )
    sweep.add_argument("--seeds", metavar="0,1,2", help="comma-separated training seeds")
    sweep.add_argument("--max-parallel", type=int, help="trainings at once (default 2)")
    sweep.add_argument("--leaderboard-dir", help="where the leaderboard files go")
    sweep.add_argument("--promote-winner", action="store_true", help="hand the winner to promotion")
    add_runner_flags(sweep)


def add_runner_flags(parser: argparse.ArgumentParser) -> None:
    """Where the sweep's trainings run: a flag, not a config field (see docs/sweeps.md)."""
    parser.add_argument(
        "--task-runner",
        choices=("default", "dask", "ray"),
        default="default",
        help="default: a thread pool here; dask: a Dask cluster; ray: a Ray instance",
    )
    parser.add_argument(
        "--dask-address", metavar="tcp://HOST:PORT", help="a running Dask scheduler (dask only)"
    )
    parser.add_argument(
        "--local-workers",
        type=int,
        default=2,
        metavar="N",
        help="without an address: worker processes of the local cluster (default 2)",
    )


def build_sweep_config(args: argparse.Namespace) -> Any:
    """Merge the sweep file with the sweep flags and the base config, and validate."""
    from schemas.flow_configs import SweepConfig

    data: dict[str, Any] = {}
    if args.sweep_file:
        loaded = yaml.safe_load(Path(args.sweep_file).read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.sweep_file}: expected a mapping of sweep fields")
        data = loaded
    base = build_config(RetrainConfig, args.config_destinations, args)
    # Flags and --config override a base given in the sweep file.
    data["base"] = {**data.get("base", {}), **base.model_dump(exclude_unset=True)}
    if args.architectures:
        data["trials"] = [
            {"name": name, "model": {"architecture": name}}
            for name in args.architectures.split(",")
        ]
    if args.seeds:
        data["seeds"] = [int(seed) for seed in args.seeds.split(",")]
    for name in ("max_parallel", "leaderboard_dir"):
        if getattr(args, name) is not None:
            data[name] = getattr(args, name)
    if args.promote_winner:
        data["promote_winner"] = True
    return SweepConfig.model_validate(data)


def print_leaderboard(board: Any) -> None:
    """Print the sweep's ranked configs beside the baselines."""
    print("bikeflow: sweep completed (ranked by mean validation RMSE; test reported only)")
    print(f"  {'#':>2}  {'config':<34} {'val RMSE':>14} {'test RMSE':>14} {'test MAE':>14}")
    for row in board.rows:
        if row.diverged == row.seeds:
            print(f"  {row.rank:>2}  {row.label[:34]:<34} diverged on every seed")
            continue
        print(
            f"  {row.rank:>2}  {row.label[:34]:<34} "
            f"{row.val_rmse_mean:>7,.0f} ± {row.val_rmse_std:<4,.0f} "
            f"{row.test_rmse_mean:>7,.0f} ± {row.test_rmse_std:<4,.0f} "
            f"{row.test_mae_mean:>7,.0f} ± {row.test_mae_std:<4,.0f}"
            + (f"  ({row.diverged} of {row.seeds} seeds diverged)" if row.diverged else "")
        )
    for name, scores in board.baselines.items():
        print(
            f"      {'baseline: ' + name:<34} {'':>14} {scores['rmse']:>7,.0f}        "
            f"{scores['mae']:>7,.0f}"
        )
    print(f"  winner:  {board.winner}")
    print(f"  outputs: {board.output_dir}")


def run_sweep(args: argparse.Namespace) -> int:
    """Run the sweep flow from parsed arguments; returns the process exit code."""
    prepare_local_server()  # before Prefect is imported (it reads its settings then)
    from flows.sweep import expand_trials

    def build() -> Any:
        config = build_sweep_config(args)
        expand_trials(config)  # a bad trial is a bad flag: refuse it before anything runs
        return config

    config = config_or_none(build, "sweep configuration")
    if config is None:
        return 1
    from tasks.sweep.resources import make_task_runner

    try:
        runner = make_task_runner(args.task_runner, args.dask_address, args.local_workers)
    except (ValueError, ImportError) as error:
        print(f"bikeflow: invalid task runner: {error}", file=sys.stderr)
        return 1
    return run_flow(lambda: _sweep_flow(runner), config, "sweep", print_leaderboard, args.verbosity)


def _sweep_flow(runner: Any) -> Any:
    """The sweep flow, on the given task runner (None: its default thread pool)."""
    from flows.sweep import sweep

    return sweep.with_options(task_runner=runner) if runner is not None else sweep
