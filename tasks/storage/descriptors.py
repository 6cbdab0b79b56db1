"""What the cached steps return: small descriptors of artifacts in the store, never the data.

Prefect keeps each cached step's result in a JSON record naming the class it was built from.
The classes live here, apart from the tasks (which import Prefect), so that ``bikeflow plan``
can read the records back into the same objects without importing Prefect or TensorFlow.
The steps' inputs that are descriptors of other modules (``TableData``, ``NormalisedData``)
are in Prefect-free modules of their own. A training's record (``TrainingRun``) is here too, so
that the storage layer imports no pipeline stage.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.config import WeatherScale
from schemas.errors import ArtifactError
from tasks.storage.store import FileRef


class RawData(BaseModel):
    """The ingested source: the bytes as fetched and the CSV table taken from them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    fetched: FileRef
    table: FileRef
    member: str | None = None
    # "raw-normalised": rows assembled from trips, whose weather may leave UCI's [0, 1].
    weather_scale: WeatherScale = "uci"


class Window(BaseModel):
    """Rows ``start``..``stop - 1`` of the table, covering ``first_date``..``last_date``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int
    stop: int
    days: int
    first_date: str
    last_date: str


class SplitPlan(BaseModel):
    """Three ordered, disjoint date windows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train: Window
    validation: Window
    test: Window


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
    # Keras's backend; runs recorded before the JAX trainer existed were all on TensorFlow.
    backend: str = "tensorflow"
    # The JAX trainer's jax version (None on TensorFlow).
    jax_version: str | None = None


class TrainingRun(BaseModel):
    """A finished training: per-epoch history, the checkpoints it kept, and the device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    history: tuple[EpochRecord, ...]
    checkpoints: tuple[FileRef, ...]
    device: DeviceInfo
    seconds: float
    # tf-core only: per epoch, a JSON manifest of its tf.train.Checkpoint files.
    tf_checkpoints: tuple[FileRef, ...] = ()
    # Epochs taken from the journal of an earlier, interrupted attempt (0: trained from scratch).
    resumed_from: int = 0
    # The epoch of each checkpoint, when retention kept only some (training.keep_checkpoints:
    # the chosen epoch and the last); empty: one checkpoint per epoch of the history, in order.
    checkpoint_epochs: tuple[int, ...] = ()

    def checkpoint_of(self, epoch: int) -> FileRef:
        """The checkpoint saved after ``epoch`` (1-based); ArtifactError if it was not kept."""
        epochs = self.checkpoint_epochs or tuple(record.epoch for record in self.history)
        if len(epochs) != len(self.checkpoints):
            raise ArtifactError(
                f"{len(epochs)} epochs were recorded but {len(self.checkpoints)} checkpoints saved"
            )
        if epoch not in epochs:
            raise ArtifactError(
                f"epoch {epoch}'s checkpoint was not kept (kept: epochs {list(epochs)}); "
                "rerun with training.keep_checkpoints: all to keep every epoch's"
            )
        return self.checkpoints[epochs.index(epoch)]


class BestEpoch(BaseModel):
    """The chosen epoch, its losses and its checkpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epoch: int
    val_loss: float
    loss: float
    model: FileRef


class Member(BaseModel):
    """One member: its training, the epoch its validation curve chose, and its refit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int
    run: TrainingRun
    best: BestEpoch
    refit: TrainingRun | None = None

    @property
    def final(self) -> FileRef:
        """The member's model: the refit's last epoch, or the chosen epoch's checkpoint."""
        return self.refit.checkpoints[-1] if self.refit is not None else self.best.model


class Forecaster(BaseModel):
    """The run's model: its members, the model scored on validation, and the published one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    members: tuple[Member, ...]
    refit: bool
    # The members' chosen epochs averaged (mean epoch and losses): validation is scored on
    # it, since a refitted member has seen the validation rows.
    best: BestEpoch
    # The published model: the final members averaged (the best checkpoint for one member).
    model: FileRef
    parameters: int
    card: str


class Scores(BaseModel):
    """Regression scores in bike counts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rmse: float
    mae: float
    r2: float
    wape: float


class Evaluation(BaseModel):
    """Test and validation scores of the model and of the baselines, plus the report files."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    test: Scores
    validation: Scores
    baselines: dict[str, Scores]
    predictions: FileRef
    plot: FileRef
