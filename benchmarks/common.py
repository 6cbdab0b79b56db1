"""Helpers shared by the benchmarks: interleaved timing, peak memory, and printing ratios."""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def interleave(
    runs: dict[str, Callable[[], float | None]], repetitions: int
) -> dict[str, list[float]]:
    """Run A B C A B C ... ``repetitions`` times; each callable returns seconds (or None = wall)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repetitions):
        for name, run in runs.items():
            started = time.perf_counter()
            measured = run()
            times[name].append(measured if measured is not None else time.perf_counter() - started)
    return times


def median(values: Sequence[float]) -> float:
    """The median (robust to the odd slow repetition on a shared machine)."""
    return float(statistics.median(values))


def run_child(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 3600
) -> dict[str, Any]:
    """Run a command; return wall seconds, peak RSS (MiB) of the child tree, exit code, output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": seconds,
        # ru_maxrss of children is the largest child so far: only exact for the first or a
        # larger one, so the stage benchmarks run each measured stage in a fresh process.
        "peak_mib": max(peak, before) / 1024,
        "code": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
    }


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: this project on PYTHONPATH, quiet TensorFlow."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a markdown table (pasted as is into BENCHMARKS.md)."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [f"{c:,.2f}" if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(cells) + " |")


def machine_note() -> str:
    """One line on the machine and its load while the benchmark ran."""
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, "
        f"python {sys.version.split()[0]}"
    )


def save_json(path: Path | None, data: Any) -> None:
    """Write results as JSON when a path was given."""
    if path is not None:
        path.write_text(json.dumps(data, indent=2))
