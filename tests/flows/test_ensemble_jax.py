"""On JAX an ensemble's members train as one group in one child (their refits as another group,
in the same child): real Prefect, real JAX children. The averaged model is published and loads
in this (TensorFlow) process, a rerun is all Cached, and ``bikeflow run --preset forecaster``
then ``bikeflow predict`` work end to end on the JAX backend."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.retrain import retrain
from schemas.config import RetrainConfig
from schemas.records import COUNT_COLUMNS
from schemas.synthetic import to_csv_bytes
from tasks.models.bundle import ModelBundle
from tasks.promotion.registry import Registry
from tests.flows.project_copy import task_run_states
from tests.flows.test_clean_failures import _run
from tests.flows.test_terminal import _bikeflow_run
from tests.tasks.training.test_resume import _children_running

pytestmark = [pytest.mark.slow, pytest.mark.minutes(5)]

CHILD = "tasks.training.child"
STEPS = ("train_member_group", "select_best_epoch", "refit_data", "assemble_forecaster")


@contextmanager
def training_children() -> Iterator[set[int]]:
    """Within: the pids of every training child this process starts (polled from /proc)."""
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(_children_running(CHILD))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


@pytest.fixture
def jax_ensemble(small_config: RetrainConfig) -> RetrainConfig:
    training = small_config.training.model_copy(
        update={"backend": "jax", "ensemble_size": 3, "refit": True}
    )
    return small_config.model_copy(update={"training": training})


def test_a_jax_ensemble_trains_in_one_child_and_reruns_all_cached(jax_ensemble: RetrainConfig):
    import keras

    with training_children() as children:
        first = retrain(jax_ensemble, return_state=True)
    assert first.is_completed()
    runs = task_run_states(str(first.state_details.flow_run_id), STEPS)
    # One group for the 3 members, one for their 3 refits, no train_model; one child for both
    # (it waits for the refits, child_process.reusing_children) and none left after the run.
    assert runs["train_member_group"] == ["Completed", "Completed"]
    assert "train_model" not in runs
    assert len(children) == 1
    assert _children_running(CHILD) == []
    assert runs["select_best_epoch"] == ["Completed"] * 3

    summary = first.result()
    output = Path(summary.output_dir)
    members = json.loads((output / "metrics.json").read_text())["members"]
    assert [m["seed"] for m in members] == [0, 1000, 2000]
    assert all(m["refit_epochs"] == m["best_epoch"] for m in members)
    # Trained on JAX, loaded here by Keras on TensorFlow: the three members and their average.
    assert keras.backend.backend() == "tensorflow"
    model = keras.saving.load_model(output / "model.keras", safe_mode=True)
    assert [layer.name for layer in model.layers[-4:]] == [
        "member_1",
        "member_2",
        "member_3",
        "average",
    ]

    with training_children() as again_children:
        second = retrain(jax_ensemble, return_state=True)
    again = task_run_states(str(second.state_details.flow_run_id), STEPS)
    for step in STEPS:
        assert set(again[step]) == {"Cached"}, step
    assert again_children == set()
    assert second.result().test_rmse == summary.test_rmse


def test_the_forecaster_preset_runs_on_jax_and_predict_serves_its_champion(tmp_path: Path):
    done = _bikeflow_run(tmp_path, "--preset", "forecaster", "--backend", "jax", "--epochs", "2")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    steps = [line.split()[1] for line in done.stdout.splitlines() if re.match(r"  \d:\d\d", line)]
    # The 3 members in one group task, their 3 refits in another.
    assert steps.count("train_member_group") == 2 and "train_model" not in steps, output
    assert steps.count("select_best_epoch") == 3
    assert "promotion:       promoted " in done.stdout
    members = json.loads((tmp_path / "out" / "metrics.json").read_text())["members"]
    assert [member["seed"] for member in members] == [0, 1000, 2000]

    days = pd.read_csv(tmp_path / "day.csv").tail(20).drop(columns=list(COUNT_COLUMNS))
    input_csv = tmp_path / "days.csv"
    input_csv.write_bytes(to_csv_bytes(days))
    predicted_csv = tmp_path / "predicted.csv"
    flags = ["--registry-root", str(tmp_path / "models"), "--output-csv", str(predicted_csv)]
    served = _run(tmp_path, "-m", "flows.cli", "predict", "--input-csv", str(input_csv), *flags)
    assert served.returncode == 0, served.stdout + served.stderr
    written = pd.read_csv(predicted_csv)
    registry = Registry(str(tmp_path / "models"))
    champion = registry.require_champion()
    bundle = registry.bundle(champion)
    assert isinstance(bundle, ModelBundle)
    expected = np.rint(np.clip(bundle.predict(days), 0, None))
    np.testing.assert_array_equal(written["predicted_cnt"], expected)
