"""The one configuration model: the CLI, the Prefect UI run form and prefect.yaml all fill it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

UCI_BIKE_SHARING_URL = "https://archive.ics.uci.edu/static/public/275/bike+sharing+dataset.zip"

# The folders that a run's output, store and registry paths must stay under. Set by whoever
# runs the worker, never by a run's parameters: a run from the UI is as trusted as its form.
ROOTS_ENV = "BIKEFLOW_ROOTS"


def allowed_roots() -> tuple[Path, ...]:
    """The configured roots: ``$BIKEFLOW_ROOTS`` (os.pathsep-separated), else the working folder."""
    configured = [part for part in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if part]
    return tuple(Path(part).expanduser().resolve() for part in configured or [os.getcwd()])


def contained_path(value: str, field: str, strictly_inside: bool = False) -> str:
    """Check that a path resolves (symlinks and ``..`` included) under a configured root."""
    if "\x00" in value:
        raise ValueError(f"{field}: a path cannot contain a NUL byte")
    resolved = Path(value).expanduser().resolve()
    roots = allowed_roots()
    for root in roots:
        if resolved == root and not strictly_inside:
            return value
        if resolved != root and resolved.is_relative_to(root):
            return value
    where = " or ".join(str(root) for root in roots)
    inside = "strictly inside" if strictly_inside else "under"
    raise ValueError(
        f"{field}: {value!r} resolves to {resolved}, which is not {inside} {where} "
        f"(the folders allowed by {ROOTS_ENV})"
    )


Initializer = Literal["glorot_uniform", "random_normal", "random_uniform", "zeros", "ones"]
Architecture = Literal[
    "seed-mlp", "adam", "dropout", "leaky-relu", "two-input", "shared-weather", "tf-core"
]

# What each zoo entry changes from the generic defaults (the seed's variants). A field keeps
# the value the user gave unless it is still at its generic default.
ZOO_DEFAULTS: dict[str, dict[str, dict[str, object]]] = {
    "seed-mlp": {},
    # Keras' default Adam (the seed: optimizer='Adam'): rate 0.001, no decay.
    "adam": {"training": {"optimizer": "adam", "learning_rate": 0.001, "decay_rate": 1.0}},
    "dropout": {"model": {"dropout": 0.2}, "training": {"epochs": 50}},
    "leaky-relu": {"model": {"hidden_units": 6, "activation": "leaky_relu"}},
    "two-input": {},
    # Its second weather input is the day before's weather, derived from the rows.
    "shared-weather": {"features": {"previous_weather": True}},
    "tf-core": {},
}


class _Frozen(BaseModel):
    # Frozen so that a config shared by several tasks cannot be changed under one of them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Frozen):
    """How the days are cut, in date order, into training, validation and test windows."""

    test_days: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Days at the end of the data kept for the one final test (the seed: 100).",
    )
    validation_fraction: float = Field(
        0.1,
        ge=0.01,
        le=0.5,
        description="Share of the days before the test window used for validation "
        "(best-epoch selection); they are the days just before the test window.",
    )


class ModelConfig(_Frozen):
    """The network: the seed's MLP of two sigmoid layers by default."""

    architecture: Architecture = Field(
        "seed-mlp",
        description="Model zoo entry: seed-mlp (the seed's Keras MLP, SGD + momentum), adam "
        "(same net, Adam), dropout (Dropout 0.2, 50 epochs), leaky-relu (11-6-6-1, "
        "LeakyReLU 0.1), two-input (functional API: calendar and weather branches), "
        "shared-weather (one Dense weather encoder shared by the day's and the previous day's "
        "weather, beside a calendar branch), tf-core "
        "(tf.Variables + GradientTape, no Keras fit). An entry's settings apply to fields "
        "left at their generic defaults.",
    )
    hidden_layers: int = Field(2, ge=1, le=8, description="Number of hidden Dense layers.")
    hidden_units: int = Field(16, ge=1, le=1024, description="Units in each hidden layer.")
    activation: Literal["sigmoid", "relu", "tanh", "leaky_relu"] = Field(
        "sigmoid", description="Activation of the hidden layers (leaky_relu: slope 0.1)."
    )
    initializer: Initializer = Field(
        "glorot_uniform",
        description="Kernel initialiser of every Dense layer (zeros/ones keep all units of a "
        "layer identical forever).",
    )
    dropout: float = Field(
        0.0, ge=0.0, le=0.9, description="Dropout rate after each hidden layer (0 = none)."
    )
    station_embedding_dim: int = Field(
        4,
        ge=1,
        le=64,
        description="Width of the vector each station learns (used only when the data has a "
        "station column): the station id becomes an Embedding input joined to the features; "
        "stations absent from the training rows share the unknown-station vector.",
    )


