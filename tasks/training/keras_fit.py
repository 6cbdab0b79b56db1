"""The trainer: fit a zoo model on arrays, a checkpoint every epoch, resumable from a journal.

Pure training logic with no Prefect in it: the training child process (``tasks.training.child``)
imports this module, and importing Prefect there would only add seconds to every cold run.
``tasks.training.task`` wraps it in the Prefect task that runs the child.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.models.zoo import build_model, input_blocks, make_optimizer, pack_inputs
from tasks.storage.descriptors import DeviceInfo, EpochRecord, TrainingRun
from tasks.storage.store import ArtifactStore, FileRef, verify
from tasks.training.retention import present_checkpoints

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from tasks.training.job import FitJob

VALIDATION_BATCH_SIZE = 4096
STEPS_PER_EXECUTION = 256
JIT_COMPILE = False
# Arrays up to this size are read into memory and sliced by tf.data (fastest); larger ones
# stay memory-mapped and are gathered a shuffled block at a time.
IN_MEMORY_BYTES = 256 << 20
BLOCK_ROWS = 1 << 16


def import_tensorflow() -> tf:
    """Import TensorFlow quietly (its C++ start-up chatter is not our users' concern)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def choose_strategy(tf: Any) -> tuple[Any, DeviceInfo]:
    """Pick a distribution strategy for the visible devices: all GPUs, one GPU, or the CPU."""
    import keras

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        # Without memory growth TensorFlow grabs the whole card at start-up.
        # Already initialised in this process: the setting is fixed by then.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        device, name = f"{len(gpus)} GPUs", "MirroredStrategy"
    else:
        # One device: TensorFlow's default strategy places ops on the GPU when there is one.
        # OneDeviceStrategy would do the same but wraps every step in distribution code that
        # doubled the time per step at batch 4 (see BENCHMARKS.md).
        strategy = tf.distribute.get_strategy()
        device = "/gpu:0" if gpus else "/cpu:0"
        name = "default (one device)"
    info = DeviceInfo(
        device=device,
        strategy=name,
        visible_gpus=tuple(gpu.name for gpu in gpus),
        tensorflow_version=tf.__version__,
        keras_version=keras.__version__,
    )
    return strategy, info


def epoch_order(rows: int, seed: int, epoch: int) -> np.ndarray:
    """The row order of one epoch of a memory-mapped array: a function of (seed, epoch) only.

    Never of how many epochs this process has run, so a training resumed after a crash sees
    the very batches the uninterrupted one would have seen (the in-memory path does the same
    with TensorFlow's stateless shuffle).
    """
    return np.random.default_rng([seed, epoch]).permutation(rows)


def make_dataset(
    tf: Any,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int | None,
    blocks: Sequence[tuple[str, int, int]] = (),
    epochs: range = range(1),
    stations: np.ndarray | None = None,
) -> tf.data.Dataset:
    """A batched tf.data stream over x/y for ``epochs``, shuffled per epoch when ``seed`` is given.

    With a seed, the stream holds every batch of every epoch in ``epochs`` back to back (fit
    is given ``steps_per_epoch``), each epoch in ``epoch_order``. Small arrays are gathered in
    TensorFlow. Large (memory-mapped) arrays are never loaded whole: each epoch's order is
    gathered block by block from the memmap, so memory stays at a few blocks. ``stations``
    (each row's station index) goes through the same gathers, so it stays with its rows.
    """
    rows = len(x)
    if stations is not None and (len(stations) != rows or stations.dtype != np.int32):
        raise ValueError(
            f"station indices must be int32, one per feature row: got {stations.dtype} "
            f"{list(stations.shape)} for {rows} rows"
        )
    # Several model inputs (``blocks`` of consecutive columns, and the station): one each.
    columns = [x, y] if stations is None else [x, y, stations]

    def pack(xs: Any, ys: Any, ss: Any = None) -> Any:
        return pack_inputs(xs, blocks, ss), ys

    if seed is None:
        data = tf.data.Dataset.from_tensor_slices(pack(*(np.asarray(a) for a in columns)))
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    if sum(a.nbytes for a in columns) <= IN_MEMORY_BYTES:
        constants = [tf.constant(np.asarray(a)) for a in columns]
        seed_tensor = tf.constant(seed, tf.int64)

        def epoch_batches(epoch: Any) -> Any:
            order = tf.random.experimental.stateless_shuffle(
                tf.range(rows, dtype=tf.int64), seed=tf.stack([seed_tensor, epoch])
            )
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        data = tf.data.Dataset.range(epochs.start, epochs.stop).flat_map(epoch_batches)
        data = data.map(lambda index: pack(*(tf.gather(c, index) for c in constants)))
        return data.prefetch(tf.data.AUTOTUNE)

    block = max(batch_size, BLOCK_ROWS // batch_size * batch_size)

    def batches() -> Any:
        for epoch in epochs:
            order = epoch_order(rows, seed, epoch)
            for begin in range(0, rows, block):
                # Sorted within the block so the gather reads the file forwards, then mixed.
                index = np.sort(order[begin : begin + block])
                within = np.random.default_rng([seed, epoch, begin]).permutation(len(index))
                gathered = [a[index][within] for a in columns]
                for start in range(0, len(index), batch_size):
                    yield tuple(a[start : start + batch_size] for a in gathered)

    signature = tuple(
        tf.TensorSpec((None, *a.shape[1:]), tf.int32 if a is stations else tf.float32)
        for a in columns
    )
    data = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # A known length lets Keras count steps (and not warn that the input "ran out").
    steps = -(-rows // batch_size) * len(epochs)
    data = data.apply(tf.data.experimental.assert_cardinality(steps))
    if len(blocks) > 1 or stations is not None:
        data = data.map(pack)
    return data.prefetch(tf.data.AUTOTUNE)


def steps_per_execution(steps_per_epoch: int) -> int:
    """The largest divisor of ``steps_per_epoch`` up to ``STEPS_PER_EXECUTION``.

    The training stream runs across epochs (fit gets ``steps_per_epoch``), so a call of the
    compiled function must never cross an epoch's end: it would take the next epoch's batches.
    """
    limit = max(1, min(STEPS_PER_EXECUTION, steps_per_epoch))
    return next(d for d in range(limit, 0, -1) if steps_per_epoch % d == 0)


def prepare_devices(job: FitJob) -> tuple[Any, Any, DeviceInfo]:
    """Seed every generator, make ops deterministic and pick a strategy: (tf, strategy, device)."""
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(job.training.seed)
    # Same seed on CPU = same numbers; costs little at this model size.
    tf.config.experimental.enable_op_determinism()
    strategy, device = choose_strategy(tf)
    return tf, strategy, device


def fit_model(
    job: FitJob,
    log: Callable[[str], None] = lambda message: None,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
    save_checkpoint: Callable[[keras.Model], FileRef] | None = None,
) -> TrainingRun:
    """Train on arrays, checkpointing every epoch; resume from the job journal's last epoch.

    With ``job.stations`` the model gets the station input, fed beside the features.
    Checkpoints go to the job's store unless ``save_checkpoint`` saves them elsewhere.
    """
    job.require_rows()
    tf, strategy, device = prepare_devices(job)
    log(f"training on {device.device} with {device.strategy}, TF {device.tensorflow_version}")
    done = job.journal.completed(log)[: job.training.epochs] if job.journal is not None else []
    initial_epoch = len(done)
    steps_per_epoch = int(np.ceil(len(job.x_train) / job.training.batch_size))
    train_data, validation_data = _datasets(tf, job, initial_epoch)
    with strategy.scope():
        model = _compiled_model(job, done, steps_per_epoch, log)
    save = save_checkpoint or checkpoint_saver(job.store)
    every_epoch, history, checkpoints = _epoch_callback(job, done, model.optimizer, save, on_epoch)
    started = time.perf_counter()
    if initial_epoch < job.training.epochs:
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=job.training.epochs,
            initial_epoch=initial_epoch,
            # Given explicitly, Keras keeps one iterator across epochs over the stream above.
            steps_per_epoch=steps_per_epoch,
            callbacks=[every_epoch],
            shuffle=False,  # the tf.data stream is already in each epoch's order
            verbose=0,
        )
    # A resume from a journal retention rewrote has no checkpoint for some epochs.
    kept, kept_epochs = present_checkpoints(history, checkpoints)
    return TrainingRun(
        history=tuple(history),
        checkpoints=kept,
        device=device,
        seconds=time.perf_counter() - started,
        resumed_from=initial_epoch,
        checkpoint_epochs=kept_epochs,
    )


def _datasets(tf: Any, job: FitJob, initial_epoch: int) -> tuple[Any, Any]:
    """The training stream (the epochs left to train) and the validation batches."""
    stations = job.stations
    # A multi-input zoo model (two-input) takes consecutive column blocks, one per input.
    blocks = input_blocks(job.model.architecture, job.x_train.shape[1])
    train_data = make_dataset(
        tf,
        job.x_train,
        job.y_train,
        job.training.batch_size,
        job.training.seed,
        blocks,
        epochs=range(initial_epoch, job.training.epochs),
        stations=None if stations is None else stations.train,
    )
    validation_data = make_dataset(
        tf,
        job.x_validation,
        job.y_validation,
        VALIDATION_BATCH_SIZE,
        None,
        blocks,
        stations=None if stations is None else stations.validation,
    )
    return train_data, validation_data


def _compiled_model(
    job: FitJob,
    done: list[tuple[EpochRecord, FileRef | None]],
    steps_per_epoch: int,
    log: Callable[[str], None],
) -> keras.Model:
    """The model to train, compiled: the last journaled checkpoint's, or a new one."""
    import keras

    # Several steps per call of the compiled train function: at batch 4 the per-step Python
    # and dispatch overhead is most of the time (see BENCHMARKS.md).
    compile_options: dict[str, Any] = {
        "loss": "mean_squared_error",
        "steps_per_execution": steps_per_execution(steps_per_epoch),
        "jit_compile": JIT_COMPILE,
    }
    if done:
        # The .keras checkpoint holds the optimizer's variables too (momentum, step count
        # and so the decayed learning rate); safe_mode refuses any code inside the file.
        last = done[-1][1]  # the journal's last epoch always has its checkpoint
        assert last is not None
        model = keras.saving.load_model(verify(last), compile=True, safe_mode=True)
        model.compile(optimizer=model.optimizer, **compile_options)
        log(f"resuming after epoch {len(done)} from {last.path}")
        return model
    station_rows = 0 if job.stations is None else job.stations.rows
    model = build_model(job.model, job.x_train.shape[1], station_rows)
    model.compile(optimizer=make_optimizer(job.training, steps_per_epoch), **compile_options)
    return model


def _epoch_callback(
    job: FitJob,
    done: list[tuple[EpochRecord, FileRef | None]],
    optimizer: Any,
    save_checkpoint: Callable[[keras.Model], FileRef],
    on_epoch: Callable[[EpochRecord], None],
) -> tuple[keras.callbacks.Callback, list[EpochRecord], list[FileRef | None]]:
    """A callback that checkpoints and journals every epoch, and the lists it fills."""
    import keras

    checkpoints: list[FileRef | None] = [checkpoint for _, checkpoint in done]
    history: list[EpochRecord] = [record for record, _ in done]
    journal = job.journal

    class EveryEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            checkpoints.append(save_checkpoint(self.model))
            rate = float(optimizer.learning_rate)
            record = EpochRecord(
                epoch=epoch + 1,
                loss=float(logs.get("loss", float("nan"))),
                val_loss=float(logs.get("val_loss", float("nan"))),
                learning_rate=rate,
            )
            history.append(record)
            if journal is not None:
                journal.record(list(zip(history, checkpoints, strict=True)))
            on_epoch(record)

    return EveryEpoch(), history, checkpoints


def checkpoint_saver(store: ArtifactStore) -> Callable[[keras.Model], FileRef]:
    """Return a function that saves a model as a ``.keras`` file into the store, atomically."""

    def save(model: keras.Model) -> FileRef:
        temp = store.temp_path(".keras")
        try:
            model.save(temp)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return store.adopt(temp, ".keras")

    return save
