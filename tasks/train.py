"""Train: fit the Keras model on the training rows, checkpointing every epoch."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from schemas.config import ModelConfig, TrainingConfig
from tasks.caching import ArtifactCache
from tasks.errors import TrainingError
from tasks.models import build_model, input_blocks, make_optimizer, pack_inputs
from tasks.normalise import NormalisedData
from tasks.store import ArtifactStore, FileRef, is_intact, read_journal, verify, write_journal

if TYPE_CHECKING:
    from uuid import UUID

    import keras
    import tensorflow as tf

    from tasks.train_worker import TrainingRequest

VALIDATION_BATCH_SIZE = 4096
STEPS_PER_EXECUTION = 256
JIT_COMPILE = False
# Arrays up to this size are read into memory and sliced by tf.data (fastest); larger ones
# stay memory-mapped and are gathered a shuffled block at a time.
IN_MEMORY_BYTES = 256 << 20
BLOCK_ROWS = 1 << 16


class EpochRecord(BaseModel):
    """Mean training loss (while the epoch ran) and validation loss (after it), normalised MSE."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epoch: int
    loss: float
    val_loss: float
    learning_rate: float


class DeviceInfo(BaseModel):
    """Where training ran."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str
    strategy: str
    visible_gpus: tuple[str, ...]
    tensorflow_version: str
    keras_version: str


class TrainingRun(BaseModel):
    """A finished training: per-epoch history, one checkpoint per epoch, and the device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    history: tuple[EpochRecord, ...]
    checkpoints: tuple[FileRef, ...]
    device: DeviceInfo
    seconds: float
    # tf-core only: per epoch, a JSON manifest of its tf.train.Checkpoint files.
    tf_checkpoints: tuple[FileRef, ...] = ()
    # Epochs taken from the journal of an earlier, interrupted attempt (0: trained from scratch).
    resumed_from: int = 0


class EpochJournal:
    """The epochs a training has completed, each with its checkpoint, kept in the store.

    Written after every epoch (after its checkpoint is stored), so a training killed at any
    moment can resume from its last completed epoch; the history survives the crash.
    """

    def __init__(self, store: ArtifactStore, name: str) -> None:
        self.store = store
        self.name = name

    def completed(self) -> list[tuple[EpochRecord, FileRef]]:
        """The completed epochs, in order, up to the first whose checkpoint is not intact."""
        content = read_journal(self.store, self.name) or {}
        done: list[tuple[EpochRecord, FileRef]] = []
        for entry in content.get("epochs", []):
            record = EpochRecord.model_validate(entry["record"])
            checkpoint = FileRef.model_validate(entry["checkpoint"])
            if record.epoch != len(done) + 1 or not is_intact(checkpoint):
                break
            done.append((record, checkpoint))
        return done

    def record(self, done: list[tuple[EpochRecord, FileRef]]) -> None:
        """Replace the journal with these completed epochs."""
        epochs = [
            {"record": record.model_dump(), "checkpoint": checkpoint.model_dump()}
            for record, checkpoint in done
        ]
        write_journal(self.store, self.name, {"epochs": epochs})


@dataclass(frozen=True)
class StationInputs:
    """Each row's station index (int32, one column) for training and validation.

    ``rows`` is the embedding's row count, ``StationVocabulary.size`` (known stations + 1).
    """

    train: np.ndarray
    validation: np.ndarray
    rows: int


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


def fit_model(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_validation: np.ndarray,
    y_validation: np.ndarray,
    model_config: ModelConfig,
    training: TrainingConfig,
    save_checkpoint: Callable[[keras.Model], FileRef],
    log: Callable[[str], None] = lambda message: None,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
    journal: EpochJournal | None = None,
    stations: StationInputs | None = None,
) -> TrainingRun:
    """Train on arrays, checkpointing every epoch; resume from ``journal``'s last epoch.

    With ``stations`` the model gets the station input, fed beside the features.
    """
    if len(x_train) == 0 or len(x_validation) == 0:
        raise ValueError("training and validation rows must not be empty")
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(training.seed)
    # Same seed on CPU = same numbers; costs little at this model size.
    tf.config.experimental.enable_op_determinism()
    strategy, device = choose_strategy(tf)
    log(f"training on {device.device} with {device.strategy}, TF {device.tensorflow_version}")

    done = journal.completed()[: training.epochs] if journal is not None else []
    initial_epoch = len(done)
    steps_per_epoch = int(np.ceil(len(x_train) / training.batch_size))
    # A multi-input zoo model (two-input) takes consecutive column blocks, one per input.
    blocks = input_blocks(model_config.architecture, x_train.shape[1])
    train_data = make_dataset(
        tf,
        x_train,
        y_train,
        training.batch_size,
        training.seed,
        blocks,
        epochs=range(initial_epoch, training.epochs),
        stations=None if stations is None else stations.train,
    )
    validation_data = make_dataset(
        tf,
        x_validation,
        y_validation,
        VALIDATION_BATCH_SIZE,
        None,
        blocks,
        stations=None if stations is None else stations.validation,
    )
    # Several steps per call of the compiled train function: at batch 4 the per-step Python
    # and dispatch overhead is most of the time (see BENCHMARKS.md).
    compile_options: dict[str, Any] = {
        "loss": "mean_squared_error",
        "steps_per_execution": steps_per_execution(steps_per_epoch),
        "jit_compile": JIT_COMPILE,
    }
    with strategy.scope():
        if done:
            # The .keras checkpoint holds the optimizer's variables too (momentum, step count
            # and so the decayed learning rate); safe_mode refuses any code inside the file.
            model = keras.saving.load_model(verify(done[-1][1]), compile=True, safe_mode=True)
            model.compile(optimizer=model.optimizer, **compile_options)
            log(f"resuming after epoch {initial_epoch} from {done[-1][1].path}")
        else:
            model = build_model(
                model_config, x_train.shape[1], 0 if stations is None else stations.rows
            )
            model.compile(optimizer=make_optimizer(training, steps_per_epoch), **compile_options)
    optimizer = model.optimizer

    checkpoints: list[FileRef] = [checkpoint for _, checkpoint in done]
    history: list[EpochRecord] = [record for record, _ in done]

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

    started = time.perf_counter()
    if initial_epoch < training.epochs:
        model.fit(
            train_data,
            validation_data=validation_data,
            epochs=training.epochs,
            initial_epoch=initial_epoch,
            # Given explicitly, Keras keeps one iterator across epochs over the stream above.
            steps_per_epoch=steps_per_epoch,
            callbacks=[EveryEpoch()],
            shuffle=False,  # the tf.data stream is already in each epoch's order
            verbose=0,
        )
    return TrainingRun(
        history=tuple(history),
        checkpoints=tuple(checkpoints),
        device=device,
        seconds=time.perf_counter() - started,
        resumed_from=initial_epoch,
    )


