"""Plan the retrain flow: which steps a run would reuse, which would run, and why.

It computes each step's cache key as the step's policy does (``tasks.storage.keys`` on the same
inputs, in the same wiring as ``flows/retrain.py``; the steps and the skip rule from
``tasks.retrain_graph``, each task's name, parameters and policy read from its source by
``tasks.plan.task_specs``) and follows the same rebuild chain (``tasks.storage.keys.resolve_key``)
over the same Prefect result records, so it cannot disagree with the run that follows it. When a
step will run, its key is compared with the nearest key that has a record and the differences
are named (``tasks.plan.explain``). No flow run is created and no API server is started. On the
embedded default the records are read as files (``tasks.plan.result_files``) and neither
Prefect nor TensorFlow is imported; with ``PREFECT_API_URL`` or any other setting that may move
the records, Prefect's own result store reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from schemas.config import RetrainConfig
from tasks import retrain_graph as graph
from tasks.plan.explain import nearest_reasons
from tasks.training.child import keras_backend

if TYPE_CHECKING:
    from tasks.plan.task_specs import TaskSpec
    from tasks.storage.keys import Records

# Steps without a cross-run cache: they run in every flow run.
ALWAYS_RUN = {
    graph.PUBLISH_RUN.name: "runs in every run (writes the output folder and the run's artifacts)",
    graph.PROMOTE_MODEL.name: "runs in every run (the registry decides on the challenger)",
}
NEW_DATA_REASON = "runs in every run (compares the data with the champion's)"
SKIPPED_REASON = "skipped: no rows after the champion's last date (retrain_when: new-data)"
SKIPPED_REPORT = "runs instead of training (the champion stays)"


@dataclass
class StepPlan:
    """One step's fate in the next run: cached or will run, and the reasons."""

    step: str
    cached: bool
    reasons: list[str] = field(default_factory=list)
    skipped: bool = False
    after_running: bool = False

    @property
    def status(self) -> str:
        """``cached``, ``will run`` or ``skipped``, as the plan prints it."""
        return "skipped" if self.skipped else "cached" if self.cached else "will run"


def _champion_and_new_rows(config: RetrainConfig, table: Any) -> tuple[bool, int]:
    """What ``check_new_data`` will find: is there a champion, and the rows after its last date."""
    from tasks.evaluation.drift import new_row_start
    from tasks.promotion.registry import Registry
    from tasks.storage.store import load_array

    champion = Registry(config.registry_root).champion()
    if champion is None:
        return False, int(table.rows)
    dates = load_array(table.dates, mmap=True)
    return True, int(table.rows - new_row_start(dates, champion.test_window.last_date))


def result_store(task: Any) -> Any:
    """The result store the task's records are in, as the flow's task run would build it.

    Against an API (``PREFECT_API_URL``) Prefect asks the server for its default result
    storage. On the embedded default that question would start a temporary API server (tens
    of seconds on a busy machine) only to hear that there is none, so the settings' storage
    block, else the local storage path, is used directly.
    """
    from prefect.filesystems import LocalFileSystem
    from prefect.results import ResultStore, resolve_result_storage
    from prefect.settings import PREFECT_API_URL, get_current_settings

    store = ResultStore()
    if not PREFECT_API_URL.value():
        settings = get_current_settings().results
        storage = (
            cast("Any", resolve_result_storage)(settings.default_storage_block, _sync=True)
            if settings.default_storage_block is not None
            else LocalFileSystem(basepath=str(settings.local_storage_path))
        )
        store = ResultStore(result_storage=cast("Any", storage))
    # Called from sync code, Prefect's dual sync/async method returns the store itself.
    return cast("ResultStore", store.update_for_task(task))


def prefect_records(spec: TaskSpec) -> Records:
    """The task's records through Prefect's result store (imports the task, and Prefect)."""
    import importlib

    from tasks.storage.cache_policy import PrefectRecords

    task = getattr(importlib.import_module(spec.module), spec.function)
    return PrefectRecords(result_store(task))


def plan_step(
    spec: TaskSpec, args: tuple[Any, ...], files: Records | None
) -> tuple[StepPlan, Any, Any]:
    """Plan one step from its call arguments: the plan, its cached result, its stale result."""
    from tasks.storage.keys import material_key, resolve_key

    material = spec.key_material(spec.bind(args))
    if material is None:
        why = "no cache key: the source cannot be read or fingerprinted"
        return StepPlan(spec.name, False, [why]), None, None
    records = files if files is not None else prefect_records(spec)
    resolved = resolve_key(records, material_key(material))
    if resolved.exists:
        return StepPlan(spec.name, True, list(resolved.problems)), resolved.result, None
    reasons = list(resolved.problems) or nearest_reasons(records, material)
    return StepPlan(spec.name, False, reasons), None, resolved.stale


