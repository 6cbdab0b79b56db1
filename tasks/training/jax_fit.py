"""The JAX trainer: zoo models trained by one compiled program per epoch, members vectorised.

``fit_members`` trains jobs that share a model config, arrays and batch size (their seeds
differ, their epochs may) as one program ``jax.vmap``-ed over the members; ``fit_model_jax``
is the one-member case. Each epoch's steps run in one ``jax.lax.scan`` (``jax_steps``), then
every member gets its validation loss, a small resume state (``resume_state``: its arrays, a
``.npz``) and its journal entry, so a training killed at any moment resumes from its last
epoch. With ``training.keep_checkpoints: chosen`` the ``.keras`` files (which the TensorFlow
backend loads too) are written once, at the end, for the epochs retention keeps (the chosen
one and the last) from their states; with ``all``, one every epoch as before. Needs Keras on
the JAX backend (the training child sets ``KERAS_BACKEND``); no Prefect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.models.zoo import build_model, input_blocks, make_optimizer
from tasks.storage.descriptors import DeviceInfo, EpochRecord, TrainingRun
from tasks.storage.library_versions import installed_version
from tasks.storage.store import FileRef, verify
from tasks.training.jax_feed import Feed
from tasks.training.jax_members import (
    Done,
    Member,
    delete_unreferenced,
    keep_state,
    member_arrays,
    write_back,
    write_retained,
)
from tasks.training.jax_steps import (
    State,
    epoch_seed_states,
    keep_tensorflow_unloaded,
    make_epoch_program,
    make_validation_program,
    seed_keras,
    seed_state_positions,
)
from tasks.training.keras_fit import checkpoint_saver
from tasks.training.resume_state import load_state
from tasks.training.retention import present_checkpoints

if TYPE_CHECKING:
    from tasks.training.job import FitJob

# The training fields that shape the compiled program: members must agree on them.
SHARED_TRAINING = ("optimizer", "learning_rate", "momentum", "decay_rate", "batch_size", "backend")


def warm_up() -> None:
    """Import and start what any JAX training needs, before its request arrives (a spare child):
    Keras on JAX, JAX's device client, and XLA's compiler (one tiny program)."""
    import jax
    import keras  # noqa: F401  (Keras on JAX, the backend the spare was started for)
    from keras.src.saving import saving_lib  # noqa: F401  (checkpoints: seconds on first use)

    keep_tensorflow_unloaded()
    jax.jit(lambda value: value + 1)(np.float32(0)).block_until_ready()


def fit_model_jax(
    job: FitJob,
    log: Callable[[str], None] = lambda message: None,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
) -> TrainingRun:
    """Train one job on JAX (no vmap), journaling every epoch; resume from its journal."""
    return fit_members([job], log, lambda member, record: on_epoch(record))[0]


def fit_members(
    jobs: Sequence[FitJob],
    log: Callable[[str], None] = lambda message: None,
    on_epoch: Callable[[int, EpochRecord], None] = lambda member, record: None,
) -> list[TrainingRun]:
    """Train jobs that share model, arrays and batch size as one program vmapped over members.

    Seeds differ; epochs may (all train to the longest, each member's records stop at its
    own). ``on_epoch(member index, record)`` follows each member's state and journal
    entry. Raises ``ValueError`` when the jobs cannot share one program.
    """
    jobs = list(jobs)
    require_shared(jobs)
    for job in jobs:
        job.require_rows()
    import jax
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"the JAX trainer needs Keras on the jax backend, but Keras runs on "
            f"{keras.backend.backend()!r}: set KERAS_BACKEND=jax before anything imports Keras "
            "(the training child does so from training.backend)"
        )
    keep_tensorflow_unloaded()
    first = jobs[0]
    rows, batch_size = len(first.x_train), first.training.batch_size
    steps_per_epoch = -(-rows // batch_size)
    start, resumed = _resume_point(jobs, log)
    members = [
        _member(job, done, steps_per_epoch, log) for job, done in zip(jobs, resumed, strict=True)
    ]
    device = _device_info(jax, keras, len(jobs))
    log(f"training {len(jobs)} member(s) on {device.device} with {device.strategy}")
    started = time.perf_counter()
    _train(members, start, log, on_epoch)
    write_retained(members, log)
    seconds = time.perf_counter() - started
    runs = []
    for member in members:
        kept, kept_epochs = present_checkpoints(member.history, member.checkpoints)
        runs.append(
            TrainingRun(
                history=tuple(member.history),
                checkpoints=kept,
                device=device,
                seconds=seconds,
                resumed_from=member.resumed,
                checkpoint_epochs=kept_epochs,
            )
        )
    return runs


def require_shared(jobs: Sequence[FitJob]) -> None:
    """Raise ``ValueError`` unless the jobs can train as one program (same model and data)."""
    if not jobs:
        raise ValueError("fit_members needs at least one job")
    first = jobs[0]
    for index, job in enumerate(jobs[1:], start=1):
        differ = [
            name
            for name in SHARED_TRAINING
            if getattr(job.training, name) != getattr(first.training, name)
        ]
        if job.model != first.model:
            differ.append("model")
        for name in ("x_train", "y_train", "x_validation", "y_validation"):
            if not _same_array(getattr(job, name), getattr(first, name)):
                differ.append(name)
        if (job.stations is None) != (first.stations is None) or (
            job.stations is not None
            and first.stations is not None
            and (
                job.stations.rows != first.stations.rows
                or not _same_array(job.stations.train, first.stations.train)
                or not _same_array(job.stations.validation, first.stations.validation)
            )
        ):
            differ.append("stations")
        if differ:
            raise ValueError(
                f"members 0 (seed {first.training.seed}) and {index} (seed {job.training.seed}) "
                f"cannot train as one program: they differ in {', '.join(differ)}"
            )


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a is b:
        return True
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    # The same file memory-mapped twice (each member's request opens its own map).
    name_a, name_b = getattr(a, "filename", None), getattr(b, "filename", None)
    if (
        name_a is not None
        and name_a == name_b
        and getattr(a, "offset", 0) == getattr(b, "offset", 0)
    ):
        return True
    return bool(np.array_equal(a, b))


def _resume_point(
    jobs: Sequence[FitJob], log: Callable[[str], None]
) -> tuple[int, list[list[Done]]]:
    """The epoch the members still training resume after (the fewest they completed), and
    each member's journaled epochs (a finished member's all of them)."""
    completed = [
        _loadable(job.journal.resumable(log)[: job.training.epochs])
        if job.journal is not None
        else []
        for job in jobs
    ]
    going = [
        len(done)
        for done, job in zip(completed, jobs, strict=True)
        if len(done) < job.training.epochs
    ]
    start = min(going) if going else max(len(done) for done in completed)
    # The members move in step; a kill between two members' journal writes leaves one epoch
    # more for some. They resume from the common epoch, whose state (or checkpoint) all must
    # still have; a member that finished its (fewer) epochs resumes from its last.
    resumed = [
        done if len(done) >= job.training.epochs else done[:start]
        for done, job in zip(completed, jobs, strict=True)
    ]
    if any(done and done[-1][1] is None and done[-1][2] is None for done in resumed):
        log(f"not every member kept epoch {start}'s checkpoint: training all members afresh")
        return 0, [[] for _ in jobs]
    return start, resumed


def _loadable(done: list[Done]) -> list[Done]:
    """The epochs up to the last one a resume can load (its checkpoint or its state)."""
    while done and done[-1][1] is None and done[-1][2] is None:
        done = done[:-1]
    return done


def _member(
    job: FitJob, done: list[Done], steps_per_epoch: int, log: Callable[[str], None]
) -> Member:
    """A member's model: its last journaled state's (or checkpoint's), or a new one."""
    import keras

    _, checkpoint, state = done[-1] if done else (None, None, None)
    if checkpoint is not None and state is None:
        # The .keras file holds the optimizer's variables too (momentum, step count and so
        # the decayed learning rate); safe_mode refuses any code inside the file.
        model = keras.saving.load_model(verify(checkpoint), compile=True, safe_mode=True)
    else:
        # The initialisers draw their seeds when the layers are made, as keras_fit's do.
        seed_keras(job.training.seed)
        station_rows = 0 if job.stations is None else job.stations.rows
        model = build_model(job.model, job.x_train.shape[1], station_rows)
        model.compile(
            optimizer=make_optimizer(job.training, steps_per_epoch), loss="mean_squared_error"
        )
    model.optimizer.build(model.trainable_variables)
    if state is not None:
        # Every variable the program carries, as it was after that epoch: bit for bit.
        write_back(model, load_state(state), None)
    source = state or checkpoint
    if source is not None:
        # The same words as keras_fit (operators grep for them), the member's seed after.
        log(f"resuming after epoch {len(done)} from {source.path} (seed {job.training.seed})")
    return Member(
        job=job,
        model=model,
        history=[record for record, _, _ in done],
        checkpoints=[checkpoint for _, checkpoint, _ in done],
        states=[state for _, _, state in done],
        resumed=len(done),
    )


def _device_info(jax: Any, keras: Any, members: int) -> DeviceInfo:
    devices = jax.devices()
    strategy = f"jax.vmap over {members} members" if members > 1 else "jax.jit (one member)"
    return DeviceInfo(
        device=f"{devices[0].platform}:{devices[0].id} ({devices[0].device_kind})",
        strategy=strategy,
        visible_gpus=tuple(str(d) for d in devices if d.platform == "gpu"),
        tensorflow_version=installed_version("tensorflow"),
        keras_version=keras.__version__,
        backend="jax",
        jax_version=jax.__version__,
    )


def _stack(values: list[list[Any]], members: int | None) -> list[Any]:
    """One list of arrays from the members' lists: stacked on a member axis, or the one's."""
    import jax.numpy as jnp

    if members is None:
        return [jnp.asarray(value) for value in values[0]]
    return [jnp.stack([jnp.asarray(v) for v in column]) for column in zip(*values, strict=True)]


def _initial_state(members: list[Member], axis: int | None) -> State:
    models = [member.model for member in members]
    return (
        _stack([[v.value for v in m.trainable_variables] for m in models], axis),
        _stack([[v.value for v in m.non_trainable_variables] for m in models], axis),
        _stack([[v.value for v in m.optimizer.variables] for m in models], axis),
    )


def _with_epoch_seeds(
    state: State, members: list[Member], positions: list[int], epoch: int, axis: int | None
) -> State:
    """The state with each dropout layer's RNG set to the (seed, epoch) start (see jax_steps)."""
    if not positions:
        return state
    import jax.numpy as jnp

    seeds = [epoch_seed_states(m.job.training.seed, epoch, len(positions)) for m in members]
    non_trainable = list(state[1])
    for column, position in enumerate(positions):
        values = [member_seeds[column] for member_seeds in seeds]
        non_trainable[position] = jnp.asarray(values[0] if axis is None else np.stack(values))
    return state[0], non_trainable, state[2]


def _train(
    members: list[Member],
    start: int,
    log: Callable[[str], None],
    on_epoch: Callable[[int, EpochRecord], None],
) -> None:
    """Train every member from epoch ``start`` to the longest's end, recording each epoch."""
    import jax

    job, model = members[0].job, members[0].model
    axis = None if len(members) == 1 else len(members)
    blocks = input_blocks(job.model.architecture, job.x_train.shape[1])
    feed = Feed(job, [m.job.training.seed for m in members], axis)
    epoch_program = make_epoch_program(model, model.optimizer, blocks, axis, feed.in_memory)
    validation_program = make_validation_program(model, blocks, axis)
    positions = seed_state_positions(model)
    state = _initial_state(members, axis)
    saves = [checkpoint_saver(m.job.store) for m in members]
    for epoch in range(start, max(m.job.training.epochs for m in members)):
        state = _with_epoch_seeds(state, members, positions, epoch, axis)
        loss_sum = np.zeros(len(members))
        for order, mask, x, y, stations in feed.epoch(epoch):
            state, weighted = epoch_program(state, order, mask, x, y, stations)
            loss_sum += np.asarray(weighted, np.float64).reshape(-1)
        squared = np.zeros(len(members))
        for x, y, stations, mask in feed.validation():
            total = validation_program(state[0], state[1], x, y, stations, mask)
            squared += np.asarray(total, np.float64).reshape(-1)
        # Once for all members (their resume states); keep_checkpoints: all needs none.
        host = jax.device_get(state) if any(m.sparse for m in members) else state
        superseded: list[FileRef] = []
        for index, member in enumerate(members):
            if epoch >= member.job.training.epochs:
                continue
            write_back(member.model, state, index if axis else None)
            record = EpochRecord(
                epoch=epoch + 1,
                loss=float(loss_sum[index] / feed.rows),
                val_loss=float(squared[index] / feed.validation_rows),
                learning_rate=float(member.model.optimizer.learning_rate),
            )
            member.history.append(record)
            if member.sparse:
                superseded += keep_state(member, member_arrays(host, index if axis else None))
            else:
                member.checkpoints.append(saves[index](member.model))
                member.states.append(None)
            journal = member.job.journal
            if journal is not None:
                done = list(zip(member.history, member.checkpoints, strict=True))
                journal.record(done, member.states)
            on_epoch(index, record)
        # Only once every member's journal names its new epoch: a kill between two members'
        # writes leaves some a state behind, and they resume from it (needed_epochs).
        delete_unreferenced(members, superseded)
