"""``bikeflow plan``: which steps of the retrain flow a run would reuse, which would run, and why.

It computes each step's cache key as the step's policy does (``tasks.storage.keys`` on the same
inputs, in the same wiring as ``flows/retrain.py``; each task's name, parameters and policy read
from its source by ``tasks.plan.task_specs``) and follows the same rebuild chain
(``tasks.storage.keys.resolve_key``) over the same Prefect result records, so it cannot disagree
with the run that follows it. When a step will run, its key is compared with the nearest key
that has a record (the key parts are kept in ``.keys/`` beside the records) and the differences
are named: the source's digest, a parameter, a module's file. No flow run is created and no API
server is started. On the embedded default the records are read as files
(``tasks.plan.result_files``) and neither Prefect nor TensorFlow is imported; with
``PREFECT_API_URL`` or any other setting that may move the records, Prefect's own result
store reads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from schemas.config import RetrainConfig

if TYPE_CHECKING:
    from tasks.plan.task_specs import TaskSpec
    from tasks.storage.keys import Records

# Steps without a cross-run cache: they run in every flow run.
ALWAYS_RUN = {
    "publish_run": "runs in every run (writes the output folder and the run's artifacts)",
    "promote_model": "runs in every run (the registry decides on the challenger)",
}
MAX_REASONS = 6
UPSTREAM_NOTE = (
    "(a step after one that will run is Cached after all if that step's new output equals its last)"
)
NEW_DATA_REASON = "runs in every run (compares the data with the champion's)"
SKIPPED_REASON = "skipped: no rows after the champion's last date (retrain_when: new-data)"
SKIPPED_REPORT = "runs instead of training (the champion stays)"
TRAINING_STEPS = (
    "train_model",
    "select_best_epoch",
    "assemble_forecaster",
    "evaluate_model",
)


def _has_new_rows(config: RetrainConfig, table: Any) -> bool:
    """What ``check_new_data`` will find: rows after the champion's last date (or no champion)."""
    from tasks.evaluation.drift import new_row_start
    from tasks.promotion.registry import Registry
    from tasks.storage.store import load_array

    champion = Registry(config.registry_root).champion()
    if champion is None:
        return True
    dates = load_array(table.dates, mmap=True)
    return new_row_start(dates, champion.test_window.last_date) < table.rows


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


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            if key == "__model__":
                continue
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def _short(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12]
    return json.dumps(value) if isinstance(value, str) else str(value)


def _is_parameter(inputs: dict[str, Any], name: str) -> bool:
    """A plain value or a config model, not an upstream step's output (a descriptor)."""
    value = inputs.get(name)
    if isinstance(value, dict):
        return str(value.get("__model__", "")).endswith("Config")
    return True


