"""µs per training step at batch 4: Keras fit on TensorFlow (today's trainer) beside the JAX loop.

Usage: python -m benchmarks.step_time [--repetitions 3] [--epochs 15] [--quick]

The tutorial's MLP (11-16-16-1 sigmoid, MSE, SGD with momentum, the halving rate) on 631
synthetic rows at batch 4 (158 steps an epoch), after compilation. Each repetition runs two
fresh processes, one per Keras backend (the backend is fixed when Keras is imported):

- TensorFlow: ``tasks.training.keras_fit.fit_model`` as the training child runs it (tf.data,
  256 steps per execution), without writing checkpoints; an epoch's time, validation included,
  over its steps.
- JAX: the trainer's compiled epoch program (``tasks.training.jax_steps``: ``jax.jit`` of a
  ``jax.lax.scan`` over the epoch's batches) for 1 member, and for 3 members ``jax.vmap``-ed in
  the same program (the time for all 3); the same MLP written in plain JAX, no Keras, for 1
  and 3 members (the floor this JAX version sets); then ``tasks.training.jax_fit.fit_model_jax``'s
  whole epoch (the program, validation, a ``.keras`` checkpoint and the journal) over its steps.

Medians over epochs within a process, then over repetitions; interleaved TF JAX TF JAX ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import PYTHON, child_env, machine_note, median, print_table, run_child

TARGETS = {"JAX loop, 1 member": 10.0, "JAX loop, 3 members vmapped (all 3)": 15.0}


def epoch_seconds(ends: list[float]) -> float:
    """The median time between consecutive epoch ends (the first epoch compiles: left out)."""
    return float(np.median(np.diff(ends))) if len(ends) > 1 else float("nan")


def tensorflow_child(epochs: int) -> dict[str, float]:
    """Today's trainer on TensorFlow: µs per step of a whole epoch (validation included)."""
    from benchmarks.jax_programs import tutorial_arrays
    from schemas.config import ModelConfig, TrainingConfig
    from tasks.storage.store import ArtifactStore, FileRef
    from tasks.training.job import FitJob
    from tasks.training.keras_fit import fit_model

    arrays, validation = tutorial_arrays(), tutorial_arrays(63, seed=1)
    ends: list[float] = []
    job = FitJob(
        arrays.x,
        arrays.y,
        validation.x,
        validation.y,
        ModelConfig(),
        TrainingConfig(batch_size=4, epochs=epochs),
        ArtifactStore(tempfile.gettempdir()),  # never written: no checkpoints are saved
    )
    fit_model(
        job,
        on_epoch=lambda record: ends.append(time.perf_counter()),
        save_checkpoint=lambda model: FileRef(path="-", sha256="-", size=0),
    )
    steps = -(-len(arrays.x) // 4)
    return {"Keras fit on TensorFlow (fit_model)": epoch_seconds(ends) / steps * 1e6}


def jax_child(epochs: int) -> dict[str, float]:
    """The JAX loop: the epoch program for 1 and 3 members, then fit_model_jax's whole epoch."""
    from benchmarks import jax_programs
    from schemas.config import ModelConfig, TrainingConfig
    from tasks.storage.store import ArtifactStore
    from tasks.training.jax_fit import fit_model_jax
    from tasks.training.job import FitJob

    arrays, validation = jax_programs.tutorial_arrays(), jax_programs.tutorial_arrays(63, seed=1)
    figures = {}
    for members, name in ((1, "JAX loop, 1 member"), (3, "JAX loop, 3 members vmapped (all 3)")):
        program = jax_programs.build_program(arrays, members, batch_size=4)
        figures[name] = jax_programs.time_epochs(program, epochs)["us_per_step"]
    # The same MLP and step written in plain JAX: the floor of this JAX version's CPU runtime.
    floor = jax_programs.handwritten_program(arrays)
    figures["hand-written JAX, same MLP (no Keras)"] = jax_programs.time_epochs(floor, epochs)[
        "us_per_step"
    ]
    floor_3 = jax_programs.handwritten_program(arrays, members=3)
    figures["hand-written JAX, 3 members vmapped (all 3)"] = jax_programs.time_epochs(
        floor_3, epochs
    )["us_per_step"]
    ends: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        training = TrainingConfig(batch_size=4, epochs=epochs, backend="jax")
        job = FitJob(
            arrays.x,
            arrays.y,
            validation.x,
            validation.y,
            ModelConfig(),
            training,
            ArtifactStore(Path(scratch)),
        )
        fit_model_jax(job, on_epoch=lambda record: ends.append(time.perf_counter()))
    steps = -(-len(arrays.x) // 4)
    figures["fit_model_jax, whole epoch (+ validation, checkpoint)"] = (
        epoch_seconds(ends) / steps * 1e6
    )
    return figures


def child(backend: str, epochs: int) -> None:
    """Run one backend's measurements in this process and print them as one JSON line."""
    os.environ["KERAS_BACKEND"] = backend  # this process is the benchmark's own child
    figures = tensorflow_child(epochs) if backend == "tensorflow" else jax_child(epochs)
    print(json.dumps(figures))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="1 repetition of 3 epochs (CI)")
    parser.add_argument("--child", choices=("tensorflow", "jax"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    epochs, reps = (3, 1) if args.quick else (args.epochs, args.repetitions)
    if args.child:
        child(args.child, epochs)
        return {}
    results: dict[str, list[float]] = {}
    for _ in range(reps):
        for backend in ("tensorflow", "jax"):
            argv_child = [PYTHON, "-m", "benchmarks.step_time", "--child", backend]
            done = run_child([*argv_child, "--epochs", str(epochs)], env=child_env())
            if done["code"] != 0:
                raise SystemExit(f"{backend} child failed:\n{done['stderr'][-3000:]}")
            for name, value in json.loads(done["stdout"].strip().splitlines()[-1]).items():
                results.setdefault(name, []).append(value)
    medians = {name: median(values) for name, values in results.items()}
    floor = medians["JAX loop, 1 member"]
    rows = [
        (
            name,
            value,
            value / floor,
            min(results[name]),
            f"≤ {TARGETS[name]:.0f}" if name in TARGETS else "",
            " ".join(f"{v:.1f}" for v in results[name]),
        )
        for name, value in medians.items()
    ]
    print_table(
        f"µs per step at batch 4, tutorial MLP, 631 rows, {epochs} epochs, median of {reps} "
        f"({machine_note()})",
        # The fastest repetition is the one the machine's other load disturbed least.
        ["how", "µs per step", "x the JAX loop", "fastest repetition", "target", "all repetitions"],
        rows,
    )
    return {"results": results, "medians": medians}


if __name__ == "__main__":
    main(sys.argv[1:])
