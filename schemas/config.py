"""The one configuration model: the CLI, the Prefect UI run form and prefect.yaml all fill it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.config_presets import PresetName, resolve_config

# The path rules live in schemas.paths; ROOTS_ENV, allowed_roots and contained_path are
# re-exported here because callers and tests know them from this module.
from schemas.paths import (
    ROOTS_ENV,
    DataFolder,
    OutputFile,
    OutputFolder,
    allowed_roots,
    check_holds_none,
    contained_path,
)
from schemas.sources import Source
from schemas.trips_config import TripsConfig, check_trips_fit

# A source's rows: one a day (day.csv) or one an hour (hour.csv).
Granularity = Literal["day", "hour"]
# How a table's weather columns were scaled. "uci": a day.csv/hour.csv as published, every
# value in [0, 1] (the Readme's min-max scaling of DC's 2011-2012 weather). "raw-normalised":
# rows assembled from trips, raw weather divided by the same divisors but never clipped, so a
# real winter or storm falls outside [0, 1] and is checked against plausible raw ranges instead.
WeatherScale = Literal["uci", "raw-normalised"]

__all__ = ["ROOTS_ENV", "allowed_roots", "contained_path"]

UCI_BIKE_SHARING_URL = "https://archive.ics.uci.edu/static/public/275/bike+sharing+dataset.zip"


Initializer = Literal["glorot_uniform", "random_normal", "random_uniform", "zeros", "ones"]
Architecture = Literal[
    "seed-mlp", "adam", "dropout", "leaky-relu", "two-input", "shared-weather", "tf-core"
]


class FrozenConfig(BaseModel):
    # Frozen so that a config shared by several tasks cannot be changed under one of them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(FrozenConfig):
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


class ModelConfig(FrozenConfig):
    """The network: the seed's MLP of two sigmoid layers by default."""

    architecture: Architecture = Field(
        "seed-mlp",
        description="Model zoo entry: seed-mlp (the seed's Keras MLP, SGD + momentum), adam "
        "(same net, Adam), dropout (Dropout 0.2, 50 epochs), leaky-relu (11-6-6-1, "
        "LeakyReLU 0.1), two-input (functional API: calendar and weather branches), "
        "shared-weather (one Dense weather encoder shared by the day's and the previous day's "
        "weather, beside a calendar branch), tf-core (tf.Variables + GradientTape, no Keras "
        "fit). An entry's settings fill the fields not given (after the preset's).",
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


class FeatureConfig(FrozenConfig):
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


TrainingBackend = Literal["tensorflow", "jax"]
# The backend a config that names none trains on. JAX, on the evidence of BENCHMARKS.md
# ("The default backend's evidence"): as good as TensorFlow over 5 seeds for the seed recipe,
# better for the forecaster, and no TensorFlow import in the training child.
DEFAULT_TRAINING_BACKEND: TrainingBackend = "jax"


class TrainingConfig(FrozenConfig):
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
    ensemble_size: int = Field(
        1,
        ge=1,
        le=16,
        description="Members trained with seeds seed, seed+1000, ... (on jax as one vectorised "
        "program in one child process; on tensorflow in parallel child processes); the "
        "published model averages them (1 = one model, the seed).",
    )
    parallel_members: int = Field(
        2,
        ge=1,
        le=64,
        description="Child processes training at once: on tensorflow one per member (and "
        "refit), on jax one per group of members (a run's members, a backtest origin's).",
    )
    refit: bool = Field(
        False,
        description="Retrain each member on training+validation rows for the epoch count its "
        "validation curve chose, and publish those (validation scores stay the unrefitted "
        "members').",
    )
    keep_checkpoints: Literal["chosen", "all"] = Field(
        "chosen",
        description="Which epochs' checkpoints a finished training keeps in the store: chosen "
        "keeps the epoch select chooses (lowest validation loss) and the last one (a resume "
        "starts from it) and deletes the others; all keeps every epoch's. The history and the "
        "choice are the same either way.",
    )
    backend: TrainingBackend = Field(
        DEFAULT_TRAINING_BACKEND,
        description="Keras backend the training child runs on: tensorflow (Keras fit) or jax "
        "(each epoch one compiled jax.lax.scan, ensemble members vectorised with jax.vmap). "
        "Either writes .keras checkpoints that both load. tf-core always trains on TensorFlow.",
    )
    # Operations (issue 21): how long a training may run.
    timeout_minutes: float = Field(
        120.0,
        gt=0.0,
        le=10_080.0,
        description="Longest one training (one member, or its refit) may run, in minutes "
        "(fractions allowed); past it the training process is killed and the run fails "
        "naming the member and the epoch reached. At most a week.",
    )


class PromotionConfig(FrozenConfig):
    """When a new model replaces the registry's champion (docs/registry.md)."""

    rule: Literal["bootstrap", "point"] = Field(
        "bootstrap",
        description="bootstrap: the challenger must be better with probability at least "
        "min_probability in a paired block bootstrap over the newest test window's days; "
        "point: a test RMSE lower by more than min_rmse_gain is enough.",
    )
    min_probability: float = Field(
        0.9,
        ge=0.5,
        le=0.9999,
        description="bootstrap rule: the share of resamples in which the challenger's squared "
        "error is lower that it needs to replace the champion.",
    )
    resamples: int = Field(
        5000, ge=2000, le=100_000, description="bootstrap rule: number of resamples."
    )
    block_days: int = Field(
        7,
        ge=1,
        le=91,
        description="bootstrap rule: length in consecutive days of each resampled block "
        "(a week keeps weekly patterns and weather spells together).",
    )
    min_rmse_gain: float = Field(
        0.0,
        ge=0.0,
        le=1e6,
        description="point rule: how many bikes lower the challenger's test RMSE must be "
        "(0: any strictly lower RMSE wins).",
    )
    # Operations (issue 21): how long a promotion waits for another one to finish.
    lock_timeout_minutes: float = Field(
        10.0,
        gt=0.0,
        le=1_440.0,
        description="Longest a promotion waits for the model registry's lock (another run "
        "promoting into the same registry) before it fails naming the lock file, in minutes.",
    )


class RetrainConfig(FrozenConfig):
    """Everything one retraining run needs: data source, where to write, split, model, training."""

    preset: PresetName = Field(
        "seed",
        description="Recipe filling every field not given: seed (the tutorial's MLP, fast; "
        "the generic defaults) or forecaster (two-input, Adam, one-hot, holiday windows, log "
        "target, 3 members refitted on training+validation; schemas/presets/). A field you give "
        "always wins; on the UI form, which sends every field, a field left at its generic "
        "default counts as not given.",
    )
    source: Source = Field(
        UCI_BIKE_SHARING_URL,
        min_length=1,
        max_length=4096,
        description="day.csv or the UCI 'Bike Sharing Dataset' zip: a local path or an "
        "http(s) URL; or trip history, a local folder or glob pattern of trip files (see "
        "trips). Default: the dataset's public UCI download.",
    )
    granularity: Granularity = Field(
        "day",
        description="Record granularity of the source: day (day.csv, one row per day) or hour "
        "(hour.csv, one row per hour; missing hours are warnings). Either may have a station "
        "column (one row per station and day/hour). From the UCI zip the matching file is taken.",
    )
    store_root: DataFolder = Field(
        "data/artifacts",
        min_length=1,
        max_length=4096,
        description="Root of the content-addressed artifact store (intermediate .npy files); "
        "point several workers at one shared folder to share the cache.",
    )
    output_dir: OutputFolder = Field(
        "runs/latest",
        min_length=1,
        max_length=4096,
        description="Folder that receives the run's model, statistics, metrics, predictions "
        "and plot; replaced as a whole when the run succeeds. An existing folder is replaced "
        "only if bikeflow made it.",
    )
    registry_root: DataFolder = Field(
        "models",
        min_length=1,
        max_length=4096,
        description="Root of the model registry: every trained model is kept there as a "
        "version, and the champion pointer names the one batch prediction uses; a new model "
        "becomes champion only if it beats the champion on the newest test window (see promotion).",
    )
    retrain_when: Literal["always", "new-data"] = Field(
        "always",
        description="always: retrain every run; new-data: end the run before training when "
        "the data has no rows after the champion's last date (the champion stays).",
    )
    split: SplitConfig = Field(SplitConfig(), description="Chronological split.")
    features: FeatureConfig = Field(FeatureConfig(), description="Encodings and target.")
    model: ModelConfig = Field(ModelConfig(), description="Network architecture.")
    training: TrainingConfig = Field(TrainingConfig(), description="Optimiser and loop.")
    promotion: PromotionConfig = Field(
        PromotionConfig(), description="When a new model replaces the champion."
    )
    trips: TripsConfig = Field(TripsConfig(), description="How trip files become rows.")

    @model_validator(mode="after")
    def _trips_fit_the_source(self) -> RetrainConfig:
        check_trips_fit(self.source, self.trips)
        return self

    @model_validator(mode="after")
    def _output_holds_no_store(self) -> RetrainConfig:
        # Replacing the output folder would take the store, the registry or the source with it.
        others = {"store_root": self.store_root, "registry_root": self.registry_root}
        check_holds_none("output_dir", self.output_dir, others, self.source)
        return self

    @model_validator(mode="after")
    def _backend_fits_the_architecture(self) -> RetrainConfig:
        if self.model.architecture == "tf-core" and self.training.backend != "tensorflow":
            # tf-core is the tutorial's hand-written TensorFlow loop (tf.Variables and
            # GradientTape): there is no Keras model for another backend to run.
            raise ValueError(
                f"training.backend {self.training.backend!r} does not fit model.architecture "
                "'tf-core': tf-core trains with TensorFlow's own GradientTape, so it needs "
                "training.backend: tensorflow (or pick a Keras architecture such as seed-mlp)"
            )
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
    def _apply_preset_and_zoo(cls, data: object) -> object:
        """Fill the preset's, then the zoo entry's, settings into the fields not given."""
        return resolve_config(data, cls)


class PredictConfig(FrozenConfig):
    """What one batch prediction needs: the days to predict, the registry, where to write."""

    input_csv: Source = Field(
        "data/predict/days.csv",
        min_length=1,
        max_length=4096,
        description="CSV of the days to predict: dteday and the 11 feature columns of day.csv "
        "(instant allowed; no count columns).",
    )
    registry_root: DataFolder = Field(
        "models",
        min_length=1,
        max_length=4096,
        description="Root of the model registry; its champion makes the predictions.",
    )
    output_csv: OutputFile = Field(
        "runs/predictions/predicted.csv",
        min_length=1,
        max_length=4096,
        description="CSV that receives dteday and predicted_cnt per day; written whole or "
        "not at all. An existing file is replaced only if bikeflow wrote it.",
    )

    @model_validator(mode="after")
    def _output_is_not_the_input(self) -> PredictConfig:
        check_holds_none("output_csv", self.output_csv, {"input_csv": self.input_csv})
        return self
