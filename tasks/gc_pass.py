"""One ``bikeflow gc`` pass over the store, the cache records and the registry (no Prefect).

``flows/cli/gc.py`` (the command) and ``flows/gc.py`` (the ``gc-weekly`` deployment) both call
``gc_pass``. The store's part is ``tasks.storage.gc``, the registry's
``tasks.promotion.registry_gc``; this module only joins them and finds the records' folder.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from schemas.gc_config import GcConfig
from tasks.promotion.registry import Registry
from tasks.promotion.registry_gc import apply_registry_gc, plan_registry_gc
from tasks.storage.gc import Garbage, GcPlan, apply_gc, plan_gc


@dataclass
class GcReport:
    """What a pass found (and, with ``applied``, deleted)."""

    plan: GcPlan
    applied: bool = False
    freed: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as the terminal shows it: one line per kind, then the total."""
        verb = "freed" if self.applied else "would free"
        kinds = self.plan.by_kind()
        lines = [
            f"  {kind:<18} {count:>6}  {_size(size):>10}" for kind, (count, size) in kinds.items()
        ]
        total = self.freed if self.applied else self.plan.total_bytes()
        lines.append(f"bikeflow gc: {verb} {_size(total)} in {len(self.plan.garbage)} item(s)")
        if not self.applied and self.plan.garbage:
            lines.append("  (a dry run: nothing was deleted; --apply deletes)")
        return [*self.notes, *lines]


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def records_folder() -> Path | None:
    """The folder of Prefect's result records (None: they are not local files)."""
    from tasks.plan.result_files import local_result_folder

    # Read without Prefect when the environment decides it, unless Prefect is loaded already
    # (a flow, a test harness): its in-process settings may differ from the environment's.
    folder = None if "prefect" in sys.modules else local_result_folder()
    if folder is not None:
        return folder
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path).expanduser().resolve()


def gc_pass(config: GcConfig, records: Path | None, apply: bool = False) -> GcReport:
    """Plan a gc pass over ``config``'s store and registry and ``records``; ``apply`` deletes."""
    grace = config.grace_hours * 3600.0
    store_root = Path(config.store_root).expanduser().resolve()
    plan = plan_gc(store_root, records, config.keep_runs, grace)
    registry = Registry(config.registry_root)
    versions: list[Garbage] = plan_registry_gc(registry, config.keep_versions, grace)
    plan.garbage.extend(versions)
    report = GcReport(plan)
    if plan.held_locks:
        report.notes.append(
            f"bikeflow gc: {plan.held_locks} step(s) of a running flow hold their cache lock: "
            "unreferenced objects and temporary files are left for the next pass"
        )
    if apply:
        stored = GcPlan([item for item in plan.garbage if item.kind != "registry versions"])
        report.freed = apply_gc(stored, records)
        if versions:
            report.freed += apply_registry_gc(registry, versions)
        report.applied = True
    return report


__all__ = ["GcConfig", "GcReport", "gc_pass", "records_folder"]
