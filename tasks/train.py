"""Train: fit the Keras model on the training rows, checkpointing every epoch."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from prefect import task
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from schemas.config import ModelConfig, TrainingConfig
from tasks.caching import ArtifactCache
from tasks.models import build_model, make_optimizer
from tasks.normalise import NormalisedData
from tasks.store import ArtifactStore, FileRef, load_array

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

VALIDATION_BATCH_SIZE = 4096


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
    elif gpus:
        strategy = tf.distribute.OneDeviceStrategy("/gpu:0")
        device, name = "/gpu:0", "OneDeviceStrategy"
    else:
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        device, name = "/cpu:0", "OneDeviceStrategy"
    info = DeviceInfo(
        device=device,
        strategy=name,
        visible_gpus=tuple(gpu.name for gpu in gpus),
        tensorflow_version=tf.__version__,
        keras_version=keras.__version__,
    )
    return strategy, info


def fit_model(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_validation: np.ndarray,
    y_validation: np.ndarray,
    model_config: ModelConfig,
    training: TrainingConfig,
    save_checkpoint: Callable[[keras.Model], FileRef],
    log: Callable[[str], None] = lambda message: None,
) -> TrainingRun:
    """Train on arrays; ``save_checkpoint`` stores the model after every epoch."""
    if len(x_train) == 0 or len(x_validation) == 0:
        raise ValueError("training and validation rows must not be empty")
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(training.seed)
    # Same seed on CPU = same numbers; costs little at this model size.
    tf.config.experimental.enable_op_determinism()
    strategy, device = choose_strategy(tf)
    log(f"training on {device.device} with {device.strategy}, TF {device.tensorflow_version}")

    steps_per_epoch = int(np.ceil(len(x_train) / training.batch_size))
    train_data = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=training.seed, reshuffle_each_iteration=True)
        .batch(training.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    validation_data = tf.data.Dataset.from_tensor_slices((x_validation, y_validation)).batch(
        VALIDATION_BATCH_SIZE
    )
    with strategy.scope():
        model = build_model(model_config, x_train.shape[1])
        optimizer = make_optimizer(training, steps_per_epoch)
        model.compile(optimizer=optimizer, loss="mean_squared_error")

    checkpoints: list[FileRef] = []
    history: list[EpochRecord] = []

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
            log(
                f"epoch {record.epoch}/{training.epochs}: loss={record.loss:.4f} "
                f"val_loss={record.val_loss:.4f} lr={rate:.3g}"
            )

    started = time.perf_counter()
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=training.epochs,
        callbacks=[EveryEpoch()],
        shuffle=False,  # the tf.data pipeline shuffles, with the run's seed
        verbose=0,
    )
    return TrainingRun(
        history=tuple(history),
        checkpoints=tuple(checkpoints),
        device=device,
        seconds=time.perf_counter() - started,
    )


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


@task(
    name="train_model",
    cache_policy=ArtifactCache(modules=("tasks.models",)),
    persist_result=True,
    result_serializer="json",
)
def train_model(
    data: NormalisedData, model: ModelConfig, training: TrainingConfig, store_root: str
) -> TrainingRun:
    """Train the configured model with validation data, saving a checkpoint every epoch."""
    logger = get_run_logger()
    return fit_model(
        load_array(data.x_train),
        load_array(data.y_train),
        load_array(data.x_validation),
        load_array(data.y_validation),
        model,
        training,
        checkpoint_saver(ArtifactStore(store_root)),
        logger.info,
    )
