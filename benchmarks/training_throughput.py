"""Benchmark 2: samples/s of a naive ``model.fit`` vs our trainer (``fit_model``) at batch 4.

Usage: python -m benchmarks.training_throughput [--quick] [--repetitions N] [--epochs E]

Both train the seed's MLP with the seed's optimiser on the same normalised rows (generated
daily records, 731 days, seed split), interleaved A B A B ..., medians reported. The naive fit
is what the seed does: ``model.fit(x, y, batch_size=4, shuffle=True)`` on NumPy arrays. Ours
is ``tasks.training.task.fit_model`` (tf.data with prefetch, several steps per execution). Same
losses: ours with ``steps_per_execution=1`` gives the identical losses as ours with more (same
data order), and the naive fit's final losses are shown beside ours (different shuffles).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import numpy as np

from benchmarks.common import interleave, machine_note, median, print_table

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_arrays(days: int) -> tuple[np.ndarray, ...]:
    """Normalised train/validation rows of generated daily data, split as the seed does."""
    from schemas.records import FEATURE_COLUMNS
    from schemas.synthetic import make_day_frame

    frame = make_day_frame(days, seed=0)
    x = frame[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    y = frame[["cnt"]].to_numpy(np.float64)
    test = min(100, days // 4)
    validation = round((days - test) * 0.1)
    train = days - test - validation
    mean, std = x[:train].mean(0), x[:train].std(0)
    std[std == 0] = 1
    x = ((x - mean) / std).astype(np.float32)
    y = ((y - y[:train].mean()) / y[:train].std()).astype(np.float32)
    return x[:train], y[:train], x[train : train + validation], y[train : train + validation]


def naive_fit(arrays: tuple[np.ndarray, ...], epochs: int, batch: int) -> tuple[float, list[float]]:
    """The seed's way: compile and ``fit`` on NumPy arrays; returns (seconds, losses)."""
    import keras

    from schemas.config import ModelConfig, TrainingConfig
    from tasks.models.zoo import build_model, make_optimizer

    x, y, xv, yv = arrays
    training = TrainingConfig(batch_size=batch, epochs=epochs)
    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(), x.shape[1])
    model.compile(
        optimizer=make_optimizer(training, int(np.ceil(len(x) / batch))), loss="mean_squared_error"
    )
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            ends.append(time.perf_counter())

    started = time.perf_counter()
    history = model.fit(
        x,
        y,
        batch_size=batch,
        epochs=epochs,
        shuffle=True,
        validation_data=(xv, yv),
        verbose=0,
        callbacks=[Clock()],
    )
    seconds = time.perf_counter() - started
    steady = ends[-1] - ends[0] if len(ends) > 1 else float("nan")
    return seconds, [history.history["loss"][-1], history.history["val_loss"][-1], steady]


def our_fit(
    arrays: tuple[np.ndarray, ...], epochs: int, batch: int, steps: int, jit: bool
) -> tuple[float, list[float]]:
    """``tasks.training.task.fit_model`` (checkpoints are not saved: the naive fit saves none)."""
    import tasks.training.keras_fit as train
    from schemas.config import ModelConfig, TrainingConfig
    from tasks.storage.store import ArtifactStore, FileRef
    from tasks.training.job import FitJob

    train.STEPS_PER_EXECUTION, train.JIT_COMPILE = steps, jit
    ends: list[float] = []
    x_train, y_train, x_validation, y_validation = arrays
    # The store is never written: the checkpoints go nowhere.
    store = ArtifactStore(tempfile.gettempdir())
    run = train.fit_model(
        FitJob(
            x_train,
            y_train,
            x_validation,
            y_validation,
            ModelConfig(),
            TrainingConfig(batch_size=batch, epochs=epochs),
            store,
        ),
        on_epoch=lambda record: ends.append(time.perf_counter()),
        save_checkpoint=lambda model: FileRef(path="-", sha256="-", size=0),
    )
    history = run.history
    steady = ends[-1] - ends[0] if len(ends) > 1 else float("nan")
    return run.seconds, [
        history[-1].loss,
        history[-1].val_loss,
        steady,
        *(r.loss for r in history),
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI): seconds")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    days, epochs, reps = (200, 2, 1) if args.quick else (731, args.epochs, args.repetitions)
    arrays = make_arrays(days)
    import tensorflow as tf

    # Each run builds a new model: tf.function retracing warnings are expected here.
    tf.get_logger().setLevel("ERROR")
    samples = len(arrays[0]) * epochs
    results: dict[str, list[list[float]]] = {}

    def record(name: str, outcome: tuple[float, list[float]]) -> float:
        results.setdefault(name, []).append(outcome[1])
        return outcome[0]

    batch = args.batch_size
    runs = {
        "naive model.fit": lambda: record("naive model.fit", naive_fit(arrays, epochs, batch)),
        "ours, 1 step/execution": lambda: record(
            "ours, 1 step/execution", our_fit(arrays, epochs, batch, 1, False)
        ),
        "ours (fit_model)": lambda: record(
            "ours (fit_model)", our_fit(arrays, epochs, batch, 256, False)
        ),
        "ours + jit_compile": lambda: record(
            "ours + jit_compile", our_fit(arrays, epochs, batch, 256, True)
        ),
    }
    times = interleave(runs, reps)
    naive = median(times["naive model.fit"])
    steady = {name: median([r[2] for r in outcome]) for name, outcome in results.items()}
    steady_samples = len(arrays[0]) * (epochs - 1)
    rows = []
    for name, values in times.items():
        losses = results[name][-1]
        rows.append(
            (
                name,
                median(values),
                samples / median(values),
                naive / median(values),
                steady_samples / steady[name],
                steady["naive model.fit"] / steady[name],
                f"{losses[0]:.5f}",
                f"{losses[1]:.5f}",
            )
        )
    print_table(
        f"Training throughput, batch {batch}, {len(arrays[0])} rows x {epochs} epochs, "
        f"median of {reps} ({machine_note()})",
        [
            "trainer",
            "fit s (all epochs)",
            "samples/s",
            "x naive",
            "samples/s after epoch 1",
            "x naive after epoch 1",
            "final loss",
            "final val_loss",
        ],
        rows,
    )
    same = results["ours, 1 step/execution"][-1][3:]
    fast = results["ours (fit_model)"][-1][3:]
    gap = float(np.max(np.abs(np.subtract(same, fast)) / np.abs(same)))
    print(f"\nper-epoch loss, 256 vs 1 steps/execution: max relative difference {gap:.2e}")
    return {"times": times, "losses": results, "loss_gap": gap, "samples": samples}


if __name__ == "__main__":
    main()