class _Planner:
    """The plan so far, and which steps will run with outputs nobody can know yet."""

    def __init__(self, files: Records | None) -> None:
        self.files = files
        self.plans: list[StepPlan] = []
        self.running: set[str] = set()  # steps that will run with outputs unknown until then
        self.rebuilding: set[str] = set()  # steps that will only rebuild the same outputs again

    def note(self, step: graph.Step, reasons: list[str], **flags: bool) -> None:
        """Add a step that has no key to look up (it runs in every run, or is skipped)."""
        self.plans.append(StepPlan(step.name, False, reasons, **flags))

    def after_running(self, step: graph.Step, reasons: list[str]) -> None:
        """Add a step whose inputs are outputs of a step that will run: it will run too."""
        self.note(step, reasons, after_running=True)
        self.running.add(step.name)

    def step(self, step: graph.Step, *args: Any, after: tuple[graph.Step, ...] = ()) -> Any:
        """Plan one call of ``step``; return its cached (or rebuilt) result, None if unknown."""
        from tasks.plan.task_specs import task_spec

        unknown = [upstream.name for upstream in after if upstream.name in self.running]
        if unknown:
            others = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            self.after_running(step, [f"upstream step {unknown[0]} will run{others}"])
            return None
        plan, result, stale = plan_step(task_spec(step.module, step.function), args, self.files)
        rebuilt = [upstream.name for upstream in after if upstream.name in self.rebuilding]
        if plan.cached and rebuilt:
            plan.reasons.append(f"(once {', '.join(rebuilt)} rebuilds the same artifacts)")
        self.plans.append(plan)
        if plan.cached:
            return result
        if stale is not None and step.deterministic:
            # It only rebuilds missing artifacts: the steps after it find their keys again.
            self.rebuilding.add(step.name)
            return stale
        self.running.add(step.name)
        return None


def _plan_prepare(planner: _Planner, config: RetrainConfig) -> tuple[Any, Any, Any]:
    """The prepare_data subflow: ingest, validate, split, normalise; (table, split, data).

    A trips source is ingested by the trip steps (``tasks.plan.trip_plan``).
    """
    from schemas.trips_config import is_trips_source

    root = config.store_root
    if is_trips_source(config.source):
        from tasks.plan.trip_plan import plan_trip_rows

        raw, ingest = plan_trip_rows(planner, config), graph.ASSEMBLE_TRIP_ROWS
    else:
        raw = planner.step(graph.INGEST_SOURCE, config.source, root, f"{config.granularity}.csv")
        ingest = graph.INGEST_SOURCE
    table = planner.step(
        graph.VALIDATE_RECORDS,
        raw,
        config.split.test_days,
        root,
        config.granularity,
        after=(ingest,),
    )
    split = planner.step(graph.SPLIT_BY_DATE, table, config.split, after=(graph.VALIDATE_RECORDS,))
    data = planner.step(
        graph.NORMALISE_FEATURES,
        table,
        split,
        root,
        config.features,
        after=(graph.VALIDATE_RECORDS, graph.SPLIT_BY_DATE),
    )
    return table, split, data


def _skips_training(config: RetrainConfig, table: Any) -> bool:
    """The flow's skip rule, asked of the registry only when ``retrain_when`` may skip."""
    if table is None or not graph.may_skip_training(config.retrain_when):
        return False
    return graph.skips_training(config.retrain_when, *_champion_and_new_rows(config, table))


def _plan_skipped(planner: _Planner, config: RetrainConfig) -> None:
    """No new data: the training steps this config runs are skipped, the report runs instead."""
    training = config.training
    grouped = graph.uses_member_group(training.backend, training.ensemble_size)
    left_out = {graph.TRAIN_MODEL if grouped else graph.TRAIN_MEMBER_GROUP}
    if not training.refit:
        left_out.add(graph.REFIT_DATA)
    for step in graph.SKIPPABLE_STEPS:
        if step not in left_out:
            planner.note(step, [SKIPPED_REASON], skipped=True)
    planner.note(graph.REPORT_NO_NEW_DATA, [SKIPPED_REPORT])


# The steps that train (train_members calls one per group of members): what waits on them.
TRAINING_STEPS = (graph.TRAIN_MODEL, graph.TRAIN_MEMBER_GROUP)


def _plan_group(
    planner: _Planner,
    config: RetrainConfig,
    data: Any,
    members: list[Any],
    after: tuple[graph.Step, ...],
) -> list[Any]:
    """One training call of the flow's: ``train_model`` for one member, else the group's."""
    root = config.store_root
    if len(members) == 1:
        return [planner.step(graph.TRAIN_MODEL, data, config.model, members[0], root, after=after)]
    step = graph.TRAIN_MEMBER_GROUP
    runs = planner.step(step, data, config.model, members, root, after=after)
    return [None] * len(members) if runs is None else list(runs)


