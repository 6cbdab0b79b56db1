"""The model zoo: Keras networks and optimisers built from the config (no TensorFlow at import).

With a station vocabulary, a zoo network takes a second input, ``station`` (each row's int
index, 0 = a station the training rows did not have), through ``Embedding`` -> ``Flatten``,
concatenated with the numeric features before the hidden layers (two-input: with both
branches before the joined layer). Without one, every entry is built exactly as before.

``shared-weather`` is the tutorial's shared layer: one weather encoder (the same Dense layer
objects, one set of weights) applied to the day's weather and to the previous day's, whose
columns ``tasks.prepare.encode`` appends after the weather (``prev:temp`` ...).
"""

from __future__ import annotations

from collections.abc import Sequence
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
FEATURES_INPUT = "features"
STATION_INPUT = "station"


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


def require_station_support(architecture: str) -> None:
    """Raise ``ValueError`` for a zoo entry that cannot take the station input (tf-core)."""
    if architecture == "tf-core":
        raise ValueError(
            "architecture 'tf-core' has no station input: the seed's low-level MLP multiplies "
            "one feature matrix by hand; train data with a station column with seed-mlp or "
            "another Keras architecture"
        )


def _station_vector(model: ModelConfig, station_rows: int) -> tuple[Any, Any]:
    """The ``station`` input (int index, one column) and its learned vector."""
    import keras
    from keras import layers

    station = keras.Input(shape=(1,), dtype="int32", name=STATION_INPUT)
    vectors = layers.Embedding(station_rows, model.station_embedding_dim, name="station_embedding")
    return station, layers.Flatten(name="station_vector")(vectors(station))


def _count_layer(model: ModelConfig) -> Any:
    """The one-unit output layer, ``count``, every zoo network ends with."""
    from keras import layers

    return layers.Dense(1, kernel_initializer=make_initializer(model.initializer), name="count")


def _joined_head(
    model: ModelConfig, inputs: list[Any], branches: list[Any], station_rows: int, name: str
) -> keras.Model:
    """Concatenate the branches (and the station's vector, with stations), then 16 -> 1."""
    import keras
    from keras import layers

    if station_rows:
        # The station is where the rides happen, not a calendar fact: it scales every
        # branch alike, so it joins them at the concatenation.
        station, vector = _station_vector(model, station_rows)
        inputs, branches = [*inputs, station], [*branches, vector]
    joined = layers.Concatenate(name="joined")(branches)
    hidden = _apply(_hidden_block(model, 16, "joined_dense"), joined)
    return keras.Model(inputs=inputs, outputs=_count_layer(model)(hidden), name=name)


def build_two_input(model: ModelConfig, n_features: int, station_rows: int = 0) -> keras.Model:
    """The seed's functional-API model: calendar and weather branches, concatenated, 16 -> 1."""
    import keras

    if n_features <= WEATHER_COLUMNS:
        raise ValueError(f"two-input needs calendar and weather columns, got {n_features}")
    calendar = keras.Input(shape=(n_features - WEATHER_COLUMNS,), name="calendar")
    weather = keras.Input(shape=(WEATHER_COLUMNS,), name="weather")
    calendar_branch = _apply(_hidden_block(model, model.hidden_units, "calendar_dense"), calendar)
    weather_branch = _apply(_hidden_block(model, model.hidden_units, "weather_dense"), weather)
    return _joined_head(
        model, [calendar, weather], [calendar_branch, weather_branch], station_rows, "two_input"
    )


def build_shared_weather(model: ModelConfig, n_features: int, station_rows: int = 0) -> keras.Model:
    """Calendar branch beside one weather encoder shared by the day's and the day before's
    weather (the last 8 columns: 4 of the day, then 4 ``prev:``), concatenated, 16 -> 1.
    """
    import keras

    if n_features <= 2 * WEATHER_COLUMNS:
        raise ValueError(
            f"shared-weather needs calendar, weather and previous-day weather columns, got "
            f"{n_features} (is features.previous_weather on?)"
        )
    calendar = keras.Input(shape=(n_features - 2 * WEATHER_COLUMNS,), name="calendar")
    weather = keras.Input(shape=(WEATHER_COLUMNS,), name="weather")
    previous = keras.Input(shape=(WEATHER_COLUMNS,), name="previous_weather")
    calendar_branch = _apply(_hidden_block(model, model.hidden_units, "calendar_dense"), calendar)
    # One list of layer objects applied to both inputs: the weather means the same thing
    # on either day, so both days are read with the same weights (counted once).
    encoder = _hidden_block(model, model.hidden_units, "weather_encoder")
    branches = [calendar_branch, _apply(encoder, weather), _apply(encoder, previous)]
    return _joined_head(
        model, [calendar, weather, previous], branches, station_rows, "shared_weather"
    )


