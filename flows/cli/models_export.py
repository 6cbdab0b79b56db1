"""``bikeflow models export``: write a registry version as a TensorFlow SavedModel.

``add_export_parser`` adds ``export`` to the ``bikeflow models`` subcommands; the export runs
in this process (no flow: it reads the registry and writes one folder). TensorFlow is
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# Kept here, not imported from tasks.models.export, so that building the parser imports
# nothing of the tasks; a test checks the two agree.
EXPORT_FORMATS = ("saved-model",)
DEFAULT_REGISTRY_ROOT = "models"


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
        default=DEFAULT_REGISTRY_ROOT,
        metavar="REGISTRY_ROOT",
        help=f"root of the model registry (default: {DEFAULT_REGISTRY_ROOT})",
    )
    export.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export the version the arguments name; returns the process exit code."""
    import json

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
