"""Ensemble and refit: several members trained in parallel, optionally refitted, averaged.

Member ``i`` is the configured training with seed ``seed + 1000 * i`` and nothing else
changed, so member 0 of an ensemble is the very training (same ``train_model`` cache key and
journal) that a one-member run of the same config does. Each member's epoch is chosen on its
own validation curve (``select_best_epoch``). With ``refit`` the member is trained again, same
seed, on training+validation rows for that many epochs, and its last epoch is the member.

The published model is one self-contained ``.keras`` file: a functional model with the
members' inputs, each member applied to them, and ``layers.Average`` over their outputs (in
the normalised target space; the bundle's statistics undo it). A one-member run publishes the
member's own checkpoint, exactly as before ensembles existed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from prefect import task
from prefect.futures import PrefectFuture, wait

from schemas.config import ModelConfig, TrainingConfig
from tasks.models.zoo import describe_architecture
from tasks.prepare.statistics import NormalisedData
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import BestEpoch, Forecaster, Member
from tasks.storage.store import ArrayRef, ArtifactStore, load_array
from tasks.training.child import keras_backend
from tasks.training.child_process import reusing_children
from tasks.training.group_task import train_member_group
from tasks.training.keras_calls import Assembled
from tasks.training.keras_work import assemble
from tasks.training.members import member_groups, member_trainings, refit_training
from tasks.training.task import TrainingRun, train_model

CHUNK_ROWS = 1 << 18


def train_in_parallel(
    jobs: Sequence[tuple[NormalisedData, TrainingConfig]],
    model: ModelConfig,
    store_root: str,
    max_parallel: int,
) -> list[TrainingRun]:
    """Run ``train_model`` once per (data, training) job, ``max_parallel`` child processes at once.

    The sweep's mechanism: futures submitted a batch at a time, every one resolved here (a
    failed member raises). One job runs in the flow's own thread, as a one-member run always has.
    """
    return [
        run
        for runs in train_rounds([(data, [t]) for data, t in jobs], model, store_root, max_parallel)
        for run in runs
    ]


def train_rounds(
    sets: Sequence[tuple[NormalisedData, Sequence[TrainingConfig]]],
    model: ModelConfig,
    store_root: str,
    max_parallel: int,
) -> list[list[TrainingRun]]:
    """Train every set's trainings on its data; each set's runs, in the order of its trainings.

    A set's trainings train in the groups ``member_groups`` makes of them: a group of one with
    ``train_model`` (one child), a larger one (JAX) with ``train_member_group`` (one child for
    the group). The calls of every set share one queue, ``max_parallel`` children at once; a
    lone call runs in the flow's own thread, as a one-member run always has.
    """
    calls = [
        (number, group, data, [trainings[i] for i in group])
        for number, (data, trainings) in enumerate(sets)
        for group in member_groups(trainings)
    ]
    with reusing_children():
        results = _train_calls(calls, model, store_root, max_parallel)
    runs: list[list[TrainingRun | None]] = [[None] * len(trainings) for _, trainings in sets]
    for (number, group, _, _), group_runs in zip(calls, results, strict=True):
        for index, run in zip(group, group_runs, strict=True):
            runs[number][index] = run
    return [[run for run in set_runs if run is not None] for set_runs in runs]


def _train_calls(
    calls: list[tuple[int, tuple[int, ...], NormalisedData, list[TrainingConfig]]],
    model: ModelConfig,
    store_root: str,
    max_parallel: int,
) -> list[list[TrainingRun]]:
    """Each call's runs: ``max_parallel`` calls at once, a lone call in this thread."""
    results: list[list[TrainingRun]]
    if len(calls) == 1:
        _, _, data, members = calls[0]
        results = [_train_group(data, model, members, store_root)]
    else:
        results = []
        for begin in range(0, len(calls), max_parallel):
            futures: list[PrefectFuture[Any]] = [
                train_model.submit(data, model, members[0], store_root)
                if len(members) == 1
                else train_member_group.submit(data, model, members, store_root)
                for _, _, data, members in calls[begin : begin + max_parallel]
            ]
            wait(futures)
            for future in futures:
                outcome = future.result()
                results.append(outcome if isinstance(outcome, list) else [outcome])
    return results


def _train_group(
    data: NormalisedData, model: ModelConfig, members: list[TrainingConfig], store_root: str
) -> list[TrainingRun]:
    """One group's trainings in this thread: ``train_model`` alone, else ``train_member_group``."""
    if len(members) == 1:
        return [train_model(data, model, members[0], store_root)]
    return train_member_group(data, model, members, store_root)


def train_member_sets(
    datasets: Sequence[NormalisedData],
    model: ModelConfig,
    training: TrainingConfig,
    store_root: str,
    max_parallel: int,
) -> list[list[Member]]:
    """Every dataset's members (the backtest's origins, or a run's one dataset), trained together.

    All members of all datasets share one queue of ``max_parallel`` trainings, then every
    chosen epoch's refit shares another, so two cores stay busy across origins. On JAX a
    dataset's members (and then their refits) train as one group in one child.
    """
    from tasks.training.best_epoch import select_best_epoch

    trainings = member_trainings(training)
    refits: list[Sequence[TrainingRun | None]] = [[None] * len(trainings) for _ in datasets]
    # The members' children wait for the refits (on JAX): one child start, not two.
    with reusing_children():
        sets = [(data, trainings) for data in datasets]
        runs = train_rounds(sets, model, store_root, max_parallel)
        bests = [[select_best_epoch(run) for run in dataset_runs] for dataset_runs in runs]
        if training.refit:
            extended = [refit_data(data, store_root) for data in datasets]
            again = [
                (
                    extended[i],
                    [refit_training(t, b) for t, b in zip(trainings, bests[i], strict=True)],
                )
                for i in range(len(datasets))
            ]
            refits = list(train_rounds(again, model, store_root, max_parallel))
    return [
        [
            Member(seed=member.seed, run=run, best=best, refit=refit)
            for member, run, best, refit in zip(
                trainings, runs[i], bests[i], refits[i], strict=True
            )
        ]
        for i in range(len(datasets))
    ]


