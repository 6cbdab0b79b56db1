"""Where a run's Keras work besides training happens: in a child on the run's backend (JAX), or
in this process (TensorFlow, as before).

On JAX the flow's process never imports Keras: the child that trained the run (kept by
``child_process.reusing_children``) assembles the ensemble and predicts the windows the flow
scores, with Keras on JAX loaded already. Importing Keras here instead would load the
environment's backend (TensorFlow by default: about 5 s of a cold run) for a few predictions.
A TensorFlow run does the work here: a TensorFlow child exits after each training (its GPU
memory), so a child per call would cost one TensorFlow import each.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tasks.models.bundle import ModelBundle
from tasks.storage.store import FileRef
from tasks.training.child_process import REUSABLE_BACKENDS, TrainingProcessError, run_child
from tasks.training.keras_calls import (
    AssembleCall,
    Assembled,
    KerasCallRequest,
    PredictCall,
    perform,
)

# A prediction or an average of a few small models takes seconds; one past this is hung.
CALL_TIMEOUT_MINUTES = 30.0


def in_child(backend: str | None) -> bool:
    """Whether Keras work for a run on ``backend`` goes to a child (None: this process)."""
    return backend in REUSABLE_BACKENDS


def keras_call(work: AssembleCall | PredictCall, backend: str | None) -> dict[str, object]:
    """Perform ``work`` in a child on ``backend`` (``in_child``) or here; its JSON result."""
    if not in_child(backend):
        return perform(work)
    results: list[dict[str, object]] = []

    def on_event(event: dict[str, object]) -> None:
        if event["event"] == "result" and isinstance(event.get("value"), dict):
            results.append(event["value"])  # type: ignore[arg-type]

    request = KerasCallRequest(backend=backend, work=work)
    outcome = run_child(request.model_dump_json(), CALL_TIMEOUT_MINUTES, on_event, backend=backend)
    what = f"Keras {work.call} on {backend}"
    if outcome.timed_out:
        raise TrainingProcessError(
            f"{what} ran past {CALL_TIMEOUT_MINUTES:g} minutes; its process was killed"
        )
    outcome.raise_reported_error(what)
    if outcome.code != 0 or len(results) != 1:
        tail = "\n".join(outcome.stderr_tail)
        raise TrainingProcessError(f"{what}: its process ended (exit code {outcome.code}):\n{tail}")
    return results[0]


def assemble(
    store_root: str, best: Sequence[FileRef], final: Sequence[FileRef], backend: str | None
) -> Assembled:
    """The members averaged (``keras_calls.assemble``), where ``backend``'s Keras work runs."""
    work = AssembleCall(store_root=store_root, best=tuple(best), final=tuple(final))
    return Assembled.model_validate(keras_call(work, backend))


def predict_counts(
    bundle: ModelBundle,
    features: np.ndarray,
    dates: np.ndarray | None,
    stations: np.ndarray | None,
    backend: str | None,
) -> np.ndarray:
    """``bundle.predict_arrays`` of the rows, where ``backend``'s Keras work runs."""
    if not in_child(backend):
        return bundle.predict_arrays(features, dates, stations)
    # Rows that do not fit the model are the caller's ValueError, raised here as in-process.
    bundle.check_rows(features, stations)
    # The rows travel as .npy files in a folder of our own, removed with everything in it.
    with tempfile.TemporaryDirectory(prefix="bikeflow-predict-") as folder:
        paths: dict[str, str | None] = {}
        for name, values in (("features", features), ("dates", dates), ("stations", stations)):
            if values is None:
                paths[name] = None
                continue
            path = Path(folder) / f"{name}.npy"
            np.save(path, np.asarray(values), allow_pickle=False)
            paths[name] = str(path)
        output = Path(folder) / "counts.npy"
        work = PredictCall(
            model=str(bundle.model_path),
            statistics=bundle.statistics,
            features=str(paths["features"]),
            dates=paths["dates"],
            stations=paths["stations"],
            output=str(output),
        )
        keras_call(work, backend)
        return np.load(output, allow_pickle=False)