class FeatureConfig(_Frozen):
    """How the raw columns become model inputs and targets (fitted on training rows only)."""

    encoding: Literal["ordinal", "one-hot"] = Field(
        "ordinal",
        description="ordinal keeps every column an integer (the seed); one-hot turns season, "
        "weathersit, weekday and month into indicator columns.",
    )
    target_transform: Literal["none", "log", "sqrt"] = Field(
        "none",
        description="Transform of the count before normalisation: log trains on log(1 + cnt), "
        "sqrt on its square root; predictions are turned back into counts before any metric.",
    )
    holidays: Literal["none", "us-federal"] = Field(
        "none",
        description="Holiday windows: us-federal adds one 0/1 column per US federal holiday "
        "(pandas' calendar, observed dates), 1 within holiday_window_days of it; none adds "
        "nothing (the seed).",
    )
    holiday_window_days: int = Field(
        3,
        ge=0,
        le=14,
        description="Days before and after a holiday that its column marks (0 = the day only).",
    )
    previous_weather: bool = Field(
        False,
        description="Add the previous day's temp, atemp, hum and windspeed (same station, "
        "exactly the date before; a row without one uses its own day's weather and is counted "
        "in a warning). Daily data only; shared-weather turns it on.",
    )


class TrainingConfig(_Frozen):
    """The optimiser and the training loop."""

    optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="sgd is SGD with momentum, as in the seed; adam is its variant."
    )
    learning_rate: float = Field(
        0.02, gt=0.0, le=10.0, description="Initial learning rate (the seed: 0.02)."
    )
    momentum: float = Field(
        0.9, ge=0.0, lt=1.0, description="SGD momentum (ignored by adam; the seed: 0.9)."
    )
    decay_rate: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Learning-rate factor per epoch: lr * decay_rate ** (step / "
        "steps_per_epoch); 0.5 halves it every epoch as the seed does, 1 keeps it fixed.",
    )
    batch_size: int = Field(4, ge=1, le=65_536, description="Mini-batch size (the seed: 4).")
    epochs: int = Field(15, ge=1, le=1_000, description="Training epochs (the seed: 15).")
    seed: int = Field(
        0,
        ge=0,
        le=2**31 - 1,
        description="Random seed of weights and shuffling; same seed on CPU = same metrics.",
    )


