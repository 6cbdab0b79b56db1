"""Plan the trip steps of prepare_data: which trip files are new, and the rows they feed.

The files are listed and hashed as ``list_trip_files`` does (no byte of a trip is read beyond
its digest); each file's ``aggregate_trips`` key is looked up as the task's policy builds it.
The plan says it in one line, ``ingest: 1 new file of 16``, and names the new files (and
those counted before that will be counted again, with why: an edited file, a code change).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.errors import SourceError
from tasks import retrain_graph as graph
from tasks.prepare.trip_descriptors import TripFiles, find_source_files
from tasks.storage.keys import KEY_INDEX

if TYPE_CHECKING:
    from schemas.config import RetrainConfig
    from tasks.plan.engine import _Planner
    from tasks.storage.keys import Records

LIST_REASON = "runs in every run (lists the folder, takes each file's digest)"
SHOWN_FILES = 5


def ingest_line(new: int, total: int, again: int = 0) -> str:
    """The plan's line about the trip files: how many are new, of all, and counted again."""
    line = f"ingest: {new} new file{'' if new == 1 else 's'} of {total}"
    return line + (f", {again} counted again" if again else "")


def counted_before(records: Records) -> set[str]:
    """The paths of the trip files some cached ``aggregate_trips`` run counted."""
    folder = records.folder
    index = None if folder is None else folder / KEY_INDEX / graph.AGGREGATE_TRIPS.name
    paths: set[str] = set()
    for entry in [] if index is None or not index.is_dir() else index.glob("*.json"):
        try:
            material = json.loads(entry.read_text())["material"]
            paths.add(str(material["inputs"]["trip_file"]["path"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return paths


def _named(files: list[tuple[str, str]], label: str) -> list[str]:
    """One reason line per file (the first few): its name and, when counted again, why."""
    shown = [f"{label}: {name}{f' ({why})' if why else ''}" for name, why in files[:SHOWN_FILES]]
    more = len(files) - SHOWN_FILES
    return shown + ([f"... and {more} more"] if more > 0 else [])


def plan_trip_rows(planner: _Planner, config: RetrainConfig) -> Any:
    """Plan list, count and assemble for a trips source; the assembled rows' result, or None."""
    from tasks.plan.engine import StepPlan, plan_step, prefect_records
    from tasks.plan.task_specs import task_spec

    root, trips = config.store_root, config.trips
    planner.note(graph.LIST_TRIP_FILES, [LIST_REASON])
    try:
        found = find_source_files(config.source)
    except SourceError as error:
        # The run would fail on it: say why, and what follows runs (or fails) after it.
        planner.after_running(graph.AGGREGATE_TRIPS, [f"the trip files cannot be listed: {error}"])
        found = TripFiles(pattern=config.source, files=())
    spec = task_spec(graph.AGGREGATE_TRIPS.module, graph.AGGREGATE_TRIPS.function)
    if not found.files:
        return planner.step(graph.ASSEMBLE_TRIP_ROWS, after=(graph.AGGREGATE_TRIPS,))
    records = planner.files if planner.files is not None else prefect_records(spec)
    before = counted_before(records)
    counts, new, again = [], [], []
    for trip_file in found.files:
        args = (trip_file, trips.timezone, config.granularity, trips.stations, root)
        plan, result, _ = plan_step(spec, args, records)
        counts.append(result)
        name = Path(trip_file.path).name
        if plan.cached:
            continue
        if trip_file.path in before:
            # Counted before, so its bytes, the code or a parameter changed: say which.
            again.append((name, "; ".join(plan.reasons[:2])))
        else:
            new.append((name, ""))
    reasons = [ingest_line(len(new), len(found.files), len(again))]
    reasons += _named(new, "new") + _named(again, "again")
    running = bool(new or again)
    planner.plans.append(StepPlan(graph.AGGREGATE_TRIPS.name, not running, reasons))
    if running:
        planner.running.add(graph.AGGREGATE_TRIPS.name)
    weather = planner.step(graph.INGEST_SOURCE, trips.weather, root, "weather.csv")
    return planner.step(
        graph.ASSEMBLE_TRIP_ROWS,
        config.source,
        None if running else tuple(counts),
        weather,
        config.granularity,
        trips.holiday_calendar,
        trips.stations,
        trips.timezone,
        root,
        after=(graph.AGGREGATE_TRIPS, graph.INGEST_SOURCE),
    )
