"""Benchmark: Prefect's overhead per flow run with its database on SQLite vs PostgreSQL.

Usage: python -m benchmarks.database_overhead [--quick] [--repetitions N] [--runs R]
    [--clients C] [--source DAY_CSV]

Two ``prefect server`` processes run side by side on loopback, each with its own PREFECT_HOME:
one on Prefect's default SQLite database, one on a throwaway PostgreSQL cluster (Debian's
``postgresql``, started here; as root it runs as the ``postgres`` user). Against each, in
turn (A B A B ...):

- ``noop flow, 1 client``: one process runs R flow runs of an eight-task flow whose tasks do
  nothing, so every second is orchestration (flow and task states, events); seconds per run.
- ``noop flow, C clients``: C such processes at once, the way several workers load one server;
  seconds per run (wall time / all runs).
- ``bikeflow warm``: ``bikeflow run`` with every step Cached (a fresh process: imports included).

The artifact store and the result storage are shared by both servers' runs (one cold run fills
the cache first, not measured), so the warm runs differ only in the server's database.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, child_env, interleave, machine_note, median, print_table
from benchmarks.orchestration import free_port, prefect_server

TASKS = 8


def _noop_runs(runs: int) -> None:
    """Child mode: run the no-op flow ``runs`` times; print the seconds of each as JSON."""
    from prefect import flow, task

    @task
    def step(value: int) -> int:
        return value + 1

    @flow(name="noop")
    def noop() -> int:
        value = 0
        for _ in range(TASKS):
            value = step(value)
        return value

    noop()  # not measured: the first run pays for the client's set-up
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        assert noop() == TASKS
        seconds.append(time.perf_counter() - started)
    print(json.dumps(seconds))


def _clients(env: dict[str, str], clients: int, runs: int) -> float:
    """Run ``clients`` no-op processes at once; return wall seconds per flow run (after set-up)."""
    argv = [PYTHON, "-m", "benchmarks.database_overhead", "--child", str(runs)]
    processes = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(clients)
    ]
    per_run = []
    for process in processes:
        out, err = process.communicate(timeout=1800)
        if process.returncode != 0:
            raise SystemExit(f"noop flow failed:\n{err[-3000:]}")
        per_run.append(json.loads(out.strip().splitlines()[-1]))
    # The clients run side by side: the slowest one's total over all runs made.
    return max(sum(values) for values in per_run) / (clients * runs)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short repetition (CI)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10, help="flow runs per client")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--source", default=None)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _noop_runs(args.child)
        return {}
    work = Path(tempfile.mkdtemp(prefix="bikeflow-db-"))
    try:
        return _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from benchmarks.postgres import postgres_cluster
    from schemas.synthetic import make_day_frame, to_csv_bytes

    source = args.source
    if source is None:
        source = str(work / "day.csv")
        Path(source).write_bytes(to_csv_bytes(make_day_frame(731, seed=0)))
    reps, runs, clients = (1, 2, 2) if args.quick else (args.repetitions, args.runs, args.clients)
    store, results = work / "store", work / "results"
    counter = iter(range(10**6))

    def bikeflow(env: dict[str, str]) -> float:
        argv = [PYTHON, "-m", "flows.cli", "run", "--source", source, "--store-root", str(store)]
        argv += ["--output-dir", str(work / f"out-{next(counter)}")]
        argv += ["--registry-root", str(work / "registry"), "--epochs", "1"]
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"bikeflow run failed:\n{done.stderr[-3000:]}")
        return time.perf_counter() - started

    homes = {name: work / f"home-{name}" for name in ("sqlite", "postgresql")}
    for home in homes.values():
        home.mkdir()
    with (
        postgres_cluster(free_port()) as (database_url, _),
        prefect_server(homes["sqlite"]) as sqlite_api,
        prefect_server(
            homes["postgresql"], PREFECT_API_DATABASE_CONNECTION_URL=database_url
        ) as postgres_api,
    ):
        envs = {
            name: child_env(
                PREFECT_HOME=str(homes[name]),
                PREFECT_API_URL=api,
                PREFECT_LOCAL_STORAGE_PATH=str(results),
                PREFECT_LOGGING_LEVEL="WARNING",
            )
            for name, api in (("sqlite", sqlite_api), ("postgresql", postgres_api))
        }
        bikeflow(envs["sqlite"])  # the cold run that fills the shared cache (not measured)
        measured = {}
        for name, env in envs.items():
            measured[f"noop flow, 1 client | {name}"] = lambda env=env: _clients(env, 1, runs)
            measured[f"noop flow, {clients} clients | {name}"] = lambda env=env: _clients(
                env, clients, runs
            )
            measured[f"bikeflow warm | {name}"] = lambda env=env: bikeflow(env)
        order = sorted(measured, key=lambda key: key.split(" | ")[0])
        times = interleave({key: measured[key] for key in order}, reps)
    m = {name: median(values) for name, values in times.items()}
    rows = []
    for workload in dict.fromkeys(key.split(" | ")[0] for key in order):
        sqlite_s, postgres_s = m[f"{workload} | sqlite"], m[f"{workload} | postgresql"]
        rows.append((workload, sqlite_s, postgres_s, postgres_s / sqlite_s))
    per = f"{TASKS}-task no-op flow, {runs} runs per client"
    print_table(
        f"Prefect overhead per flow run, SQLite vs PostgreSQL, median of {reps} "
        f"({per}; {machine_note()})",
        ["workload (seconds per run)", "SQLite", "PostgreSQL", "x SQLite"],
        rows,
    )
    return {"times": times, "medians": m}


if __name__ == "__main__":
    main(sys.argv[1:])
