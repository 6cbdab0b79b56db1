"""The ``bikeflow`` console command: every config field is a flag, the flow does the work."""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from schemas.config import RetrainConfig


def _leaf_fields(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    leaves = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            leaves += _leaf_fields(annotation, (*prefix, name))
        else:
            leaves.append(((*prefix, name), info))
    return leaves


def _flag_type(annotation: Any) -> tuple[Any, list[Any] | None]:
    if typing.get_origin(annotation) is typing.Literal:
        choices = list(typing.get_args(annotation))
        return type(choices[0]), choices
    if isinstance(annotation, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if annotation is bool:
        return lambda text: text.lower() in ("1", "true", "yes", "on"), None
    return annotation, None


def add_config_flags(
    parser: argparse.ArgumentParser, model: type[BaseModel]
) -> dict[str, tuple[str, ...]]:
    """Add one flag per leaf field of the config model; return flag dest -> field path."""
    destinations: dict[str, tuple[str, ...]] = {}
    for path, info in _leaf_fields(model):
        name = path[-1]
        if name in destinations:
            raise ValueError(f"config field name {name!r} is not unique; flags need unique names")
        kind, choices = _flag_type(info.annotation)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=kind,
            choices=choices,
            default=None,
            metavar=None if choices else name.upper(),
            help=f"{info.description} (default: {info.default})",
        )
        destinations[name] = path
    return destinations


def build_config(
    model: type[BaseModel], destinations: dict[str, tuple[str, ...]], args: argparse.Namespace
) -> Any:
    """Merge a config file (if any) with the flags given, and validate the result."""
    data: dict[str, Any] = {}
    if args.config:
        loaded = yaml.safe_load(Path(args.config).read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"{args.config}: expected a mapping of config fields")
        data = loaded
    for dest, path in destinations.items():
        value = getattr(args, dest)
        if value is None:
            continue
        node = data
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return model.model_validate(data)


def make_parser() -> tuple[argparse.ArgumentParser, dict[str, tuple[str, ...]]]:
    """The ``bikeflow`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="bikeflow", description="Retrain the bike-sharing demand model with Prefect."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the retrain flow locally (or against PREFECT_API_URL when it is set)",
        description="Run the retrain flow. Every config field is a flag; --config reads a "
        "YAML/JSON file of fields first.",
    )
    run.add_argument("--config", metavar="FILE", help="YAML or JSON file of config fields")
    destinations = add_config_flags(run, RetrainConfig)
    add_sweep_parser(commands)
    from flows.cli_predict import add_predict_parser

    add_predict_parser(commands)
    from flows.cli_backtest import add_backtest_parser
    from flows.cli_plan import add_plan_parser

    add_plan_parser(commands)
    add_backtest_parser(commands)
    return parser, destinations


def add_sweep_parser(commands: Any) -> None:
    """The ``bikeflow sweep`` subcommand: the retrain flags set the base config of the sweep."""
    sweep = commands.add_parser(
        "sweep",
        help="train a list/grid of configs x seeds in parallel and print the leaderboard",
        description="Run the sweep flow. The retrain flags set the base config; --sweep-file "
        "reads trials, grid, seeds, max_parallel, leaderboard_dir and promote_winner from "
        "YAML/JSON. Without trials every zoo model is a trial.",
    )
    sweep.add_argument("--config", metavar="FILE", help="YAML or JSON file of base config fields")
    sweep.add_argument("--sweep-file", metavar="FILE", help="YAML or JSON file of sweep fields")
    sweep.add_argument(
        "--architectures", metavar="A,B", help="comma-separated zoo entries to sweep"
    )
    sweep.add_argument("--seeds", metavar="0,1,2", help="comma-separated training seeds")
    sweep.add_argument("--max-parallel", type=int, help="trainings at once (default 2)")
    sweep.add_argument("--leaderboard-dir", help="where the leaderboard files go")
    sweep.add_argument("--promote-winner", action="store_true", help="hand the winner to promotion")
    add_runner_flags(sweep)
    sweep.set_defaults(sweep_destinations=add_config_flags(sweep, RetrainConfig))


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
    base = build_config(RetrainConfig, args.sweep_destinations, args)
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


def _print_summary(summary: Any) -> None:
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


CONFIG_ERRORS = (ValidationError, ValueError, OSError, yaml.YAMLError)


def describe_config_error(error: Exception) -> str:
    """One line per broken field of a config, joined into one paragraph."""
    if not isinstance(error, ValidationError):
        return " ".join(str(error).split())
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        given = repr(item.get("input"))
        given = given if len(given) <= 80 else given[:77] + "..."
        parts.append(f"{where}: {item['msg']} (given {given})")
    return "; ".join(parts)


def run_and_report(flow: Any, config: Any, action: str) -> tuple[int, Any]:
    """Run a flow; return (0, its result), or print why it failed and return (1, None).

    A user error (``BikeflowError``) is printed as one paragraph, and Prefect's own lines
    about it stay off the terminal meanwhile, so it is said once, without a traceback. Any
    other exception is a bug: Prefect has logged its traceback, and the last line names it.
    """
    from schemas.errors import BikeflowError
    from tasks.error_logs import console_quiet_for_user_errors

    with console_quiet_for_user_errors():
        state = flow(config, return_state=True)
    if state.is_completed():
        return 0, state.result()
    failure = state.result(raise_on_failure=False)
    if isinstance(failure, BikeflowError):
        print(f"bikeflow: {action} failed: {failure}", file=sys.stderr)
    else:
        print(
            f"bikeflow: {action} failed ({state.name}) on an unexpected "
            f"{type(failure).__name__}: {failure} (a bug; the traceback is above)",
            file=sys.stderr,
        )
    return 1, None


def _prepare_local_server() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        # Prefect's embedded default starts a temporary API server in a subprocess for each
        # run. On a busy machine it can take longer than Prefect's 20 s start-up timeout, and
        # its telemetry service only fails offline; neither helps a one-off local run.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bikeflow`` command; returns the process exit code.

    0 on success; 1 for any user error (bad config, bad data, bad source, refused path,
    missing champion) and for a bug; 2 only for argparse's own usage errors (unknown flag).
    """
    parser, destinations = make_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is not None:
        return int(args.handler(args))
    if args.command == "sweep":
        return run_sweep(args)
    if args.command == "backtest":
        from flows.cli_backtest import run_backtest

        return run_backtest(args)
    if args.command == "plan":
        from flows.cli_plan import run_plan

        return run_plan(args)
    try:
        config = build_config(RetrainConfig, destinations, args)
    except CONFIG_ERRORS as error:
        print(f"bikeflow: invalid configuration: {describe_config_error(error)}", file=sys.stderr)
        return 1

    _prepare_local_server()
    # Imported here so that `bikeflow --help` and bad flags answer without loading Prefect.
    from flows.retrain import retrain

    code, summary = run_and_report(retrain, config, "retraining")
    if code == 0:
        _print_summary(summary)
    return code


def run_sweep(args: argparse.Namespace) -> int:
    """Run the sweep flow from parsed arguments; returns the process exit code."""
    _prepare_local_server()  # before Prefect is imported (it reads its settings then)
    from flows.sweep import expand_trials

    try:
        config = build_sweep_config(args)
        expand_trials(config)  # a bad trial is a bad flag: refuse it before anything runs
    except CONFIG_ERRORS as error:
        print(
            f"bikeflow: invalid sweep configuration: {describe_config_error(error)}",
            file=sys.stderr,
        )
        return 1
    from flows.sweep import sweep
    from tasks.sweep.resources import make_task_runner

    try:
        runner = make_task_runner(args.task_runner, args.dask_address, args.local_workers)
    except (ValueError, ImportError) as error:
        print(f"bikeflow: invalid task runner: {error}", file=sys.stderr)
        return 1
    flow = sweep.with_options(task_runner=runner) if runner is not None else sweep
    code, board = run_and_report(flow, config, "sweep")
    if code == 0:
        print_leaderboard(board)
    return code


def console_main() -> int:
    """The installed ``bikeflow`` script: ``main`` with TensorFlow's C++ noise filtered out."""
    from flows.cli_quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
