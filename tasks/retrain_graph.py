"""The retrain graph, stated once: its steps in run order, each a task's module and function, and
the rule that skips training when no new data came.

``flows/retrain.py`` (and its ``prepare_data`` subflow) runs these steps; ``tasks.plan`` plans
them from this list without importing them (so without Prefect). tests/tasks/test_retrain_graph.py
checks that each step is the task the flows call. This module imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One task of the retrain flow, as the flow calls it and the plan reads it."""

    name: str  # the task's name (``@task(name=...)``), as its task runs are named
    module: str  # the module that defines the task
    function: str  # the task's function in that module
    flow: str = "retrain"  # the flow that calls it: ``retrain`` or its ``prepare_data`` subflow
    cached: bool = False  # a cross-run cache key; without one the step runs in every run
    deterministic: bool = False  # the same bytes again from the same inputs (training may not)
    skippable: bool = False  # skipped (training and what uses its model) when ``skips_training``


CHECK_PATHS = Step("check_paths", "tasks.preflight", "check_paths")
# A trips source only (a folder or pattern of trip files; flows/trip_rows.py): the files are
# listed in every run, each counted (cached on its digest), and their counts joined into rows
# with the weather, which ingest_source copies into the store as it copies a day.csv source.
LIST_TRIP_FILES = Step(
    "list_trip_files", "tasks.prepare.trip_tasks", "list_trip_files", flow="prepare_data"
)
AGGREGATE_TRIPS = Step(
    "aggregate_trips",
    "tasks.prepare.trip_tasks",
    "aggregate_trips",
    flow="prepare_data",
    cached=True,
    deterministic=True,
)
INGEST_SOURCE = Step(
    "ingest_source",
    "tasks.prepare.ingest",
    "ingest_source",
    flow="prepare_data",
    cached=True,
    deterministic=True,
)
VALIDATE_RECORDS = Step(
    "validate_records",
    "tasks.prepare.validate",
    "validate_records",
    flow="prepare_data",
    cached=True,
    deterministic=True,
)
SPLIT_BY_DATE = Step(
    "split_by_date",
    "tasks.prepare.split",
    "split_by_date",
    flow="prepare_data",
    cached=True,
    deterministic=True,
)
NORMALISE_FEATURES = Step(
    "normalise_features",
    "tasks.prepare.normalise",
    "normalise_features",
    flow="prepare_data",
    cached=True,
    deterministic=True,
)
ASSEMBLE_TRIP_ROWS = Step(
    "assemble_trip_rows",
    "tasks.prepare.trip_tasks",
    "assemble_trip_rows",
    flow="prepare_data",
    cached=True,
    deterministic=True,
)
CHECK_NEW_DATA = Step("check_new_data", "tasks.promotion.new_data", "check_new_data")
# Per member (tasks.training.ensemble.train_members): train_model, select_best_epoch, and with
# refit, refit_data and train_model again; then assemble_forecaster averages the members. On
# JAX the members train as one group instead (train_member_group, one child for all of them),
# and so do their refits (``uses_member_group``).
TRAIN_MODEL = Step("train_model", "tasks.training.task", "train_model", cached=True, skippable=True)
TRAIN_MEMBER_GROUP = Step(
    "train_member_group",
    "tasks.training.group_task",
    "train_member_group",
    cached=True,
    skippable=True,
)
SELECT_BEST_EPOCH = Step(
    "select_best_epoch",
    "tasks.training.best_epoch",
    "select_best_epoch",
    cached=True,
    deterministic=True,
    skippable=True,
)
REFIT_DATA = Step(
    "refit_data",
    "tasks.training.ensemble",
    "refit_data",
    cached=True,
    deterministic=True,
    skippable=True,
)
ASSEMBLE_FORECASTER = Step(
    "assemble_forecaster",
    "tasks.training.ensemble",
    "assemble_forecaster",
    cached=True,
    skippable=True,
)
EVALUATE_MODEL = Step(
    "evaluate_model",
    "tasks.evaluation.evaluate",
    "evaluate_model",
    cached=True,
    deterministic=True,
    skippable=True,
)
PUBLISH_RUN = Step("publish_run", "tasks.evaluation.publish", "publish_run", skippable=True)
PROMOTE_MODEL = Step("promote_model", "tasks.promotion.task", "promote_model", skippable=True)
# Runs instead of the training steps when ``skips_training``.
REPORT_NO_NEW_DATA = Step("report_no_new_data", "tasks.promotion.new_data", "report_no_new_data")

# A full run, in order (check_paths first; the prepare_data steps in their subflow). A trips
# source runs the three trip steps (ingest_source then copies its weather); any other source
# runs none of them.
TRIP_STEPS = (LIST_TRIP_FILES, AGGREGATE_TRIPS, ASSEMBLE_TRIP_ROWS)
RETRAIN_STEPS = (
    CHECK_PATHS,
    LIST_TRIP_FILES,
    AGGREGATE_TRIPS,
    INGEST_SOURCE,
    ASSEMBLE_TRIP_ROWS,
    VALIDATE_RECORDS,
    SPLIT_BY_DATE,
    NORMALISE_FEATURES,
    CHECK_NEW_DATA,
    TRAIN_MODEL,
    TRAIN_MEMBER_GROUP,
    SELECT_BEST_EPOCH,
    REFIT_DATA,
    ASSEMBLE_FORECASTER,
    EVALUATE_MODEL,
    PUBLISH_RUN,
    PROMOTE_MODEL,
)
# Every task the retrain flow may run: a full run's, and the report of a skipped one.
ALL_STEPS = (*RETRAIN_STEPS, REPORT_NO_NEW_DATA)
# The steps that ``skips_training`` leaves out (report_no_new_data runs instead).
SKIPPABLE_STEPS = tuple(step for step in RETRAIN_STEPS if step.skippable)


def uses_member_group(backend: str, members: int) -> bool:
    """Whether a run's members train as one group (``train_member_group``), not one by one.

    On JAX an ensemble's members, and then their refits, share one child and one vectorised
    program (``tasks.training.members.member_groups``); one member, or TensorFlow, trains
    with ``train_model``, a child per training.
    """
    return backend == "jax" and members > 1


def may_skip_training(retrain_when: str) -> bool:
    """Whether this ``retrain_when`` lets a run skip training at all (asks for the champion)."""
    return retrain_when == "new-data"


def skips_training(retrain_when: str, has_champion: bool, new_rows: int) -> bool:
    """The skip rule: with ``retrain_when: new-data``, a champion and no rows after its data."""
    return may_skip_training(retrain_when) and has_champion and not new_rows