def explain(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    """Name, in words a user can act on, what differs between two keys' material."""
    from tasks.storage.code_digests import module_path

    before, after = _flatten(old), _flatten(new)
    reasons: list[str] = []
    changed_inputs: list[str] = []
    for path in sorted(set(before) | set(after)):
        if before.get(path, None) == after.get(path, None) and (path in before) == (path in after):
            continue
        was, now = before.get(path, "(none)"), after.get(path, "(none)")
        if path == "format":
            reasons.append(f"the cache format changed ({was} -> {now})")
        elif path.startswith("code."):
            module = path[len("code.") :]
            try:
                name = module_path(module)
            except ValueError:
                name = module
            if path not in before:
                reasons.append(f"code: {name} is newly imported")
            elif path not in after:
                reasons.append(f"code: {name} is no longer imported")
            else:
                reasons.append(f"code changed: {name}")
        elif path == "source" or path.startswith("source["):
            reasons.append(f"the source's digest changed ({_short(was)} -> {_short(now)})")
        elif path == "store":
            reasons.append(f"store_root changed ({was} -> {now})")
        elif path.startswith("inputs."):
            name = path[len("inputs.") :]
            if _is_parameter(new.get("inputs", {}), name.split(".")[0].split("[")[0]):
                reasons.append(f"a parameter changed: {name} {_short(was)} -> {_short(now)}")
            elif name.endswith(".sha256"):
                # An upstream step's output (a descriptor): its digest says it all.
                changed_inputs.append(name)
        else:
            reasons.append(f"{path} changed ({_short(was)} -> {_short(now)})")
    digests = [name for name in changed_inputs if name.endswith("sha256")]
    if digests:
        shown = ", ".join(digests[:3]) + (
            f" and {len(digests) - 3} more" if len(digests) > 3 else ""
        )
        reasons.append(f"an input artifact differs from the cached run's: {shown}")
    return reasons


def _index_entries(records: Records, task_name: str) -> list[dict[str, Any]]:
    from tasks.storage.keys import KEY_INDEX

    if records.folder is None or not (records.folder / KEY_INDEX / task_name).is_dir():
        return []
    entries = []
    for path in (records.folder / KEY_INDEX / task_name).glob("*.json"):
        try:
            entries.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return entries


def nearest_reasons(records: Records, material: dict[str, Any]) -> list[str]:
    """Why a key has no record: its differences from the nearest key that has one."""
    task_name = str(material["task"])
    best: tuple[int, list[str]] | None = None
    for entry in _index_entries(records, task_name):
        if not records.exists(entry["key"]):
            continue
        reasons = explain(material, entry["material"])
        distance = len(_flatten(material).items() ^ _flatten(entry["material"]).items())
        if best is None or distance < best[0]:
            best = (distance, reasons)
    if best is None:
        return ["no cached run of this step yet"]
    return best[1] or ["no record under this key (the nearest cached run has the same key parts)"]


# Steps that give the same bytes again from the same inputs: when one only rebuilds missing
# artifacts, the steps after it find their keys again. Training is left out (it may not).
DETERMINISTIC = {
    "ingest_source",
    "validate_records",
    "split_by_date",
    "normalise_features",
    "select_best_epoch",
    "refit_data",
    "evaluate_model",
}


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


def _plan_step(
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


def plan_retrain(config: RetrainConfig, files: Records | None = None) -> list[StepPlan]:
    """Plan every step of the retrain flow for ``config`` (the wiring of ``flows/retrain.py``).

    ``files``: the records read without Prefect (``tasks.plan.result_files``); None asks Prefect.
    """
    from tasks.plan.task_specs import task_spec
    from tasks.storage.descriptors import Member
    from tasks.training.members import member_trainings, refit_training

    ingest_source = task_spec("tasks.prepare.ingest", "ingest_source")
    validate_records = task_spec("tasks.prepare.validate", "validate_records")
    split_by_date = task_spec("tasks.prepare.split", "split_by_date")
    normalise_features = task_spec("tasks.prepare.normalise", "normalise_features")
    train_model = task_spec("tasks.training.task", "train_model")
    select_best_epoch = task_spec("tasks.training.best_epoch", "select_best_epoch")
    refit_data = task_spec("tasks.training.ensemble", "refit_data")
    assemble_forecaster = task_spec("tasks.training.ensemble", "assemble_forecaster")
    evaluate_model = task_spec("tasks.evaluation.evaluate", "evaluate_model")

    plans: list[StepPlan] = []
    running: set[str] = set()  # steps that will run with outputs nobody can know yet
    rebuilding: set[str] = set()  # steps that will only rebuild the same outputs again

    def step(task: TaskSpec, *args: Any, after: tuple[str, ...] = ()) -> Any:
        unknown = [name for name in after if name in running]
        if unknown:
            # Its inputs are outputs of a step that will run: unknown until that step has run.
            others = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            reasons = [f"upstream step {unknown[0]} will run{others}"]
            plans.append(StepPlan(task.name, False, reasons, after_running=True))
            running.add(task.name)
            return None
        plan, result, stale = _plan_step(task, args, files)
        rebuilt = [name for name in after if name in rebuilding]
        if plan.cached and rebuilt:
            plan.reasons.append(f"(once {', '.join(rebuilt)} rebuilds the same artifacts)")
        plans.append(plan)
        if plan.cached:
            return result
        if stale is not None and task.name in DETERMINISTIC:
            rebuilding.add(task.name)
            return stale
        running.add(task.name)
        return None

    root = config.store_root
    raw = step(ingest_source, config.source, root, f"{config.granularity}.csv")
    table = step(
        validate_records,
        raw,
        config.split.test_days,
        root,
        config.granularity,
        after=("ingest_source",),
    )
    split = step(split_by_date, table, config.split, after=("validate_records",))
    data = step(
        normalise_features,
        table,
        split,
        root,
        config.features,
        after=("validate_records", "split_by_date"),
    )
    plans.append(StepPlan("check_new_data", False, [NEW_DATA_REASON]))
    if table is not None and config.retrain_when == "new-data" and not _has_new_rows(config, table):
        for name in (*TRAINING_STEPS, "publish_run", "promote_model"):
            plans.append(StepPlan(name, False, [SKIPPED_REASON], skipped=True))
        plans.append(StepPlan("report_no_new_data", False, [SKIPPED_REPORT]))
        return plans
    # The members (one for a single model), their chosen epochs, the refits, the average:
    # the wiring of tasks.training.ensemble.train_members and assemble_forecaster.
    trainings = member_trainings(config.training)
    runs = [
        step(train_model, data, config.model, t, root, after=("normalise_features",))
        for t in trainings
    ]
    bests = [
        step(select_best_epoch, run, after=("train_model",) if run is None else ()) for run in runs
    ]
    refits: list[Any] = [None] * len(runs)
    if config.training.refit:
        extended = step(refit_data, data, root, after=("normalise_features",))
        refits = []
        for t, best in zip(trainings, bests, strict=True):
            if best is None or extended is None:
                reasons = ["upstream step select_best_epoch or refit_data will run"]
                plans.append(StepPlan(train_model.name, False, reasons, after_running=True))
                running.add(train_model.name)
                refits.append(None)
                continue
            refits.append(step(train_model, extended, config.model, refit_training(t, best), root))
    known = all(item is not None for item in (*runs, *bests)) and (
        not config.training.refit or all(item is not None for item in refits)
    )
    members = (
        [
            Member(seed=t.seed, run=run, best=best, refit=refit)
            for t, run, best, refit in zip(trainings, runs, bests, refits, strict=True)
        ]
        if known
        else None
    )
    model = step(
        assemble_forecaster,
        members,
        config.model,
        config.training,
        root,
        after=() if known else ("train_model",),
    )
    step(
        evaluate_model,
        None if model is None else model.best,
        data,
        table,
        split,
        root,
        None if model is None else model.model,
        after=(
            "assemble_forecaster",
            "normalise_features",
            "validate_records",
            "split_by_date",
        ),
    )
    plans += [StepPlan(name, False, [why]) for name, why in ALWAYS_RUN.items()]
    return plans


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


def add_plan_parser(commands: Any) -> None:
    """The ``bikeflow plan`` subcommand: the same flags and config file as ``run``."""
    from flows.cli import add_config_flags

    plan = commands.add_parser(
        "plan",
        help="show which retrain steps a run would reuse (cached) or run, and why",
        description="Plan the retrain flow without running it. Takes the same flags and "
        "--config file as `bikeflow run`.",
    )
    plan.add_argument("--config", metavar="FILE", help="YAML or JSON file of config fields")
    plan.set_defaults(plan_destinations=add_config_flags(plan, RetrainConfig))


def run_plan(args: argparse.Namespace) -> int:
    """Plan from parsed arguments and print it; returns the process exit code."""
    from flows.cli import CONFIG_ERRORS, build_config, describe_config_error

    try:
        config = build_config(RetrainConfig, args.plan_destinations, args)
    except CONFIG_ERRORS as error:
        print(f"bikeflow: invalid configuration: {describe_config_error(error)}", file=sys.stderr)
        return 1
    if not Path(config.store_root).expanduser().exists():
        print(f"bikeflow plan: no store at {config.store_root} yet; every step will run")
    print_plan(plan_steps(config))
    return 0


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
