"""Cold runs through the flow against the same procedure as a plain Keras script on TensorFlow.

Usage: python -m benchmarks.flow_vs_plain --source DAY_CSV [--repetitions N]
       [--backends tensorflow,jax] [--recipes forecaster,tutorial] [--quick]

Each repetition runs, one after the other (A B A B ...):
- the forecaster as a plain script (``benchmarks/plain_scripts/forecaster.py``: Keras on
  TensorFlow, 3 members one after the other, each refitted, averaged) and ``bikeflow run
  --preset forecaster`` cold, once per backend in ``--backends``;
- the tutorial recipe as a plain script (``benchmarks/plain_keras.py``: batch 4, 15 epochs, a
  checkpoint per epoch) and ``bikeflow run`` (the default recipe) cold, once per backend.

Cold: a fresh store and registry, a new process, Prefect's embedded default (a temporary API
server per run; its PREFECT_HOME's database is created by one unmeasured run first). JAX's
compilation cache is the benchmark's own: with ``--compile-cache shared`` (the default) one
folder, which that first run fills with the tutorial's programs, as a machine's first run does;
with ``fresh`` an empty one for every flow run, so each compiles everything (a first run ever).
Every run is timed from start to exit. Each flow run is ``--verbose``, and its log's timestamps
break its time into parts: imports (start to Prefect's "Starting temporary server", logged once
the flow is imported; the server itself starts at the command's start, ``tasks/head_start.py``),
the rest of the temporary server's start (to the flow run's first line), preparing the data, the
first training child's start (the task before it ends to the child's first log line), training
(every member and refit, children included), evaluate-publish-promote, and shutdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

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

PLAIN = {
    "forecaster": ROOT / "benchmarks" / "plain_scripts" / "forecaster.py",
    "tutorial": ROOT / "benchmarks" / "plain_keras.py",
}
PRESET = {"forecaster": ["--preset", "forecaster"], "tutorial": []}
TARGET = {"forecaster": 0.5, "tutorial": 1.0}
LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \| \w+ +\| (.*)$")
PARTS = (
    "imports",
    "server start",
    "prepare",
    "first child start",
    "training",
    "evaluate to promote",
    "shutdown",
)


def log_times(text: str, day: datetime.date) -> list[tuple[float, str]]:
    """(seconds since the epoch, message) of each timestamped Prefect log line."""
    times = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            clock = datetime.time.fromisoformat(match.group(1))
            moment = datetime.datetime.combine(day, clock).astimezone()
            times.append((moment.timestamp(), match.group(2)))
    # Prefect's log and the progress go to stdout and stderr: in time order again.
    return sorted(times)


def breakdown(text: str, started: float, ended: float) -> dict[str, float]:
    """The flow run's parts, in seconds, from its verbose log (NaN where a mark is missing)."""
    lines = log_times(text, datetime.datetime.fromtimestamp(started).date())

    def first(pattern: str) -> float:
        return next((t for t, m in lines if re.search(pattern, m)), float("nan"))

    def last(pattern: str) -> float:
        return next((t for t, m in reversed(lines) if re.search(pattern, m)), float("nan"))

    server = first(r"Starting temporary server")
    begun = first(r"Beginning flow run")
    prepared = first(r"check_new_data-\w+' - Finished")
    # One child per member on TensorFlow (train_model), one per group of members on JAX.
    child = first(r"(train_model|train_member_group)-\w+' - training")
    trained = last(r"(train_model|train_member_group)-\w+' - Finished")
    finished = last(r"Flow run '[\w-]+' - Finished in state")
    marks = [started, server, begun, prepared, child, trained, finished, ended]
    return {part: b - a for part, a, b in zip(PARTS, marks[:-1], marks[1:], strict=True)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=None, help="day.csv (default: 731 generated days)")
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--backends", default="", help="comma-separated; empty: the default")
    parser.add_argument("--recipes", default="forecaster,tutorial")
    parser.add_argument("--quick", action="store_true", help="2 epochs each (CI): seconds")
    parser.add_argument(
        "--compile-cache",
        choices=("shared", "fresh"),
        default="shared",
        help="JAX's compilation cache: one for the benchmark, warmed by its unmeasured first "
        "run like Prefect's database (shared), or an empty one for every flow run (fresh)",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bikeflow-flow-plain-"))
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
    backends = [b for b in args.backends.split(",") if b] or [""]
    recipes = [r for r in args.recipes.split(",") if r]
    home = work / "prefect-home"
    home.mkdir()
    env = child_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)
    # The benchmark's own compilation cache, never the user's (tasks/training/compile_cache.py).
    env["JAX_COMPILATION_CACHE_DIR"] = str(work / "jax-cache")
    # The plain scripts are Keras on TensorFlow, as written today.
    plain_env = {**env, "KERAS_BACKEND": "tensorflow"}
    env.pop("KERAS_BACKEND", None)
    counter = iter(range(10**6))
    parts: dict[str, list[dict[str, float]]] = {}
    scores: dict[str, list[float]] = {}

    def flow(
        recipe: str, backend: str, epochs: list[str] | None = None, record: bool = True
    ) -> float:
        run = work / f"run-{next(counter)}"
        argv = [PYTHON, "-m", "flows.cli", "run", "--verbose", "--source", source]
        argv += ["--store-root", str(run / "store"), "--output-dir", str(run / "out")]
        argv += ["--registry-root", str(run / "models"), *PRESET[recipe]]
        argv += ["--backend", backend] if backend else []
        argv += epochs if epochs is not None else (["--epochs", "2"] if args.quick else [])
        run_env = env
        if args.compile_cache == "fresh":
            run_env = {**env, "JAX_COMPILATION_CACHE_DIR": str(run / "jax-cache")}
        started = datetime.datetime.now().timestamp()
        done = run_child(argv, env=run_env)
        if done["code"] != 0:
            raise SystemExit(f"bikeflow run failed:\n{done['stderr'][-3000:]}")
        if not record:
            shutil.rmtree(run, ignore_errors=True)
            return float(done["seconds"])
        name = flow_name(recipe, backend)
        log = done["stdout"] + done["stderr"]
        parts.setdefault(name, []).append(breakdown(log, started, started + done["seconds"]))
        metrics = json.loads((run / "out" / "metrics.json").read_text())
        scores.setdefault(name, []).append(float(metrics["test_rmse"]))
        shutil.rmtree(run, ignore_errors=True)
        # Each run as it ends: a long benchmark stopped early still leaves its figures.
        line = {"run": name, "seconds": done["seconds"], "parts": parts[name][-1]}
        print(json.dumps(line), flush=True)
        return float(done["seconds"])

    def plain(recipe: str) -> float:
        out = work / f"plain-{next(counter)}"
        argv = [PYTHON, str(PLAIN[recipe]), source, str(out)]
        if args.quick and recipe == "forecaster":
            argv += ["--epochs", "2"]
        done = run_child(argv, env=plain_env)
        if done["code"] != 0:
            raise SystemExit(f"plain {recipe} script failed:\n{done['stderr'][-3000:]}")
        found = re.search(r"test RMSE (\d+)", done["stdout"])
        scores.setdefault(f"plain {recipe}", []).append(float(found.group(1)) if found else 0.0)
        shutil.rmtree(out, ignore_errors=True)
        print(json.dumps({"run": f"plain {recipe}", "seconds": done["seconds"]}), flush=True)
        return float(done["seconds"])

    # Not measured: the first use of a PREFECT_HOME creates its database.
    flow("tutorial", backends[0], ["--epochs", "1"], record=False)
    runs: dict[str, Any] = {}
    for recipe in recipes:
        runs[f"plain {recipe}"] = lambda recipe=recipe: plain(recipe)
        for backend in backends:
            runs[flow_name(recipe, backend)] = lambda r=recipe, b=backend: flow(r, b)
    reps = 1 if args.quick else args.repetitions
    times = interleave(runs, reps)
    report(times, parts, scores, recipes, backends, reps)
    return {"times": times, "parts": parts, "scores": scores}


