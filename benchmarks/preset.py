"""The forecaster preset through the product: ``bikeflow run --preset forecaster``, 5 seeds.

A thin caller of the retrain flow: each procedure seed is one run of the flow with the
preset's config (``schemas/presets/forecaster.yaml``) and ``training.seed`` = that seed (the
members train with seeds s, s+1000, s+2000). Everything is chosen on training and validation
rows only, by the flow; its test-window scores (the seed's last 100 days) are read back from
the run's metrics.json and predictions.csv, for the report.

    PYTHONPATH=. python benchmarks/preset.py --data ../shared/data/bike-sharing/day.csv
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from schemas.config import RetrainConfig
from schemas.config_presets import preset_values

# The candidates benchmarks/preset_search.py ranks on validation RMSE (each as a 3-member
# ensemble refitted on training+validation rows, the preset's procedure).
ADAM_LONG = {"learning_rate": 0.001, "decay_rate": 0.95, "epochs": 60}
CANDIDATES: dict[str, dict[str, Any]] = {
    "seed-mlp ordinal": {},
    "seed-mlp ordinal log": {"features": {"target_transform": "log"}},
    "seed-mlp one-hot log": {"features": {"encoding": "one-hot", "target_transform": "log"}},
    "two-input one-hot log": {
        "features": {"encoding": "one-hot", "target_transform": "log"},
        "model": {"architecture": "two-input"},
    },
    # Adam with a slowly decaying rate keeps learning past the seed's ~6 useful epochs.
    "adam one-hot log": {
        "features": {"encoding": "one-hot", "target_transform": "log"},
        "model": {"architecture": "adam"},
        "training": ADAM_LONG,
    },
    "adam one-hot sqrt": {
        "features": {"encoding": "one-hot", "target_transform": "sqrt"},
        "model": {"architecture": "adam"},
        "training": ADAM_LONG,
    },
    "adam one-hot log holidays": {
        "features": {"encoding": "one-hot", "target_transform": "log", "holidays": "us-federal"},
        "model": {"architecture": "adam"},
        "training": ADAM_LONG,
    },
    "two-input one-hot log holidays": {
        "features": {"encoding": "one-hot", "target_transform": "log", "holidays": "us-federal"},
        "model": {"architecture": "two-input"},
        "training": {"optimizer": "adam", **ADAM_LONG},
    },
}
ENSEMBLE = {"ensemble_size": 3, "refit": True}

# The preset: the candidate with the lowest validation RMSE in benchmarks/preset_search.py
# (BENCHMARKS.md has the ranking), as a 3-member ensemble refitted on training+validation.
PRESET_CANDIDATE = "two-input one-hot log holidays"
PRESET: dict[str, Any] = preset_values("forecaster")
PROCEDURE_SEEDS = (0, 1, 2, 3, 4)
SANDY_DAY = "2012-10-29"


def procedure_config(
    data: Path, seed: int, work: Path, fields: dict[str, Any] | None = None
) -> RetrainConfig:
    """The config of one run: the preset (or ``fields``), this seed, folders under ``work``."""
    given = {"preset": "forecaster"} if fields is None else fields
    training = {**given.get("training", {}), "seed": seed}
    return RetrainConfig.model_validate(
        {
            **given,
            "training": training,
            "source": str(data),
            # One store for every run: the data steps are computed once and shared (cached).
            "store_root": str(work / "store"),
            "output_dir": str(work / "runs" / f"seed-{seed}"),
            "registry_root": str(work / "models" / f"seed-{seed}"),
        }
    )


def run_procedure(config: RetrainConfig) -> dict[str, Any]:
    """One run of the retrain flow; its validation and test scores, in bikes, from its outputs."""
    from flows.retrain import retrain

    summary = retrain(config)
    output = Path(summary.output_dir)
    metrics = json.loads((output / "metrics.json").read_text())
    predictions = pd.read_csv(output / "predictions.csv")
    kept = predictions[predictions["date"] != SANDY_DAY]
    return {
        "seed": config.training.seed,
        "epochs": [member["best_epoch"] for member in metrics["members"]],
        "val": {"rmse": metrics["val_rmse"], "mae": metrics["val_mae"]},
        "test": {name: metrics[f"test_{name}"] for name in ("rmse", "mae", "r2", "wape")},
        "test_without_sandy_rmse": float(((kept["predicted"] - kept["actual"]) ** 2).mean() ** 0.5),
        "baselines": metrics["baselines"],
        "training_seconds": metrics["training_seconds"],
    }


def run_preset(
    data: Path,
    seeds: tuple[int, ...] = PROCEDURE_SEEDS,
    fields: dict[str, Any] | None = None,
    work: Path | None = None,
) -> dict[str, Any]:
    """Run the flow once per procedure seed; return every run and the median test RMSE."""
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        runs = [run_procedure(procedure_config(data, s, Path(scratch), fields)) for s in seeds]
    rmse = [run["test"]["rmse"] for run in runs]
    mae = [run["test"]["mae"] for run in runs]
    return {
        "preset": PRESET if fields is None else fields,
        "runs": runs,
        "median_test_rmse": statistics.median(rmse),
        "min_test_rmse": min(rmse),
        "max_test_rmse": max(rmse),
        "mean_test_rmse": statistics.fmean(rmse),
        "std_test_rmse": statistics.pstdev(rmse),
        "mean_test_mae": statistics.fmean(mae),
        "std_test_mae": statistics.pstdev(mae),
        "baselines": runs[0]["baselines"],
    }


def main() -> None:
    """Print the preset's scores over the procedure seeds as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="path of the real day.csv")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated procedure seeds")
    args = parser.parse_args()
    # As bikeflow run does: the embedded API server may start slowly on a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("BIKEFLOW_ROOTS", os.pathsep.join([os.getcwd(), tempfile.gettempdir()]))
    seeds = tuple(int(seed) for seed in args.seeds.split(","))
    print(json.dumps(run_preset(args.data.resolve(), seeds), indent=2))


if __name__ == "__main__":
    main()
