"""GPU check: the JAX training code on whatever accelerator JAX sees, beside the CPU.

Usage (from the repository root; needs only JAX, Keras, NumPy and pydantic: no Prefect, no
TensorFlow, so it runs on a machine that has only JAX):

    python benchmarks/gpu_check.py [--epochs 20] [--stations 1000] [--hours 24]
        [--large-batch 4096] [--parity-epochs 3] [--require-accelerator]

Prints, for the first device JAX lists:
- the device (platform, kind, JAX and Keras versions);
- µs per step at batch 4 of the tutorial's MLP on 631 synthetic rows, 1 member and 3
  members vectorised (``jax.vmap``), timed on the trainer's compiled epoch program
  (``tasks.training.jax_steps``);
- samples per second at a large batch on synthetic hourly data of ``--stations`` stations
  (``--hours`` hours each) through the station embedding;
- the parity of a few epochs against the CPU: the trainer (``tasks.training.jax_fit``,
  checkpoints and all) trains the same seed on the device and on the CPU; the largest
  absolute difference of their loss histories and of their last checkpoints' predictions.

Without an accelerator it runs the same figures on the CPU (parity is then CPU against CPU,
which must be 0), says so, and exits 0 (``--require-accelerator``: exits 1 at once instead).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# This script is its own process: Keras must run on JAX, and the choice is made at its import.
os.environ["KERAS_BACKEND"] = "jax"
if __package__ in (None, ""):
    # Run as a file (python benchmarks/gpu_check.py): the project is the folder above.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks import jax_programs

TUTORIAL_MEMBERS = (1, 3)


def describe(device: Any) -> str:
    """One line naming the device and the libraries."""
    import jax
    import keras

    kind = getattr(device, "device_kind", "?")
    return (
        f"{device.platform}:{device.id} ({kind}); jax {jax.__version__}, keras {keras.__version__} "
        f"on {keras.backend.backend()}"
    )


def step_figures(device: Any, epochs: int) -> list[dict[str, Any]]:
    """µs per step at batch 4 of the tutorial MLP, for 1 and 3 vectorised members."""
    import jax

    results = []
    with jax.default_device(device):
        arrays = jax_programs.tutorial_arrays()
        for members in TUTORIAL_MEMBERS:
            program = jax_programs.build_program(arrays, members, batch_size=4)
            results.append({"members": members, **jax_programs.time_epochs(program, epochs)})
    return results


def throughput(device: Any, stations: int, hours: int, batch: int, epochs: int) -> dict[str, Any]:
    """Samples per second of the station-embedding MLP at a large batch."""
    import jax

    with jax.default_device(device):
        arrays = jax_programs.station_arrays(stations, hours)
        program = jax_programs.build_program(arrays, 1, batch_size=batch)
        timed = jax_programs.time_epochs(program, epochs)
    rows = len(arrays.x)
    return {
        "rows": rows,
        "batch": batch,
        **timed,
        "samples_per_second": rows / timed["epoch_seconds"],
    }


def train_on(device: Any, epochs: int, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train the tutorial MLP with the trainer on ``device``; its history and predictions."""
    import jax
    import keras

    from schemas.config import ModelConfig, TrainingConfig
    from tasks.storage.store import ArtifactStore
    from tasks.training.jax_fit import fit_model_jax
    from tasks.training.job import FitJob

    arrays = jax_programs.tutorial_arrays()
    validation = jax_programs.tutorial_arrays(63, seed=1)
    training = TrainingConfig(batch_size=4, epochs=epochs, seed=0, backend="jax")
    job = FitJob(
        arrays.x, arrays.y, validation.x, validation.y, ModelConfig(), training, ArtifactStore(work)
    )
    with jax.default_device(device):
        run = fit_model_jax(job)
    history = np.array([[r.loss, r.val_loss] for r in run.history])
    with jax.default_device(jax.devices("cpu")[0]):
        model = keras.saving.load_model(run.checkpoints[-1].path, safe_mode=True)
        predicted = np.asarray(model.predict(validation.x, verbose=0))
    return history, predicted


def parity(device: Any, epochs: int) -> dict[str, Any]:
    """The trainer's history and predictions on ``device`` against the CPU's, same seed."""
    import jax

    cpu = jax.devices("cpu")[0]
    with tempfile.TemporaryDirectory() as scratch:
        history, predicted = train_on(device, epochs, Path(scratch) / "device")
        cpu_history, cpu_predicted = train_on(cpu, epochs, Path(scratch) / "cpu")
    return {
        "epochs": epochs,
        "history_max_abs": float(np.max(np.abs(history - cpu_history))),
        "prediction_max_abs": float(np.max(np.abs(predicted - cpu_predicted))),
        "final_val_loss": float(history[-1, 1]),
        "final_val_loss_cpu": float(cpu_history[-1, 1]),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the check, print its figures (and a JSON line), return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="timed epochs at batch 4")
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24, help="hours of data per station")
    parser.add_argument("--large-batch", type=int, default=4096)
    parser.add_argument("--throughput-epochs", type=int, default=3)
    parser.add_argument("--parity-epochs", type=int, default=3)
    parser.add_argument("--require-accelerator", action="store_true")
    args = parser.parse_args(argv)
    import jax

    device = jax.devices()[0]
    accelerator = device.platform != "cpu"
    print(f"device: {describe(device)}")
    if not accelerator:
        if args.require_accelerator:
            print("no accelerator was found: JAX sees only the CPU (--require-accelerator)")
            return 1
        print("no accelerator found: JAX sees only the CPU; the figures below are the CPU's")
    steps = step_figures(device, args.epochs)
    for figure in steps:
        print(
            f"batch 4, {figure['members']} member(s), tutorial MLP on "
            f"{jax_programs.TUTORIAL_ROWS} rows: {figure['us_per_step']:.1f} µs per step "
            f"(compile {figure['compile_seconds']:.1f} s)"
        )
    large = throughput(device, args.stations, args.hours, args.large_batch, args.throughput_epochs)
    print(
        f"batch {large['batch']}, {args.stations} stations x {args.hours} hours "
        f"({large['rows']:,} rows, station embedding): {large['samples_per_second']:,.0f} "
        f"samples per second ({large['us_per_step']:.0f} µs per step)"
    )
    same = parity(device, args.parity_epochs)
    against = "the CPU" if accelerator else "a second CPU run"
    print(
        f"parity over {same['epochs']} epochs against {against}: history max |diff| "
        f"{same['history_max_abs']:.2e}, predictions max |diff| {same['prediction_max_abs']:.2e}"
    )
    print(
        json.dumps(
            {
                "device": describe(device),
                "accelerator": accelerator,
                "steps": steps,
                "throughput": large,
                "parity": same,
            }
        )
    )
    if not accelerator:
        print("no accelerator was found (exit 0: nothing failed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
