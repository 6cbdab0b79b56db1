"""``bikeflow models``: list, show, promote, roll back, pin, unpin and export registry versions.

Each operation is one entry of ``OPERATIONS`` (a function that adds its parser); the work is
done by tasks/promotion/operations.py, which needs no Prefect, so these answer in a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from flows.cli.common import describe_config_error
from schemas.config import PredictConfig
from schemas.errors import BikeflowError
from schemas.paths import DataFolder

DEFAULT_REGISTRY = PredictConfig.model_fields["registry_root"].default


class RegistryFlag(BaseModel):
    """``--registry-root``, checked like the config field (under ``BIKEFLOW_ROOTS``)."""

    registry_root: DataFolder


def _registry(args: argparse.Namespace) -> Any:
    """The registry the flags name, its path checked like the config field's."""
    from tasks.promotion.registry import Registry

    return Registry(RegistryFlag(registry_root=args.registry_root).registry_root)


def _operation(parent: Any, name: str, help_text: str, handler: Callable[..., int]) -> Any:
    parser = parent.add_parser(name, help=help_text, description=help_text)
    parser.add_argument(
        "--registry-root",
        default=DEFAULT_REGISTRY,
        metavar="REGISTRY_ROOT",
        help=f"root of the model registry (default: {DEFAULT_REGISTRY})",
    )
    parser.set_defaults(handler=_guarded(name, handler))
    return parser


