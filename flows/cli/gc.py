"""``bikeflow gc``: list (and with ``--apply`` delete) what the store and registry no longer need.

The pass is ``tasks.gc_pass``'s; this module reads the flags and prints the report. Prefect is
imported only when its result records are not local files under the default settings.
"""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.common import config_or_none
from schemas.gc_config import GcConfig


def add_parser(commands: Any) -> None:
    """The ``bikeflow gc`` subcommand: a flag per ``GcConfig`` field, and ``--apply``."""
    parser = commands.add_parser(
        "gc",
        help="list (--apply: delete) old checkpoints, arrays, cache records and registry versions",
        description="Collect the store's garbage. A dry run unless --apply. Keeps the champion, "
        "the previous champion and pinned versions, the newest --keep-versions versions, what "
        "the last --keep-runs runs' cache records need, and anything younger than --grace-hours; "
        "deletes only what bikeflow created, never what a running flow holds (docs/storage.md).",
    )
    parser.add_argument("--apply", action="store_true", help="delete (default: only list)")
    for name, info in GcConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind = type(info.default)
        parser.add_argument(flag, type=kind, default=info.default, help=info.description)
    parser.set_defaults(handler=run_gc)


def run_gc(args: argparse.Namespace) -> int:
    """Run one gc pass from parsed arguments and print its report; the exit code."""
    from tasks.gc_pass import gc_pass, records_folder

    fields = {name: getattr(args, name) for name in GcConfig.model_fields}
    config = config_or_none(lambda: GcConfig(**fields))
    if config is None:
        return 1
    for line in gc_pass(config, records_folder(), apply=args.apply).lines():
        print(line)
    return 0