def train_members(
    data: NormalisedData, model: ModelConfig, training: TrainingConfig, store_root: str
) -> list[Member]:
    """Train the members in parallel, choose each one's epoch on validation, refit if asked."""
    return train_member_sets([data], model, training, store_root, training.parallel_members)[0]


def _concatenate(store: ArtifactStore, first: ArrayRef, second: ArrayRef) -> ArrayRef:
    a, b = load_array(first, mmap=True), load_array(second, mmap=True)

    def fill(out: np.ndarray) -> None:
        for source, offset in ((a, 0), (b, len(a))):
            for begin in range(0, len(source), CHUNK_ROWS):
                end = min(begin + CHUNK_ROWS, len(source))
                out[offset + begin : offset + end] = source[begin:end]

    return store.write_array((len(a) + len(b), *a.shape[1:]), str(a.dtype), fill)


@task(
    name="refit_data",
    cache_policy=ArtifactCache(libraries=("numpy",)),
    persist_result=True,
    result_serializer="json",
)
def refit_data(data: NormalisedData, store_root: str) -> NormalisedData:
    """The training arrays extended by the validation rows (the days just after them).

    Statistics stay the training rows' (the published model reads rows with them); the
    validation arrays stay too, so Keras still reports a validation loss (on seen rows now,
    never used to choose anything).
    """
    store = ArtifactStore(store_root)
    update: dict[str, Any] = {
        "x_train": _concatenate(store, data.x_train, data.x_validation),
        "y_train": _concatenate(store, data.y_train, data.y_validation),
    }
    if data.station_train is not None and data.station_validation is not None:
        update["station_train"] = _concatenate(store, data.station_train, data.station_validation)
    return data.model_copy(update=update)


def model_card(
    members: Sequence[Member],
    published: Assembled,
    model: ModelConfig,
    training: TrainingConfig,
    refit: bool,
) -> str:
    """The model card (markdown): architecture, members, epochs, refit, parameters, summary."""
    member_params = published.parameters // max(len(members), 1)
    rows = [
        f"| {i + 1} | {m.seed} | {m.best.epoch} of {len(m.run.history)} | {m.best.val_loss:.4f} "
        f"| {len(m.refit.history) if m.refit is not None else '-'} |"
        for i, m in enumerate(members)
    ]
    averaged = "averaged by a Keras `Average` layer" if len(members) > 1 else "one network"
    refit_text = (
        "yes: each member retrained on training+validation rows for its chosen epochs"
        if refit
        else "no: each member is its best-validation checkpoint"
    )
    lines = [
        "# Model card",
        "",
        f"- Architecture: `{model.architecture}` ({describe_architecture(model)}); Keras model "
        f"`{published.name}`",
        f"- Members: {len(members)} ({averaged}), seeds {', '.join(str(m.seed) for m in members)}",
        f"- Epochs: up to {training.epochs} each ({training.optimizer}, learning rate "
        f"{training.learning_rate:g} x{training.decay_rate:g}/epoch, batch {training.batch_size}); "
        "the epoch is chosen on each member's validation loss",
        f"- Refit: {refit_text}",
        f"- Parameters: {published.parameters:,}"
        + (f" ({member_params:,} per member)" if len(members) > 1 else ""),
        "",
        "| member | seed | chosen epoch | val loss | refit epochs |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "```text",
        published.summary,
        "```",
    ]
    return "\n".join(lines) + "\n"


@task(
    name="assemble_forecaster",
    cache_policy=ArtifactCache(libraries=("tensorflow", "keras", "numpy")),
    persist_result=True,
    result_serializer="json",
)
def assemble_forecaster(
    members: list[Member], model: ModelConfig, training: TrainingConfig, store_root: str
) -> Forecaster:
    """Average the members into one model (and the chosen epochs into the validation model)."""
    refit = any(m.refit is not None for m in members)
    if not all(math.isfinite(m.best.val_loss) for m in members):
        raise ValueError("a member without a finite validation loss cannot join the ensemble")
    # On JAX in the run's child, on TensorFlow here (tasks/training/keras_work.py).
    published = assemble(
        store_root,
        [m.best.model for m in members],
        [m.final for m in members],
        keras_backend(model, training),
    )
    best = BestEpoch(
        epoch=round(float(np.mean([m.best.epoch for m in members]))),
        val_loss=float(np.mean([m.best.val_loss for m in members])),
        loss=float(np.mean([m.best.loss for m in members])),
        model=published.selection,
    )
    return Forecaster(
        members=tuple(members),
        refit=refit,
        best=best,
        model=published.published,
        parameters=published.parameters,
        card=model_card(members, published, model, training, refit),
    )
