"""tf-core: the seed's low-level TensorFlow trainer, without Keras ``fit``.

Weights are ``tf.Variable``s drawn with the configured initialiser, the forward pass is
matmul + activation, the loss is ½·MSE, gradients come from ``tf.GradientTape`` and a
hand-written momentum SGD applies them with the seed's exponentially decaying rate. Every
epoch is saved with ``tf.train.Checkpoint`` (the seed's Saver) and also exported as a
``.keras`` model of the same layers, so the select and evaluate steps use it like any other
zoo model. The result is the same ``TrainingRun`` as the Keras trainer's.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from schemas.config import ModelConfig, TrainingConfig
from tasks.models.zoo import build_model, make_initializer, require_station_support
from tasks.storage.store import ArtifactStore, FileRef, load_json, verify
from tasks.training.job import FitJob
from tasks.training.keras_fit import (
    EpochRecord,
    TrainingRun,
    checkpoint_saver,
    fit_model,
    import_tensorflow,
    prepare_devices,
)

VALIDATION_BATCH_SIZE = 4096


def layer_shapes(model: ModelConfig, n_features: int) -> list[tuple[int, int]]:
    """(inputs, outputs) of each weight matrix: hidden layers, then the single output."""
    widths = [n_features] + [model.hidden_units] * model.hidden_layers + [1]
    return [(widths[i], widths[i + 1]) for i in range(len(widths) - 1)]


def variable_names(model: ModelConfig) -> list[str]:
    """The seed's variable names (W_1, b_1, ..., W_o, b_o), in Keras weight order."""
    names: list[str] = []
    for index in range(model.hidden_layers):
        names += [f"W_{index + 1}", f"b_{index + 1}"]
    return [*names, "W_o", "b_o"]


def check_supported(model: ModelConfig, training: TrainingConfig) -> None:
    """Refuse settings the low-level path does not implement (it is the seed's SGD MLP)."""
    if model.dropout > 0:
        raise ValueError("tf-core has no dropout; use architecture 'dropout' for that")
    if training.optimizer != "sgd":
        raise ValueError("tf-core trains with momentum SGD only; set optimizer to 'sgd'")


def create_variables(
    model: ModelConfig, n_features: int, initial_weights: Sequence[np.ndarray] | None = None
) -> list[Any]:
    """Create the weights as tf.Variables: kernels from the initialiser, biases at zero."""
    tf = import_tensorflow()
    names = variable_names(model)
    values: list[Any] = []
    for fan_in, fan_out in layer_shapes(model, n_features):
        values.append(make_initializer(model.initializer)((fan_in, fan_out), dtype="float32"))
        # The seed's output layer has no bias; ours has one (zero at the start) so that the
        # exported .keras model is a plain Dense stack.
        values.append(tf.zeros((fan_out,), dtype=tf.float32))
    if initial_weights is not None:
        if [tuple(w.shape) for w in initial_weights] != [tuple(v.shape) for v in values]:
            raise ValueError("initial_weights do not match the configured layer shapes")
        values = [np.asarray(w, dtype=np.float32) for w in initial_weights]
    return [tf.Variable(value, name=name) for name, value in zip(names, values, strict=True)]


def forward(variables: Sequence[Any], x: Any, activation: str) -> Any:
    """The forward pass: h = act(h @ W + b) per hidden layer, then a linear output."""
    # A plain import: autograph traces this function, and import_tensorflow touches os.environ.
    import tensorflow as tf

    act: Callable[[Any], Any] = {
        "sigmoid": tf.sigmoid,
        "relu": tf.nn.relu,
        "tanh": tf.tanh,
        "leaky_relu": lambda t: tf.nn.leaky_relu(t, alpha=0.1),
    }[activation]
    hidden = x
    pairs = list(zip(variables[0::2], variables[1::2], strict=True))
    for kernel, bias in pairs[:-1]:
        hidden = act(tf.matmul(hidden, kernel) + bias)
    kernel, bias = pairs[-1]
    return tf.matmul(hidden, kernel) + bias


