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
    return parser, destinations


def _print_summary(summary: Any) -> None:
    baselines = ", ".join(f"{name} {rmse:,.0f}" for name, rmse in summary.baseline_rmse.items())
    print("bikeflow: retraining completed")
    print(
        f"  best epoch:      {summary.best_epoch} (validation RMSE {summary.val_rmse:,.0f} bikes)"
    )
    print(f"  test RMSE:       {summary.test_rmse:,.0f} bikes (baselines: {baselines})")
    print(f"  test MAE:        {summary.test_mae:,.0f} bikes")
    print(f"  outputs:         {summary.output_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bikeflow`` command; returns the process exit code."""
    parser, destinations = make_parser()
    args = parser.parse_args(argv)
    try:
        config = build_config(RetrainConfig, destinations, args)
    except (ValidationError, ValueError, OSError, yaml.YAMLError) as error:
        print(f"bikeflow: invalid configuration: {error}", file=sys.stderr)
        return 2

    if not os.environ.get("PREFECT_API_URL"):
        # Prefect's embedded default starts a temporary API server in a subprocess for each
        # run. On a busy machine it can take longer than Prefect's 20 s start-up timeout, and
        # its telemetry service only fails offline; neither helps a one-off local run.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Imported here so that `bikeflow --help` and bad flags answer without loading Prefect.
    from flows.retrain import retrain
    from tasks.errors import BikeflowError

    state = retrain(config, return_state=True)
    if state.is_completed():
        _print_summary(state.result())
        return 0
    failure = state.result(raise_on_failure=False)
    known = isinstance(failure, BikeflowError)
    message = str(failure) if known else f"{type(failure).__name__}: {failure}"
    print(f"bikeflow: retraining failed ({state.name}): {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