def flow_name(recipe: str, backend: str) -> str:
    """The row name of a flow run."""
    preset = " --preset forecaster" if recipe == "forecaster" else ""
    return f"bikeflow run{preset}{f' --backend {backend}' if backend else ''}, cold"


def report(
    times: dict[str, list[float]],
    parts: dict[str, list[dict[str, float]]],
    scores: dict[str, list[float]],
    recipes: list[str],
    backends: list[str],
    reps: int,
) -> None:
    """Print the ratio table and the breakdown table."""
    rows = []
    for recipe in recipes:
        plain_s = median(times[f"plain {recipe}"])
        for name in [f"plain {recipe}", *(flow_name(recipe, b) for b in backends)]:
            seconds = median(times[name])
            ratio = seconds / plain_s if plain_s else float("nan")
            target = "" if name.startswith("plain") else f"≤ {TARGET[recipe]}"
            rows.append(
                (
                    name,
                    seconds,
                    ratio,
                    target,
                    f"{median(scores[name]):,.0f}",
                    " ".join(f"{v:.1f}" for v in times[name]),
                )
            )
    print_table(
        f"Cold flow runs against plain Keras scripts on TensorFlow, median of {reps} "
        f"({machine_note()})",
        ["run", "seconds", "x plain", "target", "test RMSE", "all repetitions (s)"],
        rows,
    )
    print_table(
        "Where a cold flow run's seconds go (medians; from its verbose log's timestamps)",
        ["run", *PARTS],
        [
            (name, *(median([p[part] for p in runs]) for part in PARTS))
            for name, runs in parts.items()
        ],
    )


if __name__ == "__main__":
    main()
