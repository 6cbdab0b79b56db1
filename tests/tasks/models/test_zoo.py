"""The model zoo: every entry trains on generated data and round-trips through its files."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from schemas.config import ModelConfig, RetrainConfig, TrainingConfig
from schemas.synthetic import make_day_frame
from tasks.models.zoo import build_model, describe_architecture, model_inputs
from tasks.prepare.encode import PreviousWeatherWarning, fit_encoding
from tasks.storage.store import ArtifactStore, verify
from tasks.training.job import FitJob
from tasks.training.tf_core import fit_tf_core, forward, restore_tf_checkpoint, train_arrays

pytestmark = pytest.mark.slow

ZOO = ("seed-mlp", "adam", "dropout", "leaky-relu", "two-input", "shared-weather", "tf-core")


def _arrays(encoding: str = "ordinal", rows: int = 120, previous_weather: bool = False):
    """Generated days, encoded and standardised on the first 100 rows (train)."""
    from schemas.records import FEATURE_COLUMNS

    frame = make_day_frame(rows, seed=3)
    raw = frame[list(FEATURE_COLUMNS)].to_numpy(np.float32)
    dates = frame["dteday"].to_numpy().astype("datetime64[D]")
    encoder = fit_encoding(encoding, FEATURE_COLUMNS, previous_weather=previous_weather)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviousWeatherWarning)  # the first day's fallback
        x = encoder.encode(raw, dates)
    mean, std = x[:100].mean(0), x[:100].std(0)
    x = ((x - mean) / np.where(std > 0, std, 1)).astype(np.float32)
    y = frame[["cnt"]].to_numpy(np.float32)
    y = ((y - y[:100].mean()) / y[:100].std()).astype(np.float32)
    return x[:100], y[:100], x[100:], y[100:]


@pytest.mark.parametrize("architecture", ZOO)
def test_every_zoo_model_trains_and_round_trips_through_its_file(tmp_path: Path, architecture: str):
    import keras

    config = RetrainConfig.model_validate(
        {"model": {"architecture": architecture}, "training": {"epochs": 1, "batch_size": 16}}
    )
    x_train, y_train, x_val, y_val = _arrays(
        "one-hot" if architecture == "two-input" else "ordinal",
        previous_weather=config.features.previous_weather,
    )
    run = train_arrays(
        FitJob(
            x_train, y_train, x_val, y_val, config.model, config.training, ArtifactStore(tmp_path)
        )
    )
    assert len(run.history) == 1 and np.isfinite(run.history[0].val_loss)
    loaded = keras.saving.load_model(verify(run.checkpoints[0]), safe_mode=True)
    again = keras.saving.load_model(verify(run.checkpoints[0]), safe_mode=True)
    first = loaded.predict(model_inputs(loaded, x_val), verbose=0)
    np.testing.assert_array_equal(first, again.predict(model_inputs(again, x_val), verbose=0))
    # The reloaded model is the trained one: its validation MSE is the one recorded.
    assert float(np.mean((first - y_val) ** 2)) == pytest.approx(run.history[0].val_loss, rel=1e-4)
    if architecture == "tf-core":
        weights = restore_tf_checkpoint(run.tf_checkpoints[0], config.model, x_train.shape[1])
        from_checkpoint = forward(weights, x_val, config.model.activation).numpy()
        np.testing.assert_allclose(from_checkpoint, first, rtol=1e-6, atol=1e-6)


def test_zoo_entries_set_the_seeds_variants():
    dropout = RetrainConfig.model_validate({"model": {"architecture": "dropout"}})
    assert dropout.model.dropout == 0.2 and dropout.training.epochs == 50
    leaky = RetrainConfig.model_validate({"model": {"architecture": "leaky-relu"}})
    assert (leaky.model.hidden_units, leaky.model.activation) == (6, "leaky_relu")
    assert RetrainConfig.model_validate({"model": {"architecture": "adam"}}).training.optimizer == (
        "adam"
    )
    # A value the user chose wins over the entry's.
    mine = RetrainConfig.model_validate(
        {"model": {"architecture": "dropout", "dropout": 0.5}, "training": {"epochs": 7}}
    )
    assert (mine.model.dropout, mine.training.epochs) == (0.5, 7)
    two = build_model(ModelConfig(architecture="two-input"), 30)
    assert [tuple(t.shape) for t in two.inputs] == [(None, 26), (None, 4)]


def test_tf_core_first_epoch_matches_keras_with_the_same_weights_and_batches(tmp_path: Path):
    import keras
    import tensorflow as tf

    from tasks.models.zoo import make_optimizer

    x_train, y_train, x_val, y_val = _arrays()
    model_config = ModelConfig()
    keras_training = TrainingConfig(epochs=1, batch_size=8, learning_rate=0.05, seed=4)
    keras.utils.set_random_seed(keras_training.seed)
    data = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=keras_training.seed, reshuffle_each_iteration=True)
        .batch(keras_training.batch_size)
    )
    model = build_model(model_config, x_train.shape[1])
    initial = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=make_optimizer(keras_training, 13), loss="mean_squared_error")
    logs = model.fit(
        data, validation_data=(x_val, y_val), epochs=1, shuffle=False, verbose=0
    ).history

    # tf-core minimises ½·MSE, whose gradient is half of MSE's: twice the rate, same steps.
    core_training = keras_training.model_copy(update={"learning_rate": 0.1})
    run = fit_tf_core(
        FitJob(
            x_train, y_train, x_val, y_val, model_config, core_training, ArtifactStore(tmp_path)
        ),
        initial_weights=initial,
    )
    assert run.history[0].loss == pytest.approx(logs["loss"][0], rel=1e-4)
    assert run.history[0].val_loss == pytest.approx(logs["val_loss"][0], rel=1e-4)
    restored = restore_tf_checkpoint(run.tf_checkpoints[0], model_config, x_train.shape[1])
    for core, trained in zip(restored, model.get_weights(), strict=True):
        np.testing.assert_allclose(core, trained, rtol=1e-4, atol=1e-5)
    assert not np.allclose(restored[0], initial[0])  # it did train


@pytest.mark.parametrize("initializer", ["zeros", "ones"])
def test_zeros_and_ones_initialisers_keep_every_hidden_unit_identical(
    tmp_path: Path, initializer: str
):
    import keras

    x_train, y_train, x_val, y_val = _arrays()
    model_config = ModelConfig(initializer=initializer)
    training = TrainingConfig(epochs=2, batch_size=8, learning_rate=0.05)
    for_glorot = ModelConfig(initializer="glorot_uniform")
    run = train_arrays(
        FitJob(x_train, y_train, x_val, y_val, model_config, training, ArtifactStore(tmp_path))
    )
    model = keras.saving.load_model(verify(run.checkpoints[-1]), safe_mode=True)
    for layer in model.layers[:-1]:
        kernel, bias = layer.get_weights()
        # Every unit (column) gets the same gradient, so they never become different.
        np.testing.assert_allclose(kernel, np.repeat(kernel[:, :1], kernel.shape[1], axis=1))
        np.testing.assert_allclose(bias, np.full_like(bias, bias[0]))
    glorot = train_arrays(
        FitJob(x_train, y_train, x_val, y_val, for_glorot, training, ArtifactStore(tmp_path))
    )
    kernel = keras.saving.load_model(verify(glorot.checkpoints[-1])).layers[0].get_weights()[0]
    assert not np.allclose(kernel, np.repeat(kernel[:, :1], kernel.shape[1], axis=1))


KERAS_ZOO = tuple(name for name in ZOO if name != "tf-core")


@pytest.mark.parametrize("architecture", KERAS_ZOO)
def test_every_keras_zoo_model_takes_the_station_input(tmp_path: Path, architecture: str):
    import keras

    from tasks.training.task import StationInputs

    config = RetrainConfig.model_validate(
        {"model": {"architecture": architecture}, "training": {"epochs": 1, "batch_size": 16}}
    )
    x_train, y_train, x_val, y_val = _arrays(
        "one-hot" if architecture == "two-input" else "ordinal",
        previous_weather=config.features.previous_weather,
    )
    rng = np.random.default_rng(1)
    stations = StationInputs(
        train=rng.integers(1, 4, (len(x_train), 1)).astype(np.int32),
        validation=rng.integers(0, 4, (len(x_val), 1)).astype(np.int32),  # 0: unknown
        rows=4,
    )
    run = train_arrays(
        FitJob(
            x_train,
            y_train,
            x_val,
            y_val,
            config.model,
            config.training,
            ArtifactStore(tmp_path),
            stations=stations,
        )
    )
    assert np.isfinite(run.history[0].val_loss)
    loaded = keras.saving.load_model(verify(run.checkpoints[0]), safe_mode=True)
    assert [t.name for t in loaded.inputs][-1] == "station"
    table = loaded.get_layer("station_embedding").get_weights()[0]
    assert table.shape == (4, config.model.station_embedding_dim)
    predicted = loaded.predict(model_inputs(loaded, x_val, stations.validation), verbose=0)
    assert float(np.mean((predicted - y_val) ** 2)) == pytest.approx(
        run.history[0].val_loss, rel=1e-4
    )


def test_without_stations_the_networks_are_the_ones_before_stations():
    import keras

    seed = build_model(ModelConfig(), 11)
    assert isinstance(seed, keras.Sequential)
    assert [t.name for t in seed.inputs] == ["features"]
    assert seed.count_params() == (11 * 16 + 16) + (16 * 16 + 16) + (16 + 1)
    two = build_model(ModelConfig(architecture="two-input"), 30)
    assert [t.name for t in two.inputs] == ["calendar", "weather"]
    assert two.count_params() == (26 * 16 + 16) + (4 * 16 + 16) + (32 * 16 + 16) + (16 + 1)
    with_station = build_model(ModelConfig(station_embedding_dim=4), 11, station_rows=6)
    # Only the embedding table and the first layer's 4 extra inputs are new.
    assert with_station.count_params() == seed.count_params() + 6 * 4 + 4 * 16


def test_tf_core_refuses_the_station_input_with_a_clear_reason(tmp_path: Path):
    from tasks.training.task import StationInputs

    x_train, y_train, x_val, y_val = _arrays()
    stations = StationInputs(
        train=np.ones((len(x_train), 1), np.int32),
        validation=np.ones((len(x_val), 1), np.int32),
        rows=2,
    )
    with pytest.raises(ValueError, match="'tf-core' has no station input"):
        train_arrays(
            FitJob(
                x_train,
                y_train,
                x_val,
                y_val,
                ModelConfig(architecture="tf-core"),
                TrainingConfig(epochs=1),
                ArtifactStore(tmp_path),
                stations=stations,
            )
        )
    assert not (tmp_path / "objects").exists()  # refused before any training


def test_shared_weather_reads_both_days_with_one_set_of_weights(tmp_path: Path):
    import keras

    config = RetrainConfig.model_validate(
        {"model": {"architecture": "shared-weather"}, "training": {"epochs": 2, "batch_size": 8}}
    )
    x_train, y_train, x_val, y_val = _arrays(previous_weather=True)
    assert x_train.shape[1] == 15  # 11 columns and the day before's 4 weather columns
    model = build_model(config.model, 15)
    assert [t.name for t in model.inputs] == ["calendar", "weather", "previous_weather"]
    encoders = [layer for layer in model.layers if layer.name.startswith("weather_encoder")]
    assert len(encoders) == 1  # one layer object, called on both inputs
    h = config.model.hidden_units
    shared = 4 * h + h
    assert encoders[0].count_params() == shared
    # Counted once: calendar 7 -> h, the encoder 4 -> h, joined 3h -> 16 -> 1.
    expected = (7 * h + h) + shared + (3 * h * 16 + 16) + (16 + 1)
    assert model.count_params() == expected
    lines: list[str] = []
    model.summary(line_length=160, print_fn=lambda line, **_: lines.append(line))
    summary = "\n".join(lines)
    # One row for the encoder (connected to both weather inputs), its parameters in the
    # total once.
    assert summary.count("weather_encoder (Dense)") == 1
    assert f"Total params: {expected:,}" in summary

    run = train_arrays(
        FitJob(
            x_train, y_train, x_val, y_val, config.model, config.training, ArtifactStore(tmp_path)
        )
    )
    loaded = keras.saving.load_model(verify(run.checkpoints[-1]), safe_mode=True)
    assert loaded.count_params() == expected  # still shared after the .keras round trip
    # The same weather on either input is encoded identically: the same weights, trained.
    encoder = loaded.get_layer("weather_encoder")
    both = keras.Model(loaded.inputs, [encoder(loaded.inputs[1]), encoder(loaded.inputs[2])])
    weather = x_val[:, 7:11]
    today, yesterday = both.predict((x_val[:, :7], weather, weather), verbose=0)
    np.testing.assert_array_equal(today, yesterday)
    initial = build_model(config.model, 15).get_layer("weather_encoder").get_weights()[0]
    assert not np.allclose(encoder.get_weights()[0], initial)


def test_the_model_card_phrase_follows_each_architecture_as_built():
    assert describe_architecture(ModelConfig()) == "2 hidden layers of 16 sigmoid units -> 1"
    two_input = describe_architecture(ModelConfig(architecture="two-input", activation="relu"))
    assert two_input.startswith("a calendar branch and a weather branch of 16 relu units each")
    assert "shared by the day's and the day before's" in describe_architecture(
        ModelConfig(architecture="shared-weather")
    )