def _plan_refits(
    planner: _Planner, config: RetrainConfig, data: Any, trainings: list[Any], bests: list[Any]
) -> list[Any]:
    """refit_data, then each group trained again for its chosen epochs (None where unknown)."""
    from tasks.training.members import member_groups, refit_training

    extended = planner.step(
        graph.REFIT_DATA, data, config.store_root, after=(graph.NORMALISE_FEATURES,)
    )
    refits: list[Any] = [None] * len(trainings)
    # A refit differs from its member only in its epochs, so the groups are the members'.
    for group in member_groups(trainings):
        if extended is None or any(bests[i] is None for i in group):
            upstream = f"{graph.SELECT_BEST_EPOCH.name} or {graph.REFIT_DATA.name}"
            step = graph.TRAIN_MODEL if len(group) == 1 else graph.TRAIN_MEMBER_GROUP
            planner.after_running(step, [f"upstream step {upstream} will run"])
            continue
        members = [refit_training(trainings[i], bests[i]) for i in group]
        planned = _plan_group(planner, config, extended, members, ())
        for index, run in zip(group, planned, strict=True):
            refits[index] = run
    return refits


def _plan_members(planner: _Planner, config: RetrainConfig, data: Any) -> list[Any] | None:
    """The members (one for a single model): the wiring of ``train_members``; None if unknown."""
    from tasks.storage.descriptors import Member
    from tasks.training.members import member_groups, member_trainings

    trainings = member_trainings(config.training)
    runs: list[Any] = [None] * len(trainings)
    for group in member_groups(trainings):
        members = [trainings[i] for i in group]
        planned = _plan_group(planner, config, data, members, (graph.NORMALISE_FEATURES,))
        for index, run in zip(group, planned, strict=True):
            runs[index] = run
    bests = [
        planner.step(graph.SELECT_BEST_EPOCH, run, after=TRAINING_STEPS if run is None else ())
        for run in runs
    ]
    refits: list[Any] = [None] * len(runs)
    if config.training.refit:
        refits = _plan_refits(planner, config, data, trainings, bests)
    known = all(item is not None for item in (*runs, *bests)) and (
        not config.training.refit or all(item is not None for item in refits)
    )
    if not known:
        return None
    return [
        Member(seed=training.seed, run=run, best=best, refit=refit)
        for training, run, best, refit in zip(trainings, runs, bests, refits, strict=True)
    ]


def _plan_model(
    planner: _Planner,
    config: RetrainConfig,
    members: list[Any] | None,
    prepared: tuple[Any, Any, Any],
) -> None:
    """assemble_forecaster averages the members; evaluate_model scores the model."""
    table, split, data = prepared
    model = planner.step(
        graph.ASSEMBLE_FORECASTER,
        members,
        config.model,
        config.training,
        config.store_root,
        after=() if members is not None else TRAINING_STEPS,
    )
    planner.step(
        graph.EVALUATE_MODEL,
        None if model is None else model.best,
        data,
        table,
        split,
        config.store_root,
        None if model is None else model.model,
        keras_backend(config.model, config.training),
        after=(
            graph.ASSEMBLE_FORECASTER,
            graph.NORMALISE_FEATURES,
            graph.VALIDATE_RECORDS,
            graph.SPLIT_BY_DATE,
        ),
    )


def plan_retrain(config: RetrainConfig, files: Records | None = None) -> list[StepPlan]:
    """Plan every step of the retrain flow for ``config`` (the wiring of ``flows/retrain.py``).

    ``files``: the records read without Prefect (``tasks.plan.result_files``); None asks Prefect.
    """
    planner = _Planner(files)
    prepared = _plan_prepare(planner, config)
    table, _, data = prepared
    planner.note(graph.CHECK_NEW_DATA, [NEW_DATA_REASON])
    if _skips_training(config, table):
        _plan_skipped(planner, config)
        return planner.plans
    members = _plan_members(planner, config, data)
    _plan_model(planner, config, members, prepared)
    for step in (graph.PUBLISH_RUN, graph.PROMOTE_MODEL):
        planner.note(step, [ALWAYS_RUN[step.name]])
    return planner.plans


def plan_steps(config: RetrainConfig) -> list[StepPlan]:
    """Plan from the record files when the environment allows, else through Prefect."""
    from tasks.plan.result_files import UnknownRecordFormatError, local_result_files

    files = local_result_files()
    if files is not None:
        try:
            return plan_retrain(config, files)
        except UnknownRecordFormatError:
            pass  # a record written some other way: Prefect reads it as the run would
    return plan_retrain(config, None)