def save_tf_checkpoint(checkpoint: Any, store: ArtifactStore) -> FileRef:
    """Write a tf.train.Checkpoint into the store; return a JSON manifest of its files."""
    scratch = Path(tempfile.mkdtemp(dir=store.temp_path().parent))
    try:
        prefix = checkpoint.write(str(scratch / "ckpt"))
        files = {
            path.name[len("ckpt") :]: store.put_file(path, ".ckpt").model_dump()
            for path in sorted(scratch.iterdir())
            if path.name.startswith("ckpt")
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return store.put_json({"format": "tf.train.Checkpoint", "prefix": Path(prefix).name, **files})


def restore_tf_checkpoint(
    manifest: FileRef, model: ModelConfig, n_features: int
) -> list[np.ndarray]:
    """Read a stored tf.train.Checkpoint back into fresh variables; return their values."""
    tf = import_tensorflow()
    content = load_json(manifest)
    variables = [
        tf.Variable(tf.zeros(shape), name=name)
        for name, shape in zip(
            variable_names(model),
            [
                s
                for fan_in, fan_out in layer_shapes(model, n_features)
                for s in ((fan_in, fan_out), (fan_out,))
            ],
            strict=True,
        )
    ]
    checkpoint = tf.train.Checkpoint(
        step=tf.Variable(0, dtype=tf.int64),
        **dict(zip(variable_names(model), variables, strict=True)),
    )
    scratch = Path(tempfile.mkdtemp())
    try:
        for suffix, ref in content.items():
            if suffix in ("format", "prefix"):
                continue
            shutil.copyfile(verify(FileRef.model_validate(ref)), scratch / f"ckpt{suffix}")
        checkpoint.read(str(scratch / "ckpt")).assert_consumed()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [variable.numpy() for variable in variables]


def fit_tf_core(
    job: FitJob,
    log: Callable[[str], None] = lambda message: None,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
    initial_weights: Sequence[np.ndarray] | None = None,
) -> TrainingRun:
    """Train with GradientTape and momentum SGD; checkpoint every epoch (TF and ``.keras``)."""
    job.require_rows()
    check_supported(job.model, job.training)
    tf, strategy, device = prepare_devices(job)
    log(f"tf-core training on {device.device}, TF {device.tensorflow_version}")
    n_features = job.x_train.shape[1]
    steps_per_epoch = int(np.ceil(len(job.x_train) / job.training.batch_size))
    # Built exactly as the Keras trainer builds it, so the same seed gives the same batches.
    train_data = (
        tf.data.Dataset.from_tensor_slices((job.x_train, job.y_train))
        .shuffle(len(job.x_train), seed=job.training.seed, reshuffle_each_iteration=True)
        .batch(job.training.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    with strategy.scope():
        variables = create_variables(job.model, n_features, initial_weights)
        velocities = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    checkpoint = tf.train.Checkpoint(
        step=step, **dict(zip(variable_names(job.model), variables, strict=True))
    )
    rate = decayed_rate(job.training, steps_per_epoch)
    train_step = sgd_step(job, variables, velocities, step, rate)
    export = checkpoint_saver(job.store)
    twin = build_model(job.model, n_features)
    checkpoints: list[FileRef] = []
    tf_checkpoints: list[FileRef] = []
    history: list[EpochRecord] = []
    started = time.perf_counter()
    for epoch in range(1, job.training.epochs + 1):
        loss = _train_epoch(train_data, train_step)
        tf_checkpoints.append(save_tf_checkpoint(checkpoint, job.store))
        twin.set_weights([variable.numpy() for variable in variables])
        checkpoints.append(export(twin))
        record = EpochRecord(
            epoch=epoch,
            loss=loss,
            val_loss=validation_mse(job, variables),
            learning_rate=float(rate(step)),
        )
        history.append(record)
        on_epoch(record)
    return TrainingRun(
        history=tuple(history),
        checkpoints=tuple(checkpoints),
        tf_checkpoints=tuple(tf_checkpoints),
        device=device,
        seconds=time.perf_counter() - started,
    )


def decayed_rate(training: TrainingConfig, steps_per_epoch: int) -> Callable[[Any], Any]:
    """The seed's exponential decay: lr * decay_rate ** (global_step / decay_steps)."""
    import tensorflow as tf

    def rate(at_step: Any) -> Any:
        exponent = tf.cast(at_step, tf.float32) / float(steps_per_epoch)
        return training.learning_rate * tf.pow(tf.constant(training.decay_rate), exponent)

    return rate


def sgd_step(
    job: FitJob,
    variables: Sequence[Any],
    velocities: Sequence[Any],
    step: Any,
    rate: Callable[[Any], Any],
) -> Callable[[Any, Any], Any]:
    """The compiled training step: ½·MSE, its gradients, one momentum SGD update."""
    import tensorflow as tf

    momentum = tf.constant(job.training.momentum, tf.float32)
    activation = job.model.activation

    @tf.function(reduce_retracing=True)
    def train_step(x_batch: Any, y_batch: Any) -> Any:
        with tf.GradientTape() as tape:
            error = forward(variables, x_batch, activation) - y_batch
            loss = tf.reduce_mean(0.5 * tf.square(error))  # the seed's ½·MSE
        gradients = tape.gradient(loss, variables)
        learning_rate = rate(step)
        # The rate is folded into the velocity as Keras' SGD does (v = m*v - lr*g; w += v), so
        # with a decaying rate both paths take the same steps; with a fixed rate this is the
        # seed's MomentumOptimizer (v = m*v + g; w -= lr*v) exactly.
        for variable, velocity, gradient in zip(variables, velocities, gradients, strict=True):
            velocity.assign(momentum * velocity - learning_rate * gradient)
            variable.assign_add(velocity)
        step.assign_add(1)
        return 2.0 * loss  # reported as MSE, the unit every zoo model's history uses

    return train_step


def _train_epoch(train_data: Any, train_step: Callable[[Any, Any], Any]) -> float:
    """Run one epoch's batches; return its mean loss."""
    loss_sum, rows = 0.0, 0
    for x_batch, y_batch in train_data:
        batch_loss = train_step(x_batch, y_batch)
        # Weighted by batch size, as Keras averages an epoch's loss.
        loss_sum += float(batch_loss) * int(x_batch.shape[0])
        rows += int(x_batch.shape[0])
    return loss_sum / rows


def validation_mse(job: FitJob, variables: Sequence[Any]) -> float:
    """The MSE of the current weights on the validation rows, in batches."""
    import tensorflow as tf

    total, count = 0.0, 0
    for begin in range(0, len(job.x_validation), VALIDATION_BATCH_SIZE):
        x_batch = job.x_validation[begin : begin + VALIDATION_BATCH_SIZE]
        y_batch = job.y_validation[begin : begin + VALIDATION_BATCH_SIZE]
        predicted = forward(variables, tf.constant(x_batch), job.model.activation).numpy()
        total += float(np.sum((predicted - y_batch) ** 2))
        count += y_batch.size
    return total / count


def train_arrays(
    job: FitJob,
    log: Callable[[str], None] = lambda message: None,
    on_epoch: Callable[[EpochRecord], None] = lambda record: None,
) -> TrainingRun:
    """Train any zoo model on arrays: tf-core by hand, every other entry with Keras ``fit``.

    Only the Keras path resumes from ``job.journal`` after a crash; tf-core starts over, and
    has no station input (``job.stations`` with tf-core raises ``ValueError``).
    """
    if job.model.architecture == "tf-core":
        if job.stations is not None:
            require_station_support(job.model.architecture)
        return fit_tf_core(job, log, on_epoch)
    return fit_model(job, log=log, on_epoch=on_epoch)
