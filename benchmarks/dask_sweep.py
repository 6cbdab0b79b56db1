"""Benchmark: one sweep of 8 trainings on a Dask LocalCluster of 1 worker against 2 workers.

Usage: python -m benchmarks.dask_sweep [--quick] [--repetitions N] [--epochs E] [--json OUT]

Each repetition runs the same sweep (4 zoo models x 2 seeds on 731 generated days) on a
fresh store, once on 1 worker process and once on 2 (interleaved: 1 2 1 2 ...), through the
flow with the task runner ``bikeflow sweep --task-runner dask --local-workers N`` builds.
The time includes starting the cluster. One Prefect server serves every run (a temporary
one unless PREFECT_API_URL is set). Prints the median wall time of each and the ratio, with
the machine's load before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import interleave, machine_note, median, print_table, save_json

ARCHITECTURES = ("seed-mlp", "adam", "dropout", "leaky-relu")
SEEDS = (0, 1)


def sweep_once(
    folder: Path,
    source: Path,
    workers: int,
    epochs: int,
    archs: tuple[str, ...],
    seeds: tuple[int, ...],
) -> float:
    """Run the sweep on ``workers`` Dask worker processes; return wall seconds."""
    from flows.sweep import sweep
    from schemas.config import RetrainConfig, SplitConfig, TrainingConfig
    from schemas.flow_configs import SweepConfig
    from tasks.sweep.resources import make_task_runner

    store = Path(tempfile.mkdtemp(dir=folder))
    base = RetrainConfig(
        source=str(source),
        store_root=str(store / "store"),
        output_dir=str(store / "out"),
        registry_root=str(store / "models"),
        split=SplitConfig(test_days=60),
        training=TrainingConfig(epochs=epochs, batch_size=32),
    )
    config = SweepConfig(
        base=base,
        trials=tuple({"name": a, "model": {"architecture": a}} for a in archs),
        seeds=seeds,
        max_parallel=len(archs) * len(seeds),
        leaderboard_dir=str(store / "board"),
    )
    runner = make_task_runner("dask", None, workers)
    started = time.perf_counter()
    board = sweep.with_options(task_runner=runner)(config)
    seconds = time.perf_counter() - started
    used = {t.worker for t in board.trials}
    assert len(board.trials) == len(archs) * len(seeds) and len(used) == workers, used
    return seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print its table; return the measured times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 trainings of 1 epoch")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from schemas.synthetic import make_day_frame, to_csv_bytes

    archs, seeds, epochs = (
        (ARCHITECTURES[:2], SEEDS[:1], 1) if args.quick else (ARCHITECTURES, SEEDS, args.epochs)
    )
    # A temporary Prefect server for every run, unless one is configured (or under pytest).
    server = (
        contextlib.nullcontext()
        if PREFECT_API_URL.value()
        else prefect_test_harness(server_startup_timeout=120)
    )
    with tempfile.TemporaryDirectory() as tmp, server:
        folder = Path(tmp)
        source = folder / "day.csv"
        source.write_bytes(to_csv_bytes(make_day_frame(731, seed=1)))
        before = machine_note()
        times = interleave(
            {
                "1 worker": lambda: sweep_once(folder, source, 1, epochs, archs, seeds),
                "2 workers": lambda: sweep_once(folder, source, 2, epochs, archs, seeds),
            },
            args.repetitions,
        )
        after = machine_note()
    one, two = median(times["1 worker"]), median(times["2 workers"])
    trainings = len(archs) * len(seeds)
    print_table(
        f"Sweep of {trainings} trainings ({epochs} epochs each) on a Dask LocalCluster",
        ["workers", "wall seconds (median)", "ratio to 1 worker"],
        [["1", one, 1.0], ["2", two, two / one]],
    )
    print(f"\nspeed-up with 2 workers: {one / two:.2f}x")
    print(f"machine before: {before}\nmachine after:  {after}")
    result = {"times": times, "speedup": one / two, "load_before": before, "load_after": after}
    save_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
