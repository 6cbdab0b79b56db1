"""The ``bikeflow`` console command: every config field is a flag, the flow does the work."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import NoReturn

from flows.cli import aggregate, backtest, gc, models, plan, predict, run, sweep
from flows.cli.common import EXIT_BUG
from flows.cli.version import VersionAction

# In the order ``bikeflow --help`` lists them.
SUBCOMMANDS = (run, sweep, predict, plan, backtest, aggregate, models, gc)

EXIT_CODES = """exit codes:
  0   success
  1   a user error: bad data, source or config, a refused path, no champion (one paragraph)
  2   a usage error: an unknown flag, a bad flag value (argparse)
  70  a bug (EX_SOFTWARE): its traceback is printed; please report it"""


def make_parser() -> argparse.ArgumentParser:
    """The ``bikeflow`` argument parser: each subcommand's parser sets its ``handler``."""
    parser = argparse.ArgumentParser(
        prog="bikeflow",
        description="Retrain the bike-sharing demand model with Prefect.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bikeflow`` command; returns the process exit code (``EXIT_CODES``).

    An exception that escapes a handler is a bug of ours: its traceback, then 70.
    """
    args = make_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except Exception as error:
        traceback.print_exc()
        print(
            f"bikeflow: {args.command} failed on an unexpected {type(error).__name__}: {error} "
            "(a bug; the traceback is above)",
            file=sys.stderr,
        )
        return EXIT_BUG


def console_main() -> NoReturn:
    """The installed ``bikeflow`` script and ``python -m flows.cli``: ``main`` with
    TensorFlow's C++ noise filtered out, then the process ends with its exit code."""
    from flows.cli.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    code = main()
    if "--verbose" not in sys.argv[1:]:
        # The command has said all it has to say; Prefect's exit handlers would still log
        # "Stopping temporary server ..." at INFO on the terminal.
        logging.getLogger("prefect").setLevel(logging.WARNING)
    exit_without_teardown(code)


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with ``code`` once everything registered to run at exit has run, as
    at a normal exit, but without the interpreter's teardown of its modules.

    That teardown has nothing left to save and took 2.5 s after a run (thousands of modules,
    TensorFlow's among them), so the process entry points skip it, as the training child
    does: first what the interpreter runs at exit, in its order (``threading._shutdown``:
    Prefect's log and event workers deliver what is queued, other threads are joined; then
    the ``atexit`` handlers: spare children and servers end), then the streams are flushed.
    """
    threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's first exit step
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
