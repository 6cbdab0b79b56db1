"""The ``bikeflow`` console command: every config field is a flag, the flow does the work."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flows.cli import backtest, gc, models, plan, predict, run, sweep
from flows.cli.version import VersionAction

# In the order ``bikeflow --help`` lists them.
SUBCOMMANDS = (run, sweep, predict, plan, backtest, models, gc)


def make_parser() -> argparse.ArgumentParser:
    """The ``bikeflow`` argument parser: each subcommand's parser sets its ``handler``."""
    parser = argparse.ArgumentParser(
        prog="bikeflow", description="Retrain the bike-sharing demand model with Prefect."
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bikeflow`` command; returns the process exit code.

    0 on success; 1 for any user error (bad config, bad data, bad source, refused path,
    missing champion) and for a bug; 2 only for argparse's own usage errors (unknown flag).
    """
    args = make_parser().parse_args(argv)
    return int(args.handler(args))


def console_main() -> int:
    """The installed ``bikeflow`` script: ``main`` with TensorFlow's C++ noise filtered out."""
    from flows.cli.quiet import quiet_tensorflow_startup

    quiet_tensorflow_startup()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
