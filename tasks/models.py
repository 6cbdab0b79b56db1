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


# The weather columns (temp, atemp, hum, windspeed) are the last four of every encoding; the
# two-input model feeds everything before them to its calendar branch.
WEATHER_COLUMNS = 4
LEAKY_SLOPE = 0.1  # the seed's LeakyReLU(0.1); Keras' own default slope is 0.3


def _hidden_block(model: ModelConfig, units: int, name: str) -> list[Any]:
    """One hidden Dense layer, its activation and optional dropout, as a list of layers."""
    from keras import layers

    init = make_initializer(model.initializer)
    if model.activation == "leaky_relu":
        return [
            layers.Dense(units, kernel_initializer=init, name=name),
            layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_leaky_relu"),
            *([layers.Dropout(model.dropout, name=f"{name}_dropout")] if model.dropout else []),
        ]
    return [
        layers.Dense(units, activation=model.activation, kernel_initializer=init, name=name),
        *([layers.Dropout(model.dropout, name=f"{name}_dropout")] if model.dropout else []),
    ]


def _apply(stack: list[Any], tensor: Any) -> Any:
    for layer in stack:
        tensor = layer(tensor)
    return tensor


def build_two_input(model: ModelConfig, n_features: int) -> keras.Model:
    """The seed's functional-API model: calendar and weather branches, concatenated, 16 -> 1."""
    import keras
    from keras import layers

    if n_features <= WEATHER_COLUMNS:
        raise ValueError(f"two-input needs calendar and weather columns, got {n_features}")
    calendar = keras.Input(shape=(n_features - WEATHER_COLUMNS,), name="calendar")
    weather = keras.Input(shape=(WEATHER_COLUMNS,), name="weather")
    calendar_branch = _apply(_hidden_block(model, model.hidden_units, "calendar_dense"), calendar)
    weather_branch = _apply(_hidden_block(model, model.hidden_units, "weather_dense"), weather)
    joined = layers.Concatenate(name="joined")([calendar_branch, weather_branch])
    hidden = _apply(_hidden_block(model, 16, "joined_dense"), joined)
    output = layers.Dense(1, kernel_initializer=make_initializer(model.initializer), name="count")(
        hidden
    )
    return keras.Model(inputs=[calendar, weather], outputs=output, name="two_input")


def build_model(model: ModelConfig, n_features: int) -> keras.Model:
    """Build the configured zoo network over ``n_features`` normalised input columns."""
    import keras
    from keras import layers

    if model.architecture == "two-input":
        return build_two_input(model, n_features)
    # seed-mlp, adam, dropout, leaky-relu (and tf-core's exported twin) share one Sequential
    # MLP; their differences are in the config values the zoo entry sets.
    stack: list[Any] = [keras.Input(shape=(n_features,), name="features")]
    for index in range(model.hidden_layers):
        stack += _hidden_block(model, model.hidden_units, f"hidden_{index + 1}")
    stack.append(
        layers.Dense(1, kernel_initializer=make_initializer(model.initializer), name="count")
    )
    return keras.Sequential(stack, name=model.architecture.replace("-", "_"))


def model_inputs(model: keras.Model, x: Any) -> Any:
    """Cut a feature matrix into the model's inputs: consecutive column blocks, in order."""
    if len(model.inputs) == 1:
        return x
    widths = [int(tensor.shape[-1]) for tensor in model.inputs]
    if sum(widths) != x.shape[-1]:
        raise ValueError(f"model takes {sum(widths)} columns in {widths}, got {x.shape[-1]}")
    bounds = [sum(widths[:i]) for i in range(len(widths) + 1)]
    return tuple(x[..., bounds[i] : bounds[i + 1]] for i in range(len(widths)))


def split_columns(architecture: str, n_features: int) -> list[tuple[int, int]]:
    """Column blocks (start, stop) the architecture's inputs take, before any model exists."""
    if architecture == "two-input":
        return [(0, n_features - WEATHER_COLUMNS), (n_features - WEATHER_COLUMNS, n_features)]
    return [(0, n_features)]


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
