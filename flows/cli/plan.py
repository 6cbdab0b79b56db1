"""``bikeflow plan``: which steps of the retrain flow a run would reuse, which would run, and why.

The planning is ``tasks.plan.engine``'s; this module reads the flags and prints the plan. On the
embedded default neither Prefect nor TensorFlow is imported.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.cli.common import add_config_command, build_config, config_or_none
from schemas.config import RetrainConfig

if TYPE_CHECKING:
    from tasks.plan.engine import StepPlan

MAX_REASONS = 6
UPSTREAM_NOTE = (
    "(a step after one that will run is Cached after all if that step's new output equals its last)"
)


def add_parser(commands: Any) -> None:
    """The ``bikeflow plan`` subcommand: the same flags and config file as ``run``."""
    add_config_command(
        commands,
        "plan",
        RetrainConfig,
        run_plan,
        help="show which retrain steps a run would reuse (cached) or run, and why",
        description="Plan the retrain flow without running it. Takes the same flags and "
        "--config file as `bikeflow run`.",
        runs_a_flow=False,
    )


def print_plan(plans: list[StepPlan]) -> None:
    """Print each step's status and its reasons."""
    cached = sum(plan.cached for plan in plans)
    skipped = sum(plan.skipped for plan in plans)
    running = len(plans) - cached - skipped
    print(
        f"bikeflow plan: {cached} of {len(plans)} steps cached, {running} will run"
        + (f", {skipped} skipped" if skipped else "")
    )
    for plan in plans:
        reasons = plan.reasons[:MAX_REASONS]
        if len(plan.reasons) > MAX_REASONS:
            reasons.append(f"... and {len(plan.reasons) - MAX_REASONS} more")
        first = reasons[0] if reasons else ""
        print(f"  {plan.step:<20} {plan.status:<9} {first}".rstrip())
        for reason in reasons[1:]:
            print(f"  {'':<20} {'':<9} {reason}")
    if any(plan.after_running for plan in plans):
        print(f"  {UPSTREAM_NOTE}")


def run_plan(args: argparse.Namespace) -> int:
    """Plan from parsed arguments and print it; returns the process exit code."""
    from tasks.plan.engine import plan_steps

    config = config_or_none(lambda: build_config(RetrainConfig, args.config_destinations, args))
    if config is None:
        return 1
    if not Path(config.store_root).expanduser().exists():
        print(f"bikeflow plan: no store at {config.store_root} yet; every step will run")
    print_plan(plan_steps(config))
    return 0
