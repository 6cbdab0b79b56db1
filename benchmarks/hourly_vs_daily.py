"""Hourly predictions summed to days vs the daily model, on the same 100 test days.

Usage: python -m benchmarks.hourly_vs_daily DATA_DIR [--epochs N] [--batch-size B]

Runs ``bikeflow run`` on DATA_DIR/day.csv and on DATA_DIR/hour.csv (``--granularity hour``)
with the same config, sums the hourly model's test predictions per date, and scores both
against the daily counts (hour.csv's counts add up to day.csv's) of the same test days.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import PYTHON, child_env, print_table, run_child


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both pipelines and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bikeflow-hvd-"))
    outputs = {}
    for granularity in ("day", "hour"):
        out = work / granularity
        argv_ = [PYTHON, "-m", "flows.cli", "run", "--granularity", granularity]
        argv_ += ["--source", str(args.data_dir / f"{granularity}.csv"), "--output-dir", str(out)]
        argv_ += ["--store-root", str(work / "store"), "--epochs", str(args.epochs)]
        argv_ += ["--batch-size", str(args.batch_size)]
        done = run_child(argv_, env=child_env())
        if done["code"] != 0:
            raise SystemExit(f"{granularity} run failed:\n{done['stderr'][-3000:]}")
        outputs[granularity] = out
    daily = pd.read_csv(outputs["day"] / "predictions.csv")
    hourly = pd.read_csv(outputs["hour"] / "predictions.csv")
    summed = hourly.groupby("date", as_index=False)[["actual", "predicted"]].sum()
    merged = daily.merge(summed, on="date", suffixes=("_day", "_hours"))
    assert len(merged) == len(daily), "the two test windows cover different days"
    actual = merged["actual_day"].to_numpy(float)
    rows = []
    scores = {}
    for name, predicted in (
        ("daily model", merged["predicted_day"].to_numpy(float)),
        ("hourly model, summed per day", merged["predicted_hours"].to_numpy(float)),
    ):
        error = predicted - actual
        rmse, mae = float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))
        scores[name] = {"rmse": rmse, "mae": mae}
        rows.append((name, rmse, mae))
    hour_metrics = json.loads((outputs["hour"] / "metrics.json").read_text())
    print_table(
        f"Test days {merged['date'].iloc[0]} .. {merged['date'].iloc[-1]} ({len(merged)} days), "
        f"{args.epochs} epochs, batch {args.batch_size}; hourly test RMSE per hour "
        f"{hour_metrics['test_rmse']:.0f}",
        ["predictor", "daily RMSE", "daily MAE"],
        rows,
    )
    return scores


if __name__ == "__main__":
    main()