class RetrainConfig(_Frozen):
    """Everything one retraining run needs: data source, where to write, split, model, training."""

    source: str = Field(
        UCI_BIKE_SHARING_URL,
        min_length=1,
        max_length=4096,
        description="day.csv or the UCI 'Bike Sharing Dataset' zip: a local path or an "
        "http(s) URL. Default: the dataset's public UCI download.",
    )
    granularity: Literal["day", "hour"] = Field(
        "day",
        description="Record granularity of the source: day (day.csv, one row per day) or hour "
        "(hour.csv, one row per hour; missing hours are warnings). Either may have a station "
        "column (one row per station and day/hour). From the UCI zip the matching file is taken.",
    )
    store_root: str = Field(
        "data/artifacts",
        min_length=1,
        max_length=4096,
        description="Root of the content-addressed artifact store (intermediate .npy files); "
        "point several workers at one shared folder to share the cache.",
    )
    output_dir: str = Field(
        "runs/latest",
        min_length=1,
        max_length=4096,
        description="Folder that receives the run's model, statistics, metrics, predictions "
        "and plot; replaced as a whole when the run succeeds.",
    )
    registry_root: str = Field(
        "models",
        min_length=1,
        max_length=4096,
        description="Root of the model registry: every trained model is kept there as a "
        "version, and the champion pointer names the one batch prediction uses; a new model "
        "becomes champion only if it beats the champion on the newest test window.",
    )
    split: SplitConfig = Field(SplitConfig(), description="Chronological split.")
    features: FeatureConfig = Field(FeatureConfig(), description="Encodings and target.")
    model: ModelConfig = Field(ModelConfig(), description="Network architecture.")
    training: TrainingConfig = Field(TrainingConfig(), description="Optimiser and loop.")

    # registry_root arrives with the model registry; check_fields=False lets the validator
    # name it before it exists.
    @field_validator("store_root", "registry_root", check_fields=False)
    @classmethod
    def _root_is_contained(cls, value: str, info: ValidationInfo) -> str:
        return contained_path(value, str(info.field_name))

    @field_validator("output_dir")
    @classmethod
    def _output_is_contained(cls, value: str) -> str:
        # Strictly inside: the output folder is replaced as a whole, never a root itself.
        return contained_path(value, "output_dir", strictly_inside=True)

    @model_validator(mode="after")
    def _output_holds_no_store(self) -> RetrainConfig:
        # Replacing the output folder would take the store or the registry with it.
        output = Path(self.output_dir).expanduser().resolve()
        for name in ("store_root", "registry_root"):
            value = getattr(self, name, None)
            if value is None:
                continue
            other = Path(value).expanduser().resolve()
            if other == output or other.is_relative_to(output):
                raise ValueError(f"output_dir {output} would contain {name} {other}")
        return self

    @model_validator(mode="after")
    def _previous_weather_fits(self) -> RetrainConfig:
        if not self.features.previous_weather:
            if self.model.architecture == "shared-weather":
                raise ValueError("architecture shared-weather needs features.previous_weather")
            return self
        if self.granularity == "hour":
            raise ValueError(
                "features.previous_weather needs daily rows: an hourly table has 24 rows a "
                "date, so 'the day before' names no single row"
            )
        if self.model.architecture == "two-input":
            # two-input feeds the last 4 columns to its weather branch: they would be
            # yesterday's weather and today's would join the calendar branch.
            raise ValueError(
                "features.previous_weather does not fit two-input: use shared-weather, whose "
                "weather encoder takes the day's and the previous day's weather"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _apply_zoo_defaults(cls, data: object) -> object:
        """Fill the chosen zoo entry's settings into model/training fields left at defaults."""
        return apply_zoo_defaults(data)


class PredictConfig(_Frozen):
    """What one batch prediction needs: the days to predict, the registry, where to write."""

    input_csv: str = Field(
        "data/predict/days.csv",
        min_length=1,
        max_length=4096,
        description="CSV of the days to predict: dteday and the 11 feature columns of day.csv "
        "(instant allowed; no count columns).",
    )
    registry_root: str = Field(
        "models",
        min_length=1,
        max_length=4096,
        description="Root of the model registry; its champion makes the predictions.",
    )
    output_csv: str = Field(
        "runs/predictions/predicted.csv",
        min_length=1,
        max_length=4096,
        description="CSV that receives dteday and predicted_cnt per day; written whole or "
        "not at all.",
    )


def _section(value: object) -> dict[str, object]:
    if isinstance(value, BaseModel):
        return value.model_dump()
    return dict(value) if isinstance(value, dict) else {}


def apply_zoo_defaults(data: object) -> object:
    """Return raw config data with the zoo entry's settings where fields are at defaults."""
    if not isinstance(data, dict):
        return data
    model = _section(data.get("model"))
    entry = ZOO_DEFAULTS.get(str(model.get("architecture", "seed-mlp")), {})
    if not entry:
        return data
    result = dict(data)
    # The UI form sends every field, so "left at its default" means equal to the default,
    # not merely absent.
    sections: tuple[tuple[str, type[BaseModel]], ...] = (
        ("model", ModelConfig),
        ("training", TrainingConfig),
        ("features", FeatureConfig),
    )
    for section, defaults in sections:
        if section not in entry:
            continue
        values = dict(model) if section == "model" else _section(result.get(section))
        for name, value in entry.get(section, {}).items():
            if values.get(name, defaults.model_fields[name].default) == (
                defaults.model_fields[name].default
            ):
                values[name] = value
        result[section] = values
    return result


class SweepConfig(_Frozen):
    """A sweep: trials (and/or a grid) of config overrides on a base config, several seeds each."""

    base: RetrainConfig = Field(
        RetrainConfig(), description="The config every trial starts from (source, store, ...)."
    )
    trials: tuple[dict[str, Any], ...] = Field(
        (),
        max_length=1000,
        description="Trials as nested overrides of the base config, e.g. {model: {architecture: "
        "adam}}; an optional 'name' labels the trial. Empty: every zoo model.",
    )
    grid: dict[str, tuple[Any, ...]] = Field(
        {},
        description="Dotted field -> values (e.g. features.encoding: [ordinal, one-hot]); every "
        "combination is crossed with every trial.",
    )
    seeds: tuple[int, ...] = Field(
        (0, 1, 2), min_length=1, max_length=100, description="Training seeds of every trial."
    )
    max_parallel: int = Field(
        2, ge=1, le=256, description="Trainings running at once (one child process each)."
    )
    leaderboard_dir: str = Field(
        "runs/sweep",
        min_length=1,
        max_length=4096,
        description="Folder that receives leaderboard.csv, trials.csv and validation_curves.png.",
    )
    promote_winner: bool = Field(
        False, description="Hand the winning trial to the registry's promotion step."
    )
    gpus_per_trial: int = Field(
        0,
        ge=0,
        le=16,
        description="GPUs each training asks a Ray/Dask task runner for (0 = no request).",
    )
