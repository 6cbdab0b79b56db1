"""Benchmark 1: the plain Keras script vs ``bikeflow run`` cold and warm, embedded and server.

Usage: python -m benchmarks.orchestration [--quick] [--repetitions N] [--source DAY_CSV]
       [--preset forecaster]

Each repetition runs, one after the other: the plain script (``benchmarks/plain_keras.py``);
``bikeflow run`` cold (a fresh artifact store) and warm (the same store again: every step
Cached) on Prefect's embedded default (a temporary API server per run); and the same two
against a running local ``prefect server`` (started here on a loopback port with its own
PREFECT_HOME, stopped at the end). Every run is a fresh process, timed from start to exit.
Without --source the data are generated (731 days), so the benchmark runs anywhere.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    PYTHON,
    ROOT,
    child_env,
    interleave,
    machine_note,
    median,
    print_table,
    run_child,
)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def prefect_server(home: Path, **settings: str) -> Iterator[str]:
    """Start ``prefect server start`` on 127.0.0.1 with its own PREFECT_HOME; yield its API URL.

    ``settings`` are more server settings (e.g. PREFECT_API_DATABASE_CONNECTION_URL).
    """
    port = free_port()
    env = child_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", **settings)
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [PYTHON, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if process.poll() is not None:
                raise SystemExit(f"prefect server exited: {(home / 'server.log').read_text()}")
            time.sleep(0.5)
        else:
            raise SystemExit("prefect server did not start in 180 s")
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short repetition (CI)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--source", default=None)
    parser.add_argument("--preset", default=None, help="bikeflow run --preset (e.g. forecaster)")
    parser.add_argument(
        "--embedded-only", action="store_true", help="skip the runs against a prefect server"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bikeflow-orch-"))
    try:
        return _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from schemas.synthetic import make_day_frame, to_csv_bytes

    source = args.source
    if source is None:
        source = str(work / "day.csv")
        Path(source).write_bytes(to_csv_bytes(make_day_frame(731, seed=0)))
    reps = 1 if args.quick else args.repetitions
    extra = ["--epochs", "1"] if args.quick else []
    extra += ["--preset", args.preset] if args.preset else []
    embedded_home = work / "embedded-home"
    embedded_home.mkdir()
    embedded = child_env(PREFECT_HOME=str(embedded_home))
    embedded.pop("PREFECT_API_URL", None)
    counter = iter(range(10**6))

    def bikeflow(env: dict[str, str], store: Path, flags: list[str] | None = None) -> float:
        argv = [PYTHON, "-m", "flows.cli", "run", "--source", source, "--store-root", str(store)]
        argv += ["--output-dir", str(work / f"out-{next(counter)}"), *(flags or extra)]
        # One registry per store: otherwise a later cold run's model becomes champion and the
        # warm rerun of an earlier store must load TensorFlow to re-score both for promotion.
        argv += ["--registry-root", f"{store}-registry"]
        done = run_child(argv, env=env)
        if done["code"] != 0:
            raise SystemExit(f"bikeflow run failed:\n{done['stderr'][-3000:]}")
        return float(done["seconds"])

    def plain() -> float:
        if args.quick:
            return 0.0
        argv = [PYTHON, str(ROOT / "benchmarks" / "plain_keras.py"), source, str(work / "plain")]
        done = run_child(argv, env=child_env())
        if done["code"] != 0:
            raise SystemExit(f"plain script failed:\n{done['stderr'][-3000:]}")
        return float(done["seconds"])

    # Not measured: the first use of a PREFECT_HOME creates its database (one short epoch).
    # Quick mode's figures mean nothing anyway, so it skips this.
    if not args.quick:
        bikeflow(embedded, work / "store-warmup", ["--epochs", "1"])
    server_home = work / "server-home"
    server_home.mkdir()
    with prefect_server(server_home) as url:
        served = child_env(PREFECT_HOME=str(server_home), PREFECT_API_URL=url)
        stores = {"embedded": work / "store-e", "server": work / "store-s"}

        def cold(kind: str, env: dict[str, str]) -> float:
            shutil.rmtree(stores[kind], ignore_errors=True)
            # A fresh folder name as well, so no cache record can match (keys hold the path).
            stores[kind] = work / f"store-{kind}-{next(counter)}"
            return bikeflow(env, stores[kind])

        runs = {
            "plain Keras script": plain,
            "bikeflow cold, embedded": lambda: cold("embedded", embedded),
            "bikeflow warm, embedded": lambda: bikeflow(embedded, stores["embedded"]),
            "bikeflow cold, server": lambda: cold("server", served),
            "bikeflow warm, server": lambda: bikeflow(served, stores["server"]),
        }
        if args.embedded_only:
            runs = {name: run for name, run in runs.items() if "server" not in name}
        times = interleave(runs, reps)
    m = {name: median(values) for name, values in times.items()}
    plain_s = m["plain Keras script"] or float("nan")
    rows = []
    for name, seconds in m.items():
        kind = "embedded" if "embedded" in name else "server"
        cold_s = m.get(f"bikeflow cold, {kind}", float("nan"))
        rows.append(
            (
                name,
                seconds,
                seconds / plain_s,
                seconds / cold_s if "warm" in name else "",
                " ".join(f"{v:.1f}" for v in times[name]),
            )
        )
    print_table(
        f"Orchestration overhead, median of {reps} ({machine_note()})",
        ["run", "seconds", "x plain", "x cold", "all repetitions (s)"],
        rows,
    )
    return {"times": times}


if __name__ == "__main__":
    main()
