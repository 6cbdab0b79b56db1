"""Choose the forecaster preset among candidate configs on validation RMSE only.

Each candidate runs through the retrain flow as a 3-member ensemble refitted on
training+validation (benchmarks/preset.py, the preset's procedure). Candidates are ranked by
the ensemble's validation RMSE (the members before their refit); the test RMSE is printed
beside it for the report and is not used to choose.

    PYTHONPATH=. python benchmarks/preset_search.py --data ../shared/data/bike-sharing/day.csv
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.preset import CANDIDATES, ENSEMBLE, procedure_config, run_procedure


def main() -> None:
    """Run every candidate and print them ranked by validation RMSE (JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=100, help="procedure seed (not a preset seed)")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("BIKEFLOW_ROOTS", os.pathsep.join([os.getcwd(), tempfile.gettempdir()]))
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, override) in enumerate(CANDIDATES.items()):
            fields = {**override, "training": {**override.get("training", {}), **ENSEMBLE}}
            work = Path(scratch) / str(index)
            config = procedure_config(args.data.resolve(), args.seed, work, fields)
            results.append({"candidate": name, **run_procedure(config)})
            print(json.dumps(results[-1]), flush=True)
    results.sort(key=lambda r: r["val"]["rmse"])
    for rank, r in enumerate(results, 1):
        print(
            f"{rank}. {r['candidate']:<24} val RMSE {r['val']['rmse']:7.0f}   "
            f"(test RMSE {r['test']['rmse']:7.0f}, reported only)"
        )


if __name__ == "__main__":
    main()
