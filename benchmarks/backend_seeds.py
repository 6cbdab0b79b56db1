"""Evidence for the default backend: TensorFlow and JAX over 5 seeds, seed recipe and forecaster.

Usage: PYTHONPATH=. python -m benchmarks.backend_seeds --data ../shared/data/bike-sharing/day.csv
       [--seeds 0,1,2,3,4] [--recipes seed,forecaster] [--backends tensorflow,jax] [--json F]
       python -m benchmarks.backend_seeds --report F [F ...]   (the tables of saved runs)

Each (recipe, backend, seed) is one run of the retrain flow (``benchmarks/preset.py``'s
``run_preset``: in this process, one store per recipe and backend, so the data steps run once
each) with ``training.backend`` set; the validation and test RMSE come from the run's
metrics.json. Prints one table per recipe, the backends side by side, and whether JAX is as
good: its validation and test medians within TensorFlow's seed spread or below it (at most
TensorFlow's worst seed), the rule that chooses the default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine_note, print_table

RECIPES: dict[str, dict[str, Any]] = {"seed": {}, "forecaster": {"preset": "forecaster"}}


def run_recipe(
    data: Path, recipe: str, backend: str, seeds: tuple[int, ...], epochs: int | None = None
) -> dict[str, Any]:
    """Run the flow for every seed of one recipe on one backend; the runs and their spread."""
    from benchmarks.preset import run_preset

    given = RECIPES[recipe]
    training = {**given.get("training", {}), "backend": backend}
    if epochs is not None:
        training["epochs"] = epochs
    fields = {**given, "training": training}
    started = time.perf_counter()
    result = run_preset(data, seeds, fields)
    runs = [
        {
            "seed": run["seed"],
            "epochs": run["epochs"],
            "val_rmse": run["val"]["rmse"],
            "test_rmse": run["test"]["rmse"],
            "test_mae": run["test"]["mae"],
            "training_seconds": run["training_seconds"],
        }
        for run in result["runs"]
    ]
    return {
        "recipe": recipe,
        "backend": backend,
        "seconds": time.perf_counter() - started,
        "machine": machine_note(),  # the load at the end of these runs
        "runs": runs,
    }


def spread(values: list[float]) -> str:
    """Median (min to max) ± population std, in bikes."""
    return (
        f"{statistics.median(values):,.0f} ({min(values):,.0f} to {max(values):,.0f}) "
        f"± {statistics.pstdev(values):,.0f}"
    )


def report(results: list[dict[str, Any]]) -> dict[str, bool]:
    """Print one table per recipe, backends side by side; return JAX-within-spread per recipe."""
    verdicts = {}
    for recipe in dict.fromkeys(r["recipe"] for r in results):
        blocks = {r["backend"]: r for r in results if r["recipe"] == recipe}
        backends = list(blocks)
        seeds = [run["seed"] for run in blocks[backends[0]]["runs"]]
        rows = []
        for index, seed in enumerate(seeds):
            row: list[Any] = [seed]
            for backend in backends:
                run = blocks[backend]["runs"][index]
                row += [
                    ", ".join(str(e) for e in run["epochs"]),
                    f"{run['val_rmse']:,.0f}",
                    f"{run['test_rmse']:,.0f}",
                ]
            rows.append(row)
        summary: list[Any] = ["median (min to max) ± std"]
        for backend in backends:
            runs = blocks[backend]["runs"]
            summary += [
                "",
                spread([r["val_rmse"] for r in runs]),
                spread([r["test_rmse"] for r in runs]),
            ]
        rows.append(summary)
        header = ["seed"]
        for backend in backends:
            header += [f"{backend}: epochs (val)", f"{backend}: val RMSE", f"{backend}: test RMSE"]
        print_table(
            f"{recipe} recipe, {len(seeds)} seeds, {' beside '.join(backends)}", header, rows
        )
        for backend in backends:
            seconds = sum(r["training_seconds"] for r in blocks[backend]["runs"])
            print(
                f"{recipe} on {backend}: {blocks[backend]['seconds']:.0f} s for the {len(seeds)} "
                f"runs, of which the members' training {seconds:.0f} s "
                f"({blocks[backend].get('machine', 'load not recorded')})"
            )
        if {"tensorflow", "jax"} <= set(blocks):
            verdicts[recipe] = as_good(blocks["tensorflow"]["runs"], blocks["jax"]["runs"])
            print(
                f"{recipe}: JAX's validation and test medians within or below TensorFlow's seed "
                f"spread (as good): {verdicts[recipe]}"
            )
    return verdicts


def as_good(reference: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> bool:
    """Whether the candidate's validation and test medians are at most the reference's worst
    seed: within its seed spread, or below it (better)."""
    for key in ("val_rmse", "test_rmse"):
        worst = max(r[key] for r in reference)
        if statistics.median(r[key] for r in candidate) > worst:
            return False
    return True


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every recipe on every backend over the seeds; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="day.csv (default: generated)")
    parser.add_argument("--epochs", type=int, default=None, help="override (quick runs only)")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--recipes", default="seed,forecaster")
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--json", type=Path, default=None, help="write results here as they come")
    parser.add_argument(
        "--report", type=Path, nargs="+", help="only print the tables of earlier --json files"
    )
    args = parser.parse_args(argv)
    if args.report:
        # Blocks run in separate processes (e.g. one per recipe and backend, at once).
        results = [block for path in args.report for block in json.loads(path.read_text())]
        report(results)
        return results
    # As bikeflow run does: the embedded API server may start slowly on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("BIKEFLOW_ROOTS", os.pathsep.join([os.getcwd(), tempfile.gettempdir()]))
    seeds = tuple(int(seed) for seed in args.seeds.split(","))
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data
        if data is None:
            from schemas.synthetic import make_day_frame, to_csv_bytes

            data = Path(scratch) / "day.csv"
            data.write_bytes(to_csv_bytes(make_day_frame(731, seed=0)))
        return _run(args, data.resolve(), seeds)


def _run(args: argparse.Namespace, data: Path, seeds: tuple[int, ...]) -> list[dict[str, Any]]:
    results = []
    for recipe in args.recipes.split(","):
        for backend in args.backends.split(","):
            results.append(run_recipe(data, recipe, backend, seeds, args.epochs))
            if args.json is not None:
                args.json.write_text(json.dumps(results, indent=2))
            print(json.dumps(results[-1]), flush=True)
    report(results)
    return results


if __name__ == "__main__":
    main()
