"""Seconds of one forecaster-shaped JAX group: 3 members, 60 epochs, two-input, Adam, batch 4.

``PYTHONPATH=$PWD .venv/bin/python -m benchmarks.forecaster_group [--repetitions 3]`` trains
the group with ``tasks.training.jax_fit.fit_members`` into a scratch store, with its journals
(as the training child does) and ``training.keep_checkpoints: chosen`` retention after, and
prints the wall seconds and the ``.keras`` files the store holds at the end. Synthetic rows
(600 training, 90 validation, 30 features), so it runs anywhere JAX does.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from statistics import median

os.environ.setdefault("KERAS_BACKEND", "jax")


def one_group(scratch: Path, epochs: int) -> tuple[float, int]:
    """Train the group once; its seconds (training and retention) and the .keras files kept."""
    import numpy as np

    from schemas.config import ModelConfig, TrainingConfig
    from tasks.storage.store import ArtifactStore
    from tasks.training.jax_fit import fit_members
    from tasks.training.job import EpochJournal, FitJob
    from tasks.training.retention import retain_checkpoints

    generator = np.random.default_rng(0)
    x = generator.standard_normal((690, 30)).astype(np.float32)
    y = (np.tanh(x[:, :3].sum(axis=1, keepdims=True)) + 0.3 * x[:, -2:-1]).astype(np.float32)
    store = ArtifactStore(scratch)
    jobs = [
        FitJob(
            x[:600],
            y[:600],
            x[600:],
            y[600:],
            ModelConfig(architecture="two-input"),
            TrainingConfig(
                optimizer="adam",
                learning_rate=0.001,
                decay_rate=0.95,
                epochs=epochs,
                batch_size=4,
                seed=seed,
                backend="jax",
            ),
            store,
            journal=EpochJournal(store, f"{scratch.name}member{seed}".replace("_", ""), "jax"),
        )
        for seed in range(3)
    ]
    started = time.perf_counter()
    runs = fit_members(jobs)
    for job, run in zip(jobs, runs, strict=True):
        retain_checkpoints(job, run)
    seconds = time.perf_counter() - started
    return seconds, len(list(store.objects.glob("*/*.keras")))


def main() -> None:
    """Time the group ``--repetitions`` times (a fresh store each) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    seconds, kept = [], 0
    for _ in range(args.repetitions):
        with tempfile.TemporaryDirectory() as scratch:
            took, kept = one_group(Path(scratch), args.epochs)
            seconds.append(took)
    print(json.dumps({"seconds": seconds, "median": median(seconds), "keras_files": kept}))


if __name__ == "__main__":
    main()
