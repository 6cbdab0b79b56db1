"""Export a registry version as a SavedModel (``bikeflow models export``): the Python API.

The graph and the folder are ``tasks.models.export``'s; this module finds the version in the
registry (its files verified against their digests), which the models stage cannot import.
"""

from __future__ import annotations

from pathlib import Path

from tasks.models.export import SAVED_MODEL, export_bundle
from tasks.promotion.registry import Registry

CHAMPION = "champion"  # the version name that means "whichever version is champion now"


def export_version(
    registry_root: str | Path,
    version: str,
    output_dir: str | Path,
    export_format: str = SAVED_MODEL,
) -> Path:
    """Export one registry version (or ``"champion"``) to ``output_dir``; return the folder.

    Raises ``ArtifactError`` for a missing or altered version or one that cannot be exported,
    ``NoChampionError`` for ``"champion"`` in a registry without one, and ``PathRefusedError``
    for an output folder bikeflow may not replace.
    """
    registry = Registry(registry_root)
    record = registry.require_champion() if version == CHAMPION else registry.read_version(version)
    return export_bundle(registry.bundle(record), output_dir, record.version, export_format)
