"""Benchmark 3 and 4: time and peak memory of every stage as the data grows.

Usage: python -m benchmarks.scale [--quick] [--workdir DIR] [--only day|hour]

Generates K stations x 2 years of daily records (K = 1, 10, 100, 1000) and hourly records for
K = 1000 (about 17.5M rows), then runs ingest, validate, split, normalise and one training
epoch at batch 1024, each stage in a fresh process (so its peak memory is its own). Prints
seconds and peak RSS per stage, seconds per million rows (flat = linear growth), and the
share of the pre-training time spent in pandera's schema checks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, child_env, machine_note, print_table, run_child

STAGES = ("ingest", "validate", "split", "normalise", "train")
PRE_TRAINING = STAGES[:4]


def run_size(
    workdir: Path, granularity: str, stations: int, days: int, test_days: int, train: bool = True
) -> dict[str, Any]:
    """Generate one data set (cached on disk) and run every stage on it."""
    from schemas.synthetic import write_records_csv

    data = workdir / "data" / f"{granularity}-K{stations}-{days}d.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        started = time.perf_counter()
        partial = data.with_suffix(".partial")
        write_records_csv(partial, days, stations, granularity)  # type: ignore[arg-type]
        partial.rename(data)
        print(f"generated {data.name} in {time.perf_counter() - started:.0f} s", flush=True)
    run_dir = workdir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    results: dict[str, Any] = {"granularity": granularity, "stations": stations, "days": days}
    for stage in STAGES if train else PRE_TRAINING:
        argv = [PYTHON, "-m", "benchmarks.stage", stage, str(run_dir), "--source", str(data)]
        argv += ["--granularity", granularity, "--test-days", str(test_days)]
        done = run_child(argv, env=child_env())
        if done["code"] != 0:
            raise SystemExit(f"stage {stage} failed:\n{done['stderr'][-3000:]}")
        results[stage] = json.loads(done["stdout"].strip().splitlines()[-1])
        print(f"  {granularity} K={stations} {stage}: {results[stage]}", flush=True)
    results["rows"] = results["validate"]["rows"]
    results["bytes"] = data.stat().st_size
    shutil.rmtree(run_dir, ignore_errors=True)
    return results


def report(results: list[dict[str, Any]]) -> None:
    """Print the per-stage tables."""
    header = ["data", "rows", *(f"{s} s" for s in STAGES), "ingest→normalise s", "peak MiB (stage)"]
    rows = []
    for r in results:
        pre = sum(r[s]["seconds"] for s in PRE_TRAINING)
        ran = [s for s in STAGES if s in r]
        peak = max(r[s]["peak_mib"] for s in ran)
        worst = max(ran, key=lambda s: r[s]["peak_mib"])
        rows.append(
            (
                f"{r['granularity']} K={r['stations']}",
                f"{r['rows']:,}",
                *(r[s]["seconds"] if s in r else "-" for s in STAGES),
                pre,
                f"{peak:,.0f} ({worst})",
            )
        )
    print_table(f"Stage seconds and peak memory ({machine_note()})", header, rows)
    per_million = []
    for r in results:
        million = r["rows"] / 1e6
        per_million.append(
            (
                f"{r['granularity']} K={r['stations']}",
                *(r[s]["seconds"] / million for s in ("ingest", "validate", "normalise")),
                r["train"]["fit_seconds"] / (r["train"]["train_rows"] / 1e6)
                if "train" in r
                else "-",
            )
        )
    print_table(
        "Seconds per million rows (constant = linear growth; small sizes are start-up bound)",
        ["data", "ingest", "validate", "normalise", "train epoch"],
        per_million,
    )
    cost = []
    for r in results:
        v = r["validate"]
        pre = sum(r[s]["seconds"] for s in PRE_TRAINING)
        cost.append(
            (
                f"{r['granularity']} K={r['stations']}",
                v["parse"],
                v["schema"],
                v["sequence"],
                v["seconds"],
                pre,
                f"{100 * v['schema'] / pre:.1f}%",
                f"{100 * v['seconds'] / pre:.1f}%",
                f"{v['peak_mib']:,.0f}",
            )
        )
    print_table(
        "Cost of validation (pandera schema checks vs the whole pre-training time)",
        [
            "data",
            "CSV parse s",
            "pandera s",
            "row order s",
            "validate stage s",
            "pre-training s",
            "pandera share",
            "validate share",
            "validate peak MiB",
        ],
        cost,
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the sizes asked for and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--only", choices=["day", "hour"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    if args.quick:
        sizes = [("day", 1, 150), ("day", 10, 150), ("hour", 3, 150)]  # train on the last
        test_days = 20
    else:
        sizes = [("day", k, 731) for k in (1, 10, 100, 1000)] + [("hour", 1000, 731)]
        test_days = 100
    if args.only:
        sizes = [s for s in sizes if s[0] == args.only]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bikeflow-scale-"))
    # Quick mode trains on the last size only: a TensorFlow start-up per size is most of it.
    results = [
        run_size(workdir, g, k, d, test_days, train=not args.quick or i == len(sizes) - 1)
        for i, (g, k, d) in enumerate(sizes)
    ]
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
