"""The training child process: ``python -m tasks.training.child`` < request.json (a FitRequest).

TensorFlow holds GPU memory until its process exits, so each TensorFlow training runs in a
process of its own that exits when the training ends; a JAX child may serve one request after
another (``child_process.reusing_children``). Parent and child speak JSON lines, never
pickle: each request is one line on stdin; the child writes one event per line to its
protocol stream (``log``, ``epoch``, then ``result`` or ``error``, then ``end``). Anything
else the child or TensorFlow prints goes to stderr, so it cannot corrupt the protocol.

The child is also where Keras's backend is chosen: ``main`` sets ``KERAS_BACKEND`` from the
request's ``training.backend`` before anything imports Keras (Keras reads it once, at import).
No other code sets it. On JAX it also points JAX at its compilation cache (``compile_cache``).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import IO, Any

from schemas.config import ModelConfig, TrainingConfig
from tasks.training.compile_cache import use_compile_cache
from tasks.training.keras_calls import KerasCallRequest
from tasks.training.request import FitRequest, GroupFitRequest, read_request


def _emit(stream: IO[str], event: str, **fields: Any) -> None:
    stream.write(json.dumps({"event": event, **fields}) + "\n")
    stream.flush()


def keras_backend(model: ModelConfig, training: TrainingConfig) -> str:
    """The Keras backend a run's models live on: tf-core is TensorFlow's own loop, whatever the
    config says; every other zoo entry runs on its ``training.backend``."""
    return "tensorflow" if model.architecture == "tf-core" else training.backend


def keras_backend_of(request: FitRequest) -> str:
    """The Keras backend a request trains on (``keras_backend`` of its configs)."""
    return keras_backend(request.model, request.training)


def choose_keras_backend(backend: str) -> None:
    """Set ``KERAS_BACKEND`` for this process (a request's backend), before Keras is imported."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        if backend == "jax":
            use_compile_cache()  # read by JAX when Keras imports it
        return
    # Keras chose its backend when it was imported (serve called in a process that has Keras
    # already): the variable would change nothing.
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(
            f"Keras was imported on {keras.backend.backend()!r} before the training child "
            f"could choose {backend!r}"
        )


def warm_up(backend: str) -> None:
    """A spare child's head start: Keras on ``backend`` and the trainer, imported before the
    request arrives (``child_process.start_spare``). The request must then name ``backend``."""
    os.environ["KERAS_BACKEND"] = backend
    if backend == "jax":
        use_compile_cache()
        from tasks.training import jax_fit

        jax_fit.warm_up()
    else:
        from tasks.training import tf_core  # noqa: F401  (keras_fit and TensorFlow with it)


def serve(request: FitRequest, protocol: IO[str]) -> None:
    """Run one training and report it as events on ``protocol``."""
    choose_keras_backend(keras_backend_of(request))
    from tasks.training.retention import retain_checkpoints

    def on_epoch(record: Any) -> None:
        _emit(protocol, "epoch", record=record.model_dump(), epochs=request.training.epochs)

    def log(message: str) -> None:
        _emit(protocol, "log", message=message)

    job = request.job()
    if keras_backend_of(request) == "jax":
        from tasks.training.jax_fit import fit_model_jax

        run = fit_model_jax(job, log=log, on_epoch=on_epoch)
    else:
        # tf-core trains by hand; every other zoo entry goes through Keras fit.
        from tasks.training.tf_core import train_arrays

        run = train_arrays(job, log=log, on_epoch=on_epoch)
    # training.keep_checkpoints: the chosen epoch's and the last stay, the others go.
    run = retain_checkpoints(job, run)
    _emit(protocol, "result", run=run.model_dump(mode="json"))


def serve_request(text: str, protocol: IO[str], served: int) -> None:
    """Serve one request (a FitRequest, GroupFitRequest or KerasCallRequest as JSON);
    ``served``: how many this child served before it."""
    request = read_request(text)
    # Before serve imports any trainer: Keras reads the variable once, when imported. A
    # group's members share their training settings but the seed, so member 0 speaks for it.
    if isinstance(request, KerasCallRequest):
        choose_keras_backend(request.backend)
    else:
        single = request.member(0) if isinstance(request, GroupFitRequest) else request
        choose_keras_backend(keras_backend_of(single))
    if served:
        import keras

        # A child kept for another request (child_process.reusing_children): the layers'
        # automatic names start again, as in a fresh process, so its files are the same.
        keras.backend.clear_session()
    if isinstance(request, KerasCallRequest):
        from tasks.training.keras_calls import perform

        _emit(protocol, "result", value=perform(request.work))
    elif isinstance(request, GroupFitRequest):
        from tasks.training.group_child import serve_group

        # Several members as one program (JAX): each event names its member.
        serve_group(request, lambda event, **fields: _emit(protocol, event, **fields))
    else:
        serve(request, protocol)


def main(argv: list[str] | None = None) -> int:
    """Serve requests from stdin, one JSON line each, until it closes; then exit (freeing
    every device the child used). After each request: an ``end`` event.

    ``--warm BACKEND``: import Keras on that backend before reading a request (a spare
    child); a spare whose stdin closes without a request exits 0, having done nothing. A
    request that fails ends the child (exit 1) after its ``error`` and ``end`` events.
    """
    args = sys.argv[1:] if argv is None else argv
    warm = args[1] if args[:1] == ["--warm"] else None
    # Keep the real stdout for the protocol and point fd 1 at stderr, so stray prints from
    # TensorFlow or user code land in the log rather than in the JSON stream.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    served = 0
    try:
        if warm is not None:
            warm_up(warm)
        for line in sys.stdin:
            if not line.strip():
                continue
            if warm is not None and not served:
                _emit(protocol, "log", message=f"a spare child, its {warm} imports done ahead")
            serve_request(line, protocol, served)
            served += 1
            _emit(protocol, "end")
    except Exception as error:
        from schemas.errors import BikeflowError

        _emit(
            protocol,
            "error",
            type=type(error).__name__,
            message=str(error),
            user_error=isinstance(error, BikeflowError | ValueError),
            traceback=traceback.format_exc(),
        )
        _emit(protocol, "end")
        return 1
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: TensorFlow's takes about a second and has nothing left
    # to save (every file is written and renamed, the result is sent); the OS frees the
    # devices either way.
    os._exit(status)
