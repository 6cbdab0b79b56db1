"""Keras work besides training, as requests a training child can serve: assemble, predict.

A run on JAX trains in a child on the JAX backend, while the flow's own process would import
Keras on the environment's backend (TensorFlow unless ``KERAS_BACKEND`` says otherwise) just to
average the members and to predict the test window: seconds of a cold run, and a TensorFlow
the run never trained with (a worker with JAX alone has none). So the flow hands that work to
the run's child (``tasks.training.keras_work``), which has Keras on the run's backend loaded
already; ``perform`` is the same code either way (a TensorFlow run performs it in the flow's
process, as before). The ``.keras`` files written here load on every backend.

No Prefect here (the training child's import contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.prepare.statistics import Statistics
from tasks.storage.store import ArtifactStore, FileRef, verify

if TYPE_CHECKING:
    import keras


class AssembleCall(BaseModel):
    """Average the members' chosen and final checkpoints into the selection and published models."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call: Literal["assemble"] = "assemble"
    store_root: str
    best: tuple[FileRef, ...] = Field(min_length=1)
    final: tuple[FileRef, ...] = Field(min_length=1)


class Assembled(BaseModel):
    """What assembling gave: both models' files and what the model card says of the published."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    selection: FileRef
    published: FileRef
    parameters: int
    name: str
    summary: str


class PredictCall(BaseModel):
    """Bike counts from a ``.keras`` model and its statistics for raw rows saved as ``.npy``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call: Literal["predict"] = "predict"
    model: str
    statistics: Statistics
    features: str
    dates: str | None = None
    stations: str | None = None
    output: str


KerasCall = Annotated[AssembleCall | PredictCall, Field(discriminator="call")]


class KerasCallRequest(BaseModel):
    """A child's request for one piece of Keras work on ``backend``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["tensorflow", "jax"]
    work: KerasCall


def average_models(models: Sequence[keras.Model]) -> keras.Model:
    """One functional model: the members' inputs, each member on them, ``Average`` of outputs."""
    import keras
    from keras import layers

    first = models[0]
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name) for t in first.inputs]
    outputs = []
    for index, member in enumerate(models):
        # Layer names must be unique inside the averaged model.
        member.name = f"member_{index + 1}"
        outputs.append(member(inputs[0] if len(inputs) == 1 else inputs))
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        layers.Average(name="average")(outputs),
        name="forecaster",
    )


def summary_text(model: keras.Model) -> str:
    """``model.summary()`` as plain text."""
    lines: list[str] = []
    model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
    return "\n".join(lines)


def _load(ref: FileRef) -> keras.Model:
    import keras

    return keras.saving.load_model(verify(ref), safe_mode=True)


def assemble(work: AssembleCall) -> Assembled:
    """Average the members (one member: its own checkpoints, nothing written)."""
    from tasks.training.keras_fit import checkpoint_saver

    if len(work.best) != len(work.final):
        raise ValueError("every member needs both its chosen and its final checkpoint")
    if len(work.final) == 1:
        selection, published = work.best[0], work.final[0]
        published_model = _load(published)
    else:
        save = checkpoint_saver(ArtifactStore(work.store_root))
        selection = save(average_models([_load(ref) for ref in work.best]))
        published_model = average_models([_load(ref) for ref in work.final])
        published = save(published_model)
    return Assembled(
        selection=selection,
        published=published,
        parameters=int(published_model.count_params()),
        name=published_model.name,
        summary=summary_text(published_model),
    )


def predict(work: PredictCall) -> dict[str, Any]:
    """Predict the rows and save the counts (float64) as ``work.output``.

    ``work.output`` is in the caller's own temporary folder, read only after this request
    reports its result: no temporary name and rename are needed.
    """
    from tasks.models.bundle import ModelBundle

    def read(path: str | None) -> np.ndarray | None:
        return None if path is None else np.load(path, mmap_mode="r", allow_pickle=False)

    features = np.load(work.features, mmap_mode="r", allow_pickle=False)
    counts = ModelBundle(work.model, work.statistics).predict_arrays(
        features, read(work.dates), read(work.stations)
    )
    np.save(work.output, counts, allow_pickle=False)
    return {"rows": len(counts)}


def perform(work: AssembleCall | PredictCall) -> dict[str, Any]:
    """Do the work in this process (Keras on whatever backend it has); its JSON result."""
    import keras

    if keras.backend.backend() == "jax":
        from tasks.training.jax_steps import keep_tensorflow_unloaded

        # Loading and predicting on JAX needs no TensorFlow: Keras must not import it lazily.
        keep_tensorflow_unloaded()
    if isinstance(work, AssembleCall):
        return assemble(work).model_dump(mode="json")
    return predict(work)
