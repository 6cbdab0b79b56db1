"""Concurrent promotions on one registry root, from separate processes, lose no decision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from schemas.config import PromotionConfig
from schemas.records import FEATURE_COLUMNS, TARGET_COLUMN
from schemas.synthetic import make_day_frame
from tasks.evaluation.evaluate import fit_linear
from tasks.prepare.normalise import fit_statistics
from tasks.promotion.registry import Registry
from tasks.storage.descriptors import Window
from tasks.storage.store import ArtifactStore, FileRef

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
TRAIN = Window(start=0, stop=150, days=150, first_date="2011-01-01", last_date="2011-05-30")
TEST = Window(start=170, stop=200, days=30, first_date="2011-06-19", last_date="2011-07-18")
PROCESSES = 6
# The point rule: whichever order the six arrive in, the best one must end up champion. (Under
# the bootstrap rule a challenger only probably better than the champion of the moment stays
# out, so the winner depends on the order; tests/tasks/test_registry.py covers that rule.)
RULE = PromotionConfig(rule="point")

# One contender: import everything, register its model, say it is ready, wait for the common
# start signal, then promote, and print the decision it got.
CONTENDER = """
import json, sys, time
from pathlib import Path

import numpy as np

from schemas.records import FEATURE_COLUMNS, TARGET_COLUMN
from schemas.synthetic import make_day_frame
from schemas.config import PromotionConfig
from tasks.promotion.policy import promote
from tasks.promotion.registry import Registry
from tasks.storage.descriptors import Window
from tasks.storage.store import FileRef

root, model, stats, test, ready, go, rule = sys.argv[1:]
registry = Registry(root)
frame = make_day_frame(200, seed=5)
features = frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
target = frame[[TARGET_COLUMN]].to_numpy(dtype=np.float64)
window = Window.model_validate_json(test)
version = registry.register(
    FileRef.model_validate_json(model),
    FileRef.model_validate_json(stats),
    {"test_rmse": 1.0},
    "d" * 64,
    window,
)
Path(ready).write_text(version.version)
deadline = time.monotonic() + 300
while not Path(go).exists():
    assert time.monotonic() < deadline, "no start signal"
    time.sleep(0.01)
decision = promote(
    registry,
    version,
    features[window.start : window.stop],
    target[window.start : window.stop],
    rule=PromotionConfig.model_validate_json(rule),
)
print(decision.model_dump_json())
"""


def _models(store: ArtifactStore) -> tuple[list[FileRef], FileRef]:
    """Distinct linear models of different quality (the least-squares fit, shrunk and shifted)."""
    frame = make_day_frame(200, seed=5)
    features = frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    target = frame[[TARGET_COLUMN]].to_numpy(dtype=np.float64)
    stats = fit_statistics(features, target, TRAIN, FEATURE_COLUMNS)
    x = stats.normalise_features(features[TRAIN.start : TRAIN.stop])
    y = stats.normalise_target(target[TRAIN.start : TRAIN.stop])
    fitted = fit_linear(x, y).ravel()
    models = []
    for index in range(PROCESSES):
        model = keras.Sequential([keras.Input(shape=(len(FEATURE_COLUMNS),)), layers.Dense(1)])
        weights = fitted[:-1] * (1.0 - 0.1 * index)
        bias = float(fitted[-1]) + 0.15 * index * (-1) ** index
        model.layers[-1].set_weights([weights.reshape(-1, 1).astype("float32"), np.array([bias])])
        temp = store.temp_path(".keras")
        model.save(temp)
        models.append(store.adopt(temp, ".keras"))
    return models, store.put_json(stats.model_dump(mode="json"))


def test_concurrent_promotions_in_separate_processes_lose_no_decision(tmp_path: Path):
    models, stats = _models(ArtifactStore(tmp_path / "store"))
    assert len({model.sha256 for model in models}) == PROCESSES
    root, signals = tmp_path / "models", tmp_path / "signals"
    signals.mkdir()
    go = signals / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    contenders = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONTENDER,
                str(root),
                model.model_dump_json(),
                stats.model_dump_json(),
                TEST.model_dump_json(),
                str(signals / f"ready-{index}"),
                str(go),
                RULE.model_dump_json(),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index, model in enumerate(models)
    ]
    try:
        # Every contender has imported TensorFlow and registered its model: start them together.
        deadline = time.monotonic() + 300
        while len(list(signals.glob("ready-*"))) < PROCESSES:
            failed = [c for c in contenders if c.poll() not in (None, 0)]
            assert not failed, failed[0].communicate()[1][-3000:]
            assert time.monotonic() < deadline, "contenders not ready"
            time.sleep(0.1)
        go.touch()
        outputs = [contender.communicate(timeout=300) for contender in contenders]
    finally:
        for contender in contenders:
            if contender.poll() is None:
                contender.kill()
                contender.wait()
    for contender, (_, stderr) in zip(contenders, outputs, strict=True):
        assert contender.returncode == 0, stderr[-3000:]
    returned = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]

    # Every process's decision is on record, one file each, and nothing else is.
    registry = Registry(root)
    files = sorted(registry.decisions.glob("*.json"))
    assert {decision["record"] for decision in returned} == {str(file) for file in files}
    assert len(files) == PROCESSES
    decisions = sorted(
        (json.loads(file.read_text()) for file in files), key=lambda d: d["decided_at"]
    )
    outcomes = [decision["outcome"] for decision in decisions]
    assert outcomes[0] == "first-champion" and outcomes.count("first-champion") == 1, outcomes
    assert len({decision["challenger"] for decision in decisions}) == PROCESSES
    # Each promotion saw the champion the one before it left: none was decided on a stale view.
    for before, after in pairwise(decisions):
        assert after["champion_before"] == before["champion_after"], (before, after)
        assert after["champion_scores"]["rmse"] == pytest.approx(
            next(
                d["challenger_scores"]["rmse"]
                for d in decisions
                if d["challenger"] == before["champion_after"]
            )
        )
    # Each comparison kept its evidence, and the point rule followed its sign.
    for decision in decisions[1:]:
        evidence = decision["evidence"]
        assert decision["promotion"]["rule"] == "point"
        assert (decision["outcome"] == "promoted") == (evidence["rmse_difference"] > 0), decision
    # So the champion is the best of all six, and the pointer names an intact version.
    best = min(decisions, key=lambda d: d["challenger_scores"]["rmse"])
    pointer = registry.champion_pointer()
    assert pointer is not None
    assert pointer.version == decisions[-1]["champion_after"] == best["challenger"]
    assert registry.read_version(pointer.version).version == pointer.version