def build_model(model: ModelConfig, n_features: int, station_rows: int = 0) -> keras.Model:
    """Build the configured zoo network over ``n_features`` normalised input columns.

    ``station_rows`` > 0 adds the station input with that many embedding rows (the known
    stations plus the unknown one, ``StationVocabulary.size``); 0 builds the network without.
    """
    import keras
    from keras import layers

    if station_rows == 1 or station_rows < 0:
        raise ValueError(f"station_rows must be 0 (no stations) or at least 2, got {station_rows}")
    if station_rows:
        require_station_support(model.architecture)
    if model.architecture == "two-input":
        return build_two_input(model, n_features, station_rows)
    if model.architecture == "shared-weather":
        return build_shared_weather(model, n_features, station_rows)
    # Initialisers draw their seeds when created: each is made in layer order, as before
    # stations existed, so a seed gives the same initial weights.
    if not station_rows:
        # seed-mlp, adam, dropout, leaky-relu (and tf-core's exported twin) share one
        # Sequential MLP; their differences are in the config values the zoo entry sets.
        stack: list[Any] = [keras.Input(shape=(n_features,), name=FEATURES_INPUT)]
        for index in range(model.hidden_layers):
            stack += _hidden_block(model, model.hidden_units, f"hidden_{index + 1}")
        stack.append(_count_layer(model))
        return keras.Sequential(stack, name=model.architecture.replace("-", "_"))
    features = keras.Input(shape=(n_features,), name=FEATURES_INPUT)
    station, vector = _station_vector(model, station_rows)
    hidden = layers.Concatenate(name="with_station")([features, vector])
    for index in range(model.hidden_layers):
        hidden = _apply(_hidden_block(model, model.hidden_units, f"hidden_{index + 1}"), hidden)
    output = _count_layer(model)(hidden)
    return keras.Model(
        inputs=[features, station], outputs=output, name=model.architecture.replace("-", "_")
    )


def describe_architecture(model: ModelConfig) -> str:
    """The network's shape in one phrase, as ``build_model`` builds it (for the model card)."""
    units = f"{model.hidden_units} {model.activation} units"
    if model.architecture == "two-input":
        return (
            f"a calendar branch and a weather branch of {units} each, concatenated, then "
            f"Dense 16 ({model.activation}) -> 1"
        )
    if model.architecture == "shared-weather":
        return (
            f"a calendar branch of {units} beside one weather encoder of {units} shared by the "
            f"day's and the day before's weather, concatenated, then Dense 16 "
            f"({model.activation}) -> 1"
        )
    return f"{model.hidden_layers} hidden layers of {units} -> 1"


def input_blocks(architecture: str, n_features: int) -> list[tuple[str, int, int]]:
    """Name and column block (start, stop) of each feature input, before any model exists."""
    if architecture == "two-input":
        cut = n_features - WEATHER_COLUMNS
        return [("calendar", 0, cut), ("weather", cut, n_features)]
    if architecture == "shared-weather":
        cut = n_features - 2 * WEATHER_COLUMNS
        middle = n_features - WEATHER_COLUMNS
        return [
            ("calendar", 0, cut),
            ("weather", cut, middle),
            ("previous_weather", middle, n_features),
        ]
    return [(FEATURES_INPUT, 0, n_features)]


def pack_inputs(x: Any, blocks: Sequence[tuple[str, int, int]], stations: Any = None) -> Any:
    """Cut feature rows (an array or a tensor) into a model's inputs.

    Without stations: the matrix itself for one input, else a tuple of its column blocks. With
    stations: a dict by input name, the station indices (one column) under ``station``.
    """
    if stations is None:
        return x if len(blocks) <= 1 else tuple(x[:, start:stop] for _, start, stop in blocks)
    if len(blocks) <= 1:
        named = {blocks[0][0] if blocks else FEATURES_INPUT: x}
    else:
        named = {name: x[:, start:stop] for name, start, stop in blocks}
    return {**named, STATION_INPUT: stations}


def model_inputs(model: keras.Model, x: Any, stations: Any = None) -> Any:
    """Cut a feature matrix into the model's inputs: consecutive column blocks, in order.

    A model with a ``station`` input needs ``stations`` (each row's index, from
    ``Statistics.station_indices``); a model without one refuses them.
    """
    import numpy as np

    names = [tensor.name for tensor in model.inputs]
    if (STATION_INPUT in names) != (stations is not None):
        has = "takes" if STATION_INPUT in names else "has no"
        given = "none were given" if stations is None else "station indices were given"
        raise ValueError(f"model {model.name} {has} a station input, but {given}")
    features = [tensor for tensor in model.inputs if tensor.name != STATION_INPUT]
    widths = [int(tensor.shape[-1]) for tensor in features]
    if sum(widths) != x.shape[-1]:
        raise ValueError(f"model takes {sum(widths)} columns in {widths}, got {x.shape[-1]}")
    bounds = [sum(widths[:i]) for i in range(len(widths) + 1)]
    blocks = [(t.name, bounds[i], bounds[i + 1]) for i, t in enumerate(features)]
    if stations is not None:
        stations = np.asarray(stations, dtype=np.int32).reshape(-1, 1)
        if len(stations) != len(x):
            raise ValueError(f"{len(stations)} station indices for {len(x)} feature rows")
    return pack_inputs(x, blocks, stations)


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
