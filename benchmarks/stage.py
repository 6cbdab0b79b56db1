"""Run one pipeline stage in this process and print its time and peak memory as JSON.

Usage: python -m benchmarks.stage STAGE WORKDIR [options]. The scale benchmark runs every
stage in a fresh process so that each stage's peak resident memory is its own. Stages read
the previous stage's result descriptor from WORKDIR and write their own there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _peak_mib() -> float:
    # VmHWM belongs to this process image; ru_maxrss would carry over the parent's peak
    # across fork and exec (the benchmark's parent grows while it generates the data).
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    """Run the named stage and print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("stage", choices=["ingest", "validate", "split", "normalise", "train"])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--source", default="")
    parser.add_argument("--granularity", default="day")
    parser.add_argument("--test-days", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args(argv)

    # Imports are paid before the clock starts and are reported apart (baseline memory).
    from prefect.logging import disable_run_logger

    from schemas.config import ModelConfig, SplitConfig, TrainingConfig
    from schemas.records import feature_columns
    from tasks.prepare.ingest import fetch_source
    from tasks.prepare.normalise import NormalisedData, normalise_features
    from tasks.prepare.split import split_by_date
    from tasks.prepare.validate import minimum_rows, validate_table
    from tasks.storage.descriptors import RawData, SplitPlan
    from tasks.storage.store import ArtifactStore, load_array
    from tasks.storage.table import TableData

    workdir: Path = args.workdir
    store = ArtifactStore(workdir / "store")
    baseline = _peak_mib()
    extra: dict[str, Any] = {}

    def load(name: str, model: Any) -> Any:
        return model.model_validate_json((workdir / f"{name}.json").read_text())

    def save(name: str, value: Any) -> None:
        (workdir / f"{name}.json").write_text(value.model_dump_json())

    started = time.perf_counter()
    if args.stage == "ingest":
        save("raw", fetch_source(args.source, store, f"{args.granularity}.csv"))
    elif args.stage == "validate":
        raw = load("raw", RawData)
        arrays, validator = validate_table(
            Path(raw.table.path), raw.source, minimum_rows(args.test_days), args.granularity, store
        )
        if arrays is None:
            raise SystemExit(f"validation failed: {validator.report.failures[:3]}")
        dates = load_array(arrays["dates"], mmap=True)
        table = TableData(
            source=raw.source,
            source_sha256=raw.table.sha256,
            rows=len(dates),
            first_date=str(dates[0]),
            last_date=str(dates[-1]),
            feature_names=feature_columns(args.granularity),
            dates=arrays["dates"],
            features=arrays["features"],
            target=arrays["target"],
            report=store.put_json(validator.report.to_json()),
            granularity=args.granularity,
            stations=arrays.get("stations"),
        )
        save("table", table)
        extra = {"rows": validator.report.rows, **validator.seconds}
    elif args.stage == "split":
        with disable_run_logger():
            plan = split_by_date.fn(load("table", TableData), SplitConfig(test_days=args.test_days))
        save("plan", plan)
    elif args.stage == "normalise":
        with disable_run_logger():
            data = normalise_features.fn(
                load("table", TableData), load("plan", SplitPlan), str(store.root)
            )
        save("data", data)
    else:
        from tasks.training.task import FitJob, StationInputs, fit_model

        data = load("data", NormalisedData)
        arrays_ = [
            load_array(getattr(data, name), mmap=True)
            for name in ("x_train", "y_train", "x_validation", "y_validation")
        ]
        stations = None
        vocabulary = data.statistics.stations
        if vocabulary and data.station_train and data.station_validation:
            # As the pipeline trains: per-station data gets the station embedding.
            stations = StationInputs(
                train=load_array(data.station_train, mmap=True),
                validation=load_array(data.station_validation, mmap=True),
                rows=vocabulary.size,
            )
        x_train, y_train, x_validation, y_validation = arrays_
        training = TrainingConfig(batch_size=args.batch_size, epochs=1)
        run = fit_model(
            FitJob(
                x_train,
                y_train,
                x_validation,
                y_validation,
                ModelConfig(),
                training,
                store,
                stations=stations,
            )
        )
        extra = {
            "fit_seconds": run.seconds,
            "train_rows": len(arrays_[0]),
            "stations": 0 if vocabulary is None else len(vocabulary.ids),
        }
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "stage": args.stage,
                "seconds": seconds,
                "peak_mib": _peak_mib(),
                "baseline_mib": baseline,
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
