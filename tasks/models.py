"""The model zoo: Keras networks and optimisers built from the config (no TensorFlow at import)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas.config import ModelConfig, TrainingConfig

if TYPE_CHECKING:
    import keras


def make_initializer(name: str) -> Any:
    """Return the kernel initialiser for a config name (the seed's choices plus Glorot)."""
    import keras

    # The seed draws normal weights with stddev 1 and uniform weights in [0, 1).
    initializers = {
        "glorot_uniform": keras.initializers.GlorotUniform,
        "random_normal": lambda: keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
        "random_uniform": lambda: keras.initializers.RandomUniform(minval=0.0, maxval=1.0),
        "zeros": keras.initializers.Zeros,
        "ones": keras.initializers.Ones,
    }
    if name not in initializers:
        raise ValueError(f"unknown initializer {name!r}; choose one of {sorted(initializers)}")
    return initializers[name]()


def build_model(model: ModelConfig, n_features: int) -> keras.Model:
    """Build the seed's MLP: n_features -> hidden Dense layers -> one linear output."""
    import keras
    from keras import layers

    stack: list[Any] = [keras.Input(shape=(n_features,), name="features")]
    for index in range(model.hidden_layers):
        stack.append(
            layers.Dense(
                model.hidden_units,
                activation=model.activation,
                kernel_initializer=make_initializer(model.initializer),
                name=f"hidden_{index + 1}",
            )
        )
        if model.dropout > 0:
            stack.append(layers.Dropout(model.dropout, name=f"dropout_{index + 1}"))
    stack.append(
        layers.Dense(1, kernel_initializer=make_initializer(model.initializer), name="count")
    )
    return keras.Sequential(stack, name=model.architecture.replace("-", "_"))


def make_optimizer(training: TrainingConfig, steps_per_epoch: int) -> keras.Optimizer:
    """SGD with momentum (or Adam) and the seed's exponentially decaying learning rate."""
    import keras

    schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=training.learning_rate,
        decay_steps=steps_per_epoch,
        decay_rate=training.decay_rate,
    )
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=schedule, momentum=training.momentum)
    return keras.optimizers.Adam(learning_rate=schedule)
