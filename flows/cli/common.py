"""What every ``bikeflow`` subcommand shares: config flags, config errors, running a flow."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError


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
        return parse_bool, None
    return annotation, None


TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
# sysexits.h: EX_SOFTWARE, an internal software error (a bug of ours, not the user's).
EXIT_BUG = 70


def parse_bool(text: str) -> bool:
    """A true/false flag's value; anything but true/false/yes/no/1/0 is a usage error."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    # argparse turns this into "argument --refit: ...", exit 2.
    raise argparse.ArgumentTypeError(f"expected true/false/yes/no/1/0, got {text!r}")


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


def run_and_report(
    flow: Any, config: Any, action: str, verbosity: str = "verbose"
) -> tuple[int, Any]:
    """Run a flow; return (0, its result), or print why it failed: (1, None) for a user error,
    (70, None) for a bug.

    A user error (``BikeflowError``) is printed as one paragraph, and Prefect's own lines
    about it stay off the terminal meanwhile, so it is said once, without a traceback. Any
    other exception is a bug: Prefect has logged its traceback (printed here under --quiet,
    which keeps Prefect's console silent), and the last line names it. ``verbosity``:
    ``default``, ``quiet`` or ``verbose`` (tasks/progress_display.py); ``verbose`` is Prefect's
    console as it is, with no display.
    """
    from schemas.errors import BikeflowError
    from tasks.error_logs import console_quiet_for_user_errors
    from tasks.progress_display import showing_progress

    with console_quiet_for_user_errors(), showing_progress(verbosity):
        state = flow(config, return_state=True)
    if state.is_completed():
        return 0, state.result()
    failure = state.result(raise_on_failure=False)
    if isinstance(failure, BikeflowError):
        print(f"bikeflow: {action} failed: {failure}", file=sys.stderr)
        return 1, None
    if verbosity == "quiet" and isinstance(failure, BaseException):
        traceback.print_exception(failure, file=sys.stderr)
    print(
        f"bikeflow: {action} failed ({state.name}) on an unexpected "
        f"{type(failure).__name__}: {failure} (a bug; the traceback is above)",
        file=sys.stderr,
    )
    return EXIT_BUG, None


def prepare_local_server() -> None:
    """Settings for Prefect's embedded server; call it before Prefect is imported."""
    if not os.environ.get("PREFECT_API_URL"):
        # Prefect's embedded default starts a temporary API server in a subprocess for each
        # run. On a busy machine it can take longer than Prefect's 20 s start-up timeout, and
        # its telemetry service only fails offline; neither helps a one-off local run.
        os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def add_config_command(
    commands: Any,
    name: str,
    model: type[BaseModel],
    handler: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str,
    config_help: str = "YAML or JSON file of config fields",
    own_flags: Callable[[argparse.ArgumentParser], None] | None = None,
    runs_a_flow: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand whose flags are ``model``'s fields (after ``--config`` and its own flags).

    A subcommand that runs a flow also takes ``--quiet`` and ``--verbose``.
    """
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("--config", metavar="FILE", help=config_help)
    if runs_a_flow:
        add_verbosity_flags(parser)
    if own_flags is not None:
        own_flags(parser)
    parser.set_defaults(config_destinations=add_config_flags(parser, model), handler=handler)
    return parser


def add_verbosity_flags(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` and ``--verbose`` (one at most); ``args.verbosity`` is ``default`` without."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quiet",
        dest="verbosity",
        action="store_const",
        const="quiet",
        help="print only the summary (or the error): no progress, no Prefect log",
    )
    group.add_argument(
        "--verbose",
        dest="verbosity",
        action="store_const",
        const="verbose",
        help="print Prefect's full log (every task run's INFO lines) instead of the progress",
    )
    parser.set_defaults(verbosity="default")


def config_or_none(build: Callable[[], Any], what: str = "configuration") -> Any | None:
    """Build a config; on a bad one print ``bikeflow: invalid <what>: ...`` and return None."""
    try:
        return build()
    except CONFIG_ERRORS as error:
        print(f"bikeflow: invalid {what}: {describe_config_error(error)}", file=sys.stderr)
        return None


def run_flow(
    flow: str | Callable[[], Any],
    config: Any,
    action: str,
    report: Callable[[Any], None],
    verbosity: str = "default",
    trains_on: str | None = None,
) -> int:
    """Run a flow (``"module:name"``, or a function that loads it) and print its report.

    The flow is loaded only after the local server's settings are in place (Prefect reads
    them on import), so ``--help`` and bad flags answer without loading Prefect at all.
    ``verbosity`` is the command's ``--quiet``/``--verbose`` (``args.verbosity``);
    ``trains_on``: the Keras backend of the run's trainings (None: it trains nothing), whose
    child starts while the flow loads (``tasks/head_start.py``).
    """
    from tasks.head_start import head_start

    prepare_local_server()
    started = head_start(trains_on, verbosity)
    try:
        if isinstance(flow, str):
            module, name = flow.split(":")
            loaded = getattr(importlib.import_module(module), name)
        else:
            loaded = flow()
        started.wait()
        code, result = run_and_report(loaded, config, action, verbosity)
    finally:
        started.close()
    if code == 0:
        report(result)
    return code
