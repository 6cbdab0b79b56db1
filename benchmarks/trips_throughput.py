"""Trip history throughput (issue 23): N synthetic trips in monthly files, aggregated per file.

Generates ``--trips`` trips (default 30 million) over the 12 months of 2024, one file a
month, as real archives mix them: current-layout .zip, .csv and .csv.gz files and a legacy
file every fourth month. Then, in a fresh process (so its peak memory is the aggregation's
alone), every file is counted per hour and per station with ``aggregate_trip_file``, the
files are checked for shared rides and the rows are assembled with a weather table. Prints
trips per second and the peak RSS (``ru_maxrss``) of that process, which must stay at or
under 2 GiB.

    .venv/bin/python -m benchmarks.trips_throughput                  # 30M trips
    .venv/bin/python -m benchmarks.trips_throughput --trips 200000   # a quick look
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from benchmarks.common import ROOT, child_env, machine_note, print_table

DEFAULT_TRIPS = 30_000_000
BLOCK_TRIPS = 250_000  # trips generated and written at a time: bounded memory for any N
LIMIT_MIB = 2048
YEAR = 2024
TEXT = np.dtypes.StringDType()
CURRENT_HEADER = (
    "ride_id,rideable_type,started_at,ended_at,start_station_name,start_station_id,"
    "end_station_name,end_station_id,start_lat,start_lng,end_lat,end_lng,member_casual"
)
LEGACY_HEADER = (
    "Duration,Start date,End date,Start station number,Start station,End station number,"
    "End station,Bike number,Member type"
)


def month_shares() -> np.ndarray:
    """A year's trips by month: twice as many in July as in January."""
    shares = 1.0 + 0.5 * np.sin((np.arange(12) - 3) * np.pi / 6)
    return shares / shares.sum()


def file_name(month: int) -> tuple[str, str]:
    """(file name, layout) of a month: mixed containers, legacy every fourth month."""
    layout = "legacy" if month % 4 == 3 else "current"
    suffix = (".zip", ".csv", ".csv.gz")[month % 3]
    return f"{YEAR}{month + 1:02d}-tripdata{suffix}", layout


def _times(seconds: np.ndarray, day_labels: np.ndarray, clock: np.ndarray) -> np.ndarray:
    days = seconds // 86_400
    return np.strings.add(day_labels[days], clock[seconds - days * 86_400])


def block_text(
    rng: np.random.Generator,
    first_second: int,
    span: int,
    count: int,
    first_ride: int,
    layout: str,
    labels: tuple[np.ndarray, np.ndarray],
) -> str:
    """CSV lines of ``count`` trips starting, sorted, in [first_second, first_second + span)."""
    starts = np.sort(rng.integers(first_second, first_second + span, count))
    ends = starts + rng.integers(60, 5400, count)
    start_text, end_text = _times(starts, *labels), _times(ends, *labels)
    station = rng.integers(31000, 31700, count).astype(TEXT)
    member = rng.random(count) < 0.78
    if layout == "legacy":
        parts = [
            (ends - starts).astype(TEXT), ",", start_text, ",", end_text, ",", station,
            ",Somewhere St & 1st St NW,", station, ",Elsewhere,W00001,",
            np.where(member, "Member", "Casual").astype(TEXT),
        ]  # fmt: skip
    else:
        ride = np.strings.zfill(np.arange(first_ride, first_ride + count).astype(TEXT), 16)
        parts = [
            ride, ",classic_bike,", start_text, ",", end_text, ",Somewhere St & 1st St NW,",
            station, ",Elsewhere,", station, ",38.9,-77.0,38.9,-77.0,",
            np.where(member, "member", "casual").astype(TEXT),
        ]  # fmt: skip
    rows = parts[0]
    for part in parts[1:]:
        rows = np.strings.add(rows, part)
    return "\n".join(rows.tolist()) + "\n"


def _open(path: Path, stack: list[Any]) -> IO[bytes]:
    if path.name.endswith(".zip"):
        archive = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        stack.append(archive)
        return archive.open(path.name.removesuffix(".zip") + ".csv", "w", force_zip64=True)
    if path.name.endswith(".gz"):
        return gzip.open(path, "wb", compresslevel=1)
    return open(path, "wb")


