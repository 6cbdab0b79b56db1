"""Plan the trip steps of prepare_data: which trip files are new, and the rows they feed.

The files are listed and hashed as ``list_trip_files`` does (no byte of a trip is read beyond
its digest); each file's ``aggregate_trips`` key is looked up as the task's policy builds it.
The plan says it in one line, ``ingest: 1 new file of 16``, and names the new files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.errors import SourceError
from tasks import retrain_graph as graph
from tasks.prepare.trip_descriptors import TripFiles, find_source_files

if TYPE_CHECKING:
    from schemas.config import RetrainConfig
    from tasks.plan.engine import _Planner

LIST_REASON = "runs in every run (lists the folder, takes each file's digest)"
SHOWN_FILES = 5


def ingest_line(new: int, total: int) -> str:
    """The plan's line about the trip files: how many are new (to be counted) of all."""
    return f"ingest: {new} new file{'' if new == 1 else 's'} of {total}"


def plan_trip_rows(planner: _Planner, config: RetrainConfig) -> Any:
    """Plan list, count and assemble for a trips source; the assembled rows' result, or None."""
    from tasks.plan.engine import StepPlan, plan_step
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
    counts, new = [], []
    for trip_file in found.files:
        args = (trip_file, trips.timezone, config.granularity, trips.stations, root)
        plan, result, _ = plan_step(spec, args, planner.files)
        counts.append(result)
        if not plan.cached:
            new.append(Path(trip_file.path).name)
    if not found.files:
        return planner.step(graph.ASSEMBLE_TRIP_ROWS, after=(graph.AGGREGATE_TRIPS,))
    reasons = [ingest_line(len(new), len(found.files))]
    reasons += [f"new: {name}" for name in new[:SHOWN_FILES]]
    if len(new) > SHOWN_FILES:
        reasons.append(f"... and {len(new) - SHOWN_FILES} more")
    planner.plans.append(StepPlan(graph.AGGREGATE_TRIPS.name, not new, reasons))
    if new:
        planner.running.add(graph.AGGREGATE_TRIPS.name)
    weather = planner.step(graph.INGEST_SOURCE, trips.weather, root, "weather.csv")
    return planner.step(
        graph.ASSEMBLE_TRIP_ROWS,
        config.source,
        None if new else tuple(counts),
        weather,
        config.granularity,
        trips.holiday_calendar,
        trips.stations,
        trips.timezone,
        root,
        after=(graph.AGGREGATE_TRIPS, graph.INGEST_SOURCE),
    )
