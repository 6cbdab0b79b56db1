"""Benchmark: how long ``bikeflow plan`` takes, records read as files against through Prefect.

Usage: python -m benchmarks.plan_speed [--quick] [--repetitions N] [--source DAY_CSV]
    [--epochs E]

One ``bikeflow run`` (not measured) fills a fresh store and result storage, on the embedded
default, with a ``PREFECT_HOME`` of its own in a temporary folder. Then, interleaved, each in
a fresh interpreter:

- ``bikeflow plan``: the command as users run it; on the embedded default it reads the
  record files itself and imports neither Prefect nor TensorFlow;
- ``plan through Prefect``: the same plan reading the records through Prefect's result store
  (what plan does against an API, and what it did everywhere before);
- ``bikeflow plan, retrain_when: new-data``: the nightly deployment's setting, for which plan
  asks the registry (a module that imports Prefect) for the champion's last date;
- ``import prefect``: Prefect's import alone, for scale.

It prints the medians and the ratio, and checks that both plans print the same steps.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, child_env, interleave, machine_note, median, print_table
from benchmarks.common import run_child as _run_child
from schemas.synthetic import make_day_frame, to_csv_bytes

THROUGH_PREFECT = """
import sys
from flows.cli.plan import print_plan
from tasks.plan.engine import plan_retrain
from schemas.config import RetrainConfig
print_plan(plan_retrain(RetrainConfig.model_validate_json(open(sys.argv[1]).read()), None))
"""


def _checked(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = _run_child(argv, env=env)
    if done["code"] != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} failed:\n{done['stderr'][-3000:]}")
    return done


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Fill a cache with one run, then time the plans side by side; return the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 generated days, 1 epoch, 1 rep")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--source", help="a day.csv (default: 731 generated days)")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args(argv)
    repetitions, epochs = (1, 1) if args.quick else (args.repetitions, args.epochs)

    with tempfile.TemporaryDirectory(prefix="bikeflow-plan-speed-") as folder:
        work = Path(folder).resolve()
        source = Path(args.source).resolve() if args.source else work / "day.csv"
        if not args.source:
            source.write_bytes(to_csv_bytes(make_day_frame(200 if args.quick else 731, seed=0)))
        config = {
            "source": str(source),
            "store_root": str(work / "store"),
            "output_dir": str(work / "out"),
            "registry_root": str(work / "registry"),
            "training": {"epochs": epochs},
        }
        config_file = work / "config.json"
        config_file.write_text(json.dumps(config))
        nightly_file = work / "nightly.json"
        nightly_file.write_text(json.dumps(config | {"retrain_when": "new-data"}))
        env = child_env(PREFECT_HOME=str(work / "prefect-home"), BIKEFLOW_ROOTS=str(work))
        env.pop("PREFECT_API_URL", None)  # the embedded default
        env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
        env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        _checked([PYTHON, "-m", "flows.cli", "run", "--config", str(config_file)], env)

        outputs: dict[str, str] = {}

        def timed(name: str, command: list[str]) -> Any:
            def run() -> float:
                done = _checked(command, env)
                outputs[name] = done["stdout"]
                return float(done["seconds"])

            return run

        plan = [PYTHON, "-m", "flows.cli", "plan", "--config", str(config_file)]
        times = interleave(
            {
                "bikeflow plan": timed("files", plan),
                "plan through Prefect": timed(
                    "prefect", [PYTHON, "-c", THROUGH_PREFECT, str(config_file)]
                ),
                "bikeflow plan, retrain_when: new-data": timed(
                    "nightly", [*plan[:-1], str(nightly_file)]
                ),
                "import prefect": timed("import", [PYTHON, "-c", "import prefect"]),
            },
            repetitions,
        )
    if outputs["files"].strip().splitlines() != outputs["prefect"].strip().splitlines():
        raise RuntimeError(f"the plans differ:\n{outputs['files']}\n---\n{outputs['prefect']}")
    medians = {name: median(values) for name, values in times.items()}
    fast = medians["bikeflow plan"]
    print_table(
        f"bikeflow plan after a run, {repetitions} repetitions, medians ({machine_note()})",
        ["command", "wall s (median)", "x bikeflow plan", "every repetition, s"],
        [
            [name, value, value / fast, " ".join(f"{v:.2f}" for v in times[name])]
            for name, value in medians.items()
        ],
    )
    print(f"\nThe plan (identical both ways):\n\n```\n{outputs['files'].rstrip()}\n```")
    return {"times": times, "medians": medians, "plan": outputs["files"], "cpu": os.cpu_count()}


if __name__ == "__main__":
    main()