def generate(folder: Path, trips: int, seed: int = 0) -> list[Path]:
    """Write ``trips`` synthetic trips as 12 monthly files in ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    epoch = np.datetime64(f"{YEAR}-01-01")
    days = np.arange(epoch, np.datetime64(f"{YEAR + 1}-01-02"))
    day_labels = np.strings.add(np.datetime_as_string(days, unit="D").astype(TEXT), " ")
    clock = np.array(
        [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)], dtype=TEXT
    )
    counts = np.floor(month_shares() * trips).astype(np.int64)
    counts[6] += trips - counts.sum()
    paths, ride = [], 0
    for month in range(12):
        name, layout = file_name(month)
        path = folder / name
        first = int((np.datetime64(f"{YEAR}-{month + 1:02d}-01") - epoch).astype(np.int64))
        following = np.datetime64(
            f"{YEAR + (month == 11)}-{month % 12 + 2 if month < 11 else 1:02d}-01"
        )
        span_days = int((following - epoch).astype(np.int64)) - first
        blocks = max(1, -(-int(counts[month]) // BLOCK_TRIPS))
        stack: list[Any] = []
        handle = _open(path, stack)
        try:
            handle.write(
                ((LEGACY_HEADER if layout == "legacy" else CURRENT_HEADER) + "\n").encode()
            )
            for block in range(blocks):
                size = int(counts[month]) // blocks + (block < int(counts[month]) % blocks)
                span = span_days * 86_400 // blocks
                start = first * 86_400 + block * span
                text = block_text(rng, start, span, size, ride, layout, (day_labels, clock))
                handle.write(text.encode())
                ride += size
        finally:
            handle.close()
            for item in stack:
                item.close()
        paths.append(path)
    return paths


def weather_csv(path: Path, unit: str) -> Path:
    """A weather table for every day (every hour, hourly) of the year, in raw units."""
    rng = np.random.default_rng(1)
    days = pd.date_range(f"{YEAR}-01-01", f"{YEAR}-12-31")
    per_day = 24 if unit == "hour" else 1
    size = len(days) * per_day
    frame = pd.DataFrame({"date": np.repeat(days.strftime("%Y-%m-%d"), per_day)})
    if unit == "hour":
        frame["hour"] = np.tile(np.arange(24), len(days))
    frame["temp_c"] = rng.uniform(1, 38, size).round(1)
    frame["feels_like_c"] = rng.uniform(1, 45, size).round(1)
    frame["humidity_pct"] = rng.uniform(20, 100, size).round(0)
    frame["wind_kmh"] = rng.uniform(0, 50, size).round(1)
    frame["weathersit"] = rng.integers(1, 4, size)
    frame.to_csv(path, index=False)
    return path


def aggregate_all(folder: Path, granularity: str, stations: bool) -> dict[str, Any]:
    """Aggregate every file, check shared rides, assemble: seconds, trips, rows, peak RSS."""
    from tasks.prepare.trips.aggregate import aggregate_trip_file, duplicate_rides
    from tasks.prepare.trips.assemble import assemble_rows
    from tasks.prepare.trips.files import find_trip_files
    from tasks.prepare.trips.weather import read_weather

    unit = "hour" if granularity == "hour" else "day"
    started = time.perf_counter()
    per_file = []
    counts = []
    for path in find_trip_files(folder):
        began = time.perf_counter()
        item = aggregate_trip_file(path, granularity=granularity, stations=stations)  # type: ignore[arg-type]
        per_file.append(
            {"file": path.name, "trips": item.trips, "seconds": time.perf_counter() - began}
        )
        counts.append(item)
    aggregated = time.perf_counter() - started
    aggregate_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shared = duplicate_rides(counts)
    weather = read_weather(weather_csv(folder / "weather.csv.txt", unit), unit)  # type: ignore[arg-type]
    rows = assemble_rows(counts, weather, granularity, stations=stations)  # type: ignore[arg-type]
    total = time.perf_counter() - started
    trips = sum(item.trips for item in counts)
    return {
        "trips": trips,
        "files": len(counts),
        "aggregate_seconds": aggregated,
        "total_seconds": total,
        "trips_per_second": trips / aggregated,
        "rows": len(rows),
        "shared_rides": len(shared),
        "aggregate_peak_mib": aggregate_peak,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "per_file": per_file,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Generate (unless the files are there), aggregate in a child, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=DEFAULT_TRIPS)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bikeflow-trips-bench"))
    parser.add_argument("--granularity", choices=["day", "hour"], default="hour")
    parser.add_argument("--stations", action="store_true", help="count per station too")
    parser.add_argument("--aggregate-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    folder = args.workdir / f"trips-{args.trips}"
    if args.aggregate_only:
        result = aggregate_all(folder, args.granularity, args.stations)
        print(json.dumps(result))
        return result
    marker = folder / "complete"
    generated = 0.0
    if not marker.exists():
        began = time.perf_counter()
        generate(folder, args.trips)
        generated = time.perf_counter() - began
        marker.write_text(str(args.trips))
    command = [sys.executable, "-m", "benchmarks.trips_throughput", "--aggregate-only"]
    command += ["--trips", str(args.trips), "--workdir", str(args.workdir)]
    command += ["--granularity", args.granularity] + (["--stations"] if args.stations else [])
    done = subprocess.run(
        command, cwd=ROOT, env=child_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["generate_seconds"] = generated
    size = sum(
        path.stat().st_size
        for path in folder.iterdir()
        if path.name.endswith((".zip", ".csv", ".gz"))
    )
    per = f"per {args.granularity}" + (" and station" if args.stations else "")
    print_table(
        f"{result['trips']:,} synthetic trips in {result['files']} monthly files "
        f"({size / 2**20:,.0f} MiB), counted {per} ({machine_note()})",
        [
            "trips",
            "aggregate s",
            "trips / s",
            "peak RSS MiB, aggregating",
            "assemble + checks s",
            "rows",
            "peak RSS MiB, all",
            f"≤ {LIMIT_MIB} MiB",
        ],
        [
            [
                f"{result['trips']:,}",
                result["aggregate_seconds"],
                f"{result['trips_per_second']:,.0f}",
                result["aggregate_peak_mib"],
                result["total_seconds"] - result["aggregate_seconds"],
                f"{result['rows']:,}",
                result["peak_mib"],
                "yes" if result["peak_mib"] <= LIMIT_MIB else "NO",
            ]
        ],
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
