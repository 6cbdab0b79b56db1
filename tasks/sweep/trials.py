"""Trials of a sweep: expand the list/grid x seeds into configs, and train one on any worker."""

from __future__ import annotations

import copy
import itertools
import os
import socket
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from schemas.config import RetrainConfig
from schemas.config_presets import ZOO_DEFAULTS
from schemas.flow_configs import SweepConfig
from schemas.paths import OUTPUT_NOT_WRITTEN
from tasks.prepare.normalise import NormalisedData
from tasks.training.task import TrainingRun, train_model


class Trial(BaseModel):
    """One config of the sweep with one seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    seed: int
    config: RetrainConfig


class TrialRun(BaseModel):
    """One trial's training and the worker that ran it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: TrainingRun
    worker: str


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(override: dict[str, Any], prefix: str = "") -> list[str]:
    parts: list[str] = []
    for key, value in override.items():
        if isinstance(value, dict):
            parts += _describe(value, f"{prefix}{key}.")
        else:
            parts.append(f"{key}={value}")
    return parts


def default_zoo_names(granularity: str) -> list[str]:
    """Every zoo entry, less those that need daily rows (previous-day weather) on hourly data."""
    return [
        name
        for name in ZOO_DEFAULTS
        if granularity != "hour"
        or not ZOO_DEFAULTS[name].get("features", {}).get("previous_weather")
    ]


def expand_trials(sweep: SweepConfig) -> list[Trial]:
    """Cross the trials with the grid and the seeds; validate each into a full config."""
    overrides: list[dict[str, Any]] = [dict(t) for t in sweep.trials] or [
        {"name": name, "model": {"architecture": name}}
        for name in default_zoo_names(sweep.base.granularity)
    ]
    names = sorted(sweep.grid)
    combos = list(itertools.product(*(sweep.grid[name] for name in names))) or [()]
    # A zoo entry's settings fill the fields still at their generic defaults (see config).
    base = sweep.base.model_dump(mode="json")
    trials: list[Trial] = []
    labels: set[str] = set()
    for override in overrides:
        override = dict(override)
        name = override.pop("name", None)
        for combo in combos:
            # A deep copy: the grid writes into nested sections that would otherwise be shared.
            data = _merge(copy.deepcopy(base), override)
            grid_part: dict[str, Any] = {}
            for dotted, value in zip(names, combo, strict=True):
                _set_dotted(data, dotted, value)
                _set_dotted(grid_part, dotted, value)
            label = " ".join([str(name)] if name else _describe(override) or ["base"])
            if grid_part:
                label = f"{label} {' '.join(_describe(grid_part))}"
            if label in labels:
                raise ValueError(f"two trials share the label {label!r}; give them names")
            labels.add(label)
            for seed in sweep.seeds:
                # A trial's output_dir is never written, so only its roots are checked.
                config = RetrainConfig.model_validate(data, context=OUTPUT_NOT_WRITTEN)
                training = config.training.model_copy(update={"seed": seed})
                trials.append(
                    Trial(
                        label=label,
                        seed=seed,
                        config=config.model_copy(update={"training": training}),
                    )
                )
    return trials


def trials_for_stations(trials: list[Trial], defaulted: bool) -> list[Trial]:
    """The trials that can train on a table with a station column.

    The default list (every zoo model) leaves out tf-core, which has no station input, so it
    does not fail the whole sweep; trials the user listed are kept, and tf-core among them
    fails with its own clear error.
    """
    if not defaulted:
        return trials
    kept = [trial for trial in trials if trial.config.model.architecture != "tf-core"]
    return kept or trials


def worker_name() -> str:
    """The Dask worker's address when this runs on one, else host and process id."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        # Not inside a Dask worker (default thread pool, or a Ray worker process).
        return f"{socket.gethostname()}/pid {os.getpid()}"


# Never cached itself: the nested train_model is, so a rerun still finds the training; this
# step only records where it ran. It is the unit a Dask or Ray runner ships to a worker.
@task(name="train_trial", cache_policy=NO_CACHE, persist_result=False, result_serializer="json")
def train_trial(trial: Trial, data: NormalisedData) -> TrialRun:
    """Train one trial (the cached ``train_model`` step) and record the worker it ran on."""
    config = trial.config
    run = train_model(data, config.model, config.training, config.store_root)
    return TrialRun(run=run, worker=worker_name())