def journal_name(request: BaseModel) -> str:
    """Name a training's journal by everything that determines its epochs, code included."""
    from tasks.caching import module_digest

    code = [module_digest(name) for name in ("tasks.train", "tasks.models", "tasks.train_worker")]
    material = json.dumps([request.model_dump(mode="json"), code], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


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


class TrainingProcessError(TrainingError):
    """The training child process died or reported an error."""


def run_training_process(
    request: TrainingRequest,
    on_epoch: Callable[[EpochRecord, int], None],
    log: Callable[[str], None],
) -> TrainingRun:
    """Train in a child process (``tasks.train_worker``) and return its result."""
    project_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    # The child must import the same code as this process, wherever the flow was loaded from.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project_root, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    process = subprocess.Popen(
        [sys.executable, "-m", "tasks.train_worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=project_root,
    )
    stderr_tail: deque[str] = deque(maxlen=40)

    def drain_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr_tail.append(line.rstrip())

    drainer = threading.Thread(target=drain_stderr, daemon=True)
    drainer.start()
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(request.model_dump_json())
    process.stdin.close()
    result: TrainingRun | None = None
    error: dict[str, Any] | None = None
    epochs_done = 0
    for line in process.stdout:
        event = json.loads(line)
        kind = event["event"]
        if kind == "epoch":
            epochs_done += 1
            on_epoch(EpochRecord.model_validate(event["record"]), event["epochs"])
        elif kind == "log":
            log(event["message"])
        elif kind == "result":
            result = TrainingRun.model_validate(event["run"])
        elif kind == "error":
            error = event
    code = process.wait()
    drainer.join(timeout=5)
    if error is not None:
        if error.get("user_error"):
            raise TrainingError(f"training failed: {error['type']}: {error['message']}")
        raise TrainingProcessError(
            f"training failed: {error['type']}: {error['message']}\n{error['traceback']}"
        )
    if code != 0 or result is None:
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        tail = "\n".join(stderr_tail)
        raise TrainingProcessError(
            f"the training process ended ({how}) after {epochs_done} epoch(s); last output:\n{tail}"
        )
    return result


_preload: threading.Thread | None = None


def preload_keras() -> threading.Thread | None:
    """Start importing Keras in this process in the background (once); return the thread.

    The training child imports TensorFlow on its own, and evaluation then imports it again in
    the flow process to load the chosen checkpoint: a cold run paid two imports one after the
    other. Started when training starts, the flow process's import overlaps the child's import
    and its epochs. Only a task that trains calls it, so a fully cached rerun still never
    imports TensorFlow.
    """
    global _preload
    if _preload is not None or "keras" in sys.modules:
        return _preload

    def load() -> None:
        # A failed import here is raised again, with its traceback, where Keras is needed.
        with contextlib.suppress(Exception):
            import keras  # noqa: F401

    _preload = threading.Thread(target=load, name="bikeflow-keras-preload", daemon=True)
    _preload.start()
    # Joined at exit, so a run that ends early never tears down a half-done import.
    atexit.register(_preload.join)
    return _preload


@task(
    name="train_model",
    cache_policy=ArtifactCache(modules=("tasks.models", "tasks.train_worker", "tasks.tf_core")),
    persist_result=True,
    result_serializer="json",
)
def train_model(
    data: NormalisedData, model: ModelConfig, training: TrainingConfig, store_root: str
) -> TrainingRun:
    """Train the configured model in a child process, saving a checkpoint every epoch."""
    from tasks.train_worker import TrainingRequest

    logger = get_run_logger()
    # Called from sync code, Prefect's dual sync/async function returns the id itself.
    progress = cast(
        "UUID", create_progress_artifact(progress=0.0, description="Training epochs completed")
    )

    def on_epoch(record: EpochRecord, epochs: int) -> None:
        logger.info(
            "epoch %d/%d: loss=%.4f val_loss=%.4f lr=%.3g",
            record.epoch,
            epochs,
            record.loss,
            record.val_loss,
            record.learning_rate,
        )
        update_progress_artifact(progress, 100.0 * record.epoch / epochs)

    request = TrainingRequest(data=data, model=model, training=training, store_root=store_root)
    preload_keras()
    return run_training_process(request, on_epoch, logger.info)