def _guarded(name: str, handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ValidationError as error:
            reason = describe_config_error(error)
            print(f"bikeflow: models {name} failed: {reason}", file=sys.stderr)
        except BikeflowError as error:
            print(f"bikeflow: models {name} failed: {error}", file=sys.stderr)
        return 1

    return run


def _marks(champion: bool, pinned: bool) -> str:
    return "champion, pinned" if pinned else "champion" if champion else ""


def run_list(args: argparse.Namespace) -> int:
    """Print every version with its date, test RMSE, last decision and marks."""
    from tasks.promotion.operations import as_json, list_versions

    summaries = list_versions(_registry(args))
    if args.json:
        print(json.dumps(as_json(summaries), indent=2))
        return 0
    if not summaries:
        print(f"no model versions in {args.registry_root}")
        return 0
    print(f"{'version':<39} {'registered':<19} {'test RMSE':>9}  {'marks':<16} decision")
    for s in summaries:
        rmse = "-" if s.test_rmse is None else f"{s.test_rmse:,.1f}"
        print(
            f"{s.version:<39} {s.registered_at[:19]:<19} {rmse:>9}  "
            f"{_marks(s.champion, s.pinned):<16} {s.decision or '-'}"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    """Print a version's lineage, metrics, decisions and model card."""
    from tasks.promotion.operations import as_json, describe, show_version

    details = show_version(_registry(args), args.version)
    if args.json:
        print(json.dumps(as_json(details), indent=2))
        return 0
    version, lineage = details.version, details.version.lineage
    metrics = version.metrics
    print(f"version:     {version.version} {_marks(details.champion, details.pinned)}".rstrip())
    print(f"registered:  {version.registered_at}")
    print(f"data sha256: {version.data_sha256}")
    window = version.test_window
    print(f"test window: {window.first_date} .. {window.last_date} ({window.days} days)")
    formats = {"rmse": ",.1f", "mae": ",.1f", "r2": ".3f", "wape": ".1%"}
    scores = ", ".join(
        f"{name} {metrics[f'test_{name}']:{form}}"
        for name, form in formats.items()
        if isinstance(metrics.get(f"test_{name}"), int | float)
    )
    print(f"test scores: {scores or '-'}")
    if lineage is None:
        print("lineage:     not recorded")
    else:
        git = lineage.git
        run = lineage.flow_run
        print(f"package:     bikeflow {lineage.package_version or '(not installed)'}")
        print(
            "git commit:  "
            + ("-" if git is None else git.commit + (" (dirty)" if git.dirty else " (clean)"))
        )
        print(f"flow run:    {'-' if run is None else f'{run.name} ({run.id})'}")
        print(f"deployment:  {'-' if run is None or run.deployment is None else run.deployment}")
        if run is not None and run.ui_url:
            print(f"run page:    {run.ui_url}")
        print("libraries:   " + ", ".join(f"{k} {v or '-'}" for k, v in lineage.libraries.items()))
        print(f"source:      {lineage.source_sha256}")
        print(f"made:        {lineage.created_at}")
    for decision in details.decisions:
        by = f" (by {decision.by})" if decision.by else ""
        print(f"decision:    {decision.decided_at[:19]} {describe(decision)}{by}")
    if details.card:
        print()
        print(details.card.rstrip())
    return 0


def _report(decision: Any) -> int:
    from tasks.promotion.operations import describe

    print(f"bikeflow: {describe(decision)}")
    print(f"  champion now: {decision.champion_after}")
    print(f"  record:       {decision.record}")
    return 0


def run_promote(args: argparse.Namespace) -> int:
    """Promote a version by hand, with the person's reason."""
    from tasks.promotion.operations import promote_by_hand

    return _report(promote_by_hand(_registry(args), args.version, args.reason))


def run_rollback(args: argparse.Namespace) -> int:
    """Return to the previous champion (or to --to VERSION)."""
    from tasks.promotion.operations import rollback

    return _report(rollback(_registry(args), args.to, args.reason or ""))


def run_pin(args: argparse.Namespace) -> int:
    """Pin a version as the champion."""
    from tasks.promotion.operations import pin

    return _report(pin(_registry(args), args.version, args.reason or ""))


def run_unpin(args: argparse.Namespace) -> int:
    """Lift the champion's pin."""
    from tasks.promotion.operations import unpin

    return _report(unpin(_registry(args), args.reason or ""))


def add_list(parent: Any) -> None:
    """``models list [--json]``."""
    parser = _operation(parent, "list", "list the registered versions", run_list)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_show(parent: Any) -> None:
    """``models show VERSION [--json]``."""
    parser = _operation(parent, "show", "show a version's lineage, metrics and card", run_show)
    parser.add_argument("version", metavar="VERSION")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_promote(parent: Any) -> None:
    """``models promote VERSION --reason TEXT``."""
    parser = _operation(parent, "promote", "make a version the champion by hand", run_promote)
    parser.add_argument("version", metavar="VERSION")
    parser.add_argument("--reason", required=True, help="why (kept in the decision record)")


def add_rollback(parent: Any) -> None:
    """``models rollback [--to VERSION] [--reason TEXT]``."""
    parser = _operation(
        parent, "rollback", "return to the previous champion (or --to VERSION)", run_rollback
    )
    parser.add_argument("--to", metavar="VERSION", help="the version to return to")
    parser.add_argument("--reason", help="why (kept in the decision record)")


def add_pin(parent: Any) -> None:
    """``models pin VERSION [--reason TEXT]``."""
    parser = _operation(
        parent, "pin", "pin a version as champion: runs still decide, none replaces it", run_pin
    )
    parser.add_argument("version", metavar="VERSION")
    parser.add_argument("--reason", help="why (kept in the decision record)")


def add_unpin(parent: Any) -> None:
    """``models unpin [--reason TEXT]``."""
    parser = _operation(parent, "unpin", "lift the champion's pin", run_unpin)
    parser.add_argument("--reason", help="why (kept in the decision record)")


# In the order ``bikeflow models --help`` lists them; one entry per operation.
# Kept here, not imported from tasks.models.export, so that building the parser imports
# nothing of the tasks; a test checks the two agree.
EXPORT_FORMATS = ("saved-model",)


def add_export_parser(subcommands: Any) -> None:
    """The ``bikeflow models export VERSION --output-dir DIR`` subcommand."""
    export = subcommands.add_parser(
        "export",
        help="write a registry version as a TensorFlow SavedModel any TF host can serve",
        description="Export a model version as a TensorFlow SavedModel. Its serving_default "
        "signature takes the raw columns of the CSV that bikeflow predict reads, one tensor per "
        "column (dteday a YYYY-MM-DD string), and returns bikes and predicted_cnt; the encoding, "
        "holiday windows, scaling, station lookup and inverse target transform are in the "
        "graph. See docs/serving.md.",
    )
    export.add_argument(
        "version", metavar="VERSION", help="the version to export, or 'champion' for the champion"
    )
    export.add_argument(
        "--output-dir",
        required=True,
        metavar="DIR",
        help="the SavedModel folder to write (replaced only if bikeflow made it)",
    )
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default=EXPORT_FORMATS[0],
        help=f"the export format (default: {EXPORT_FORMATS[0]})",
    )
    export.add_argument(
        "--registry-root",
        default=DEFAULT_REGISTRY,
        metavar="REGISTRY_ROOT",
        help=f"root of the model registry (default: {DEFAULT_REGISTRY})",
    )
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export the version the arguments name; returns the process exit code."""
    from schemas.errors import BikeflowError
    from tasks.models.export import EXPORT_RECORD
    from tasks.prediction.export import export_version

    try:
        folder = export_version(args.registry_root, args.version, args.output_dir, args.format)
    except BikeflowError as error:
        print(f"bikeflow: export failed: {error}", file=sys.stderr)
        return 1
    record = json.loads((folder / EXPORT_RECORD).read_text(encoding="utf-8"))
    print("bikeflow: export completed")
    print(f"  version:   {record['version']}")
    print(f"  format:    {args.format}")
    print(f"  written:   {folder}")
    return 0


OPERATIONS = (add_list, add_show, add_promote, add_rollback, add_pin, add_unpin, add_export_parser)


def add_parser(commands: Any) -> None:
    """The ``bikeflow models`` subcommand and its operations."""
    models = commands.add_parser(
        "models",
        help="operate the model registry: list, show, promote, rollback, pin, unpin",
        description="Operate the model registry. Each change of champion or pin is recorded "
        "as a decision, written with the champion pointer in one atomic step.",
    )
    operations = models.add_subparsers(dest="operation", required=True)
    for add_operation in OPERATIONS:
        add_operation(operations)
