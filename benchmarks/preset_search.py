"""Choose the forecaster preset among candidate configs on validation RMSE only.

Each candidate runs the preset procedure (benchmarks/preset.py: seed ensemble, best epoch on
validation, refit on training+validation). Candidates are ranked by the ensemble's
validation RMSE before the refit; the test RMSE is printed beside it for the report and is
not used to choose.

    PYTHONPATH=. python benchmarks/preset_search.py --data ../shared/data/bike-sharing/day.csv
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.preset import CANDIDATES, load_day_csv, run_procedure
from schemas.config import RetrainConfig
from tasks.store import ArtifactStore


def main() -> None:
    """Run every candidate and print them ranked by validation RMSE (JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ensemble", type=int, default=3)
    parser.add_argument("--seed", type=int, default=100, help="procedure seed (not a preset seed)")
    args = parser.parse_args()
    dates, features, counts = load_day_csv(args.data)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, override in CANDIDATES.items():
            config = RetrainConfig.model_validate(override)
            result = run_procedure(
                dates,
                features,
                counts,
                config,
                args.ensemble,
                True,
                args.seed,
                ArtifactStore(scratch),
            )
            results.append({"candidate": name, **result})
            print(json.dumps(results[-1]), flush=True)
    results.sort(key=lambda r: r["val"]["rmse"])
    for rank, r in enumerate(results, 1):
        print(
            f"{rank}. {r['candidate']:<24} val RMSE {r['val']['rmse']:7.0f}   "
            f"(test RMSE {r['test']['rmse']:7.0f}, reported only)"
        )


if __name__ == "__main__":
    main()
