import json
import time
from pathlib import Path

import numpy as np
import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterParentFlowRunId,
)

from flows.cli.main import main
from flows.retrain import retrain
from schemas.config import RetrainConfig, TrainingConfig
from schemas.ownership import MARKER
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.evaluation.publish import OUTPUT_FILES

pytestmark = pytest.mark.slow

STEPS = (
    "ingest_source",
    "validate_records",
    "split_by_date",
    "normalise_features",
    "train_model",
    "select_best_epoch",
    "evaluate_model",
)


def with_subflows(flow_run_id) -> list:
    """The flow run's id and those of its subflows (prepare_data runs the data steps)."""
    with get_client(sync_client=True) as client:
        subflows = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )
    return [flow_run_id, *(run.id for run in subflows)]


def task_states(state, timeout: float = 60.0) -> dict[str, str]:
    """Task name -> final state name of every task run of one flow run."""
    flow_run_id = state.state_details.flow_run_id
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=with_subflows(flow_run_id)))
            )
            # Task-run states reach the API as events, a moment after the flow returns.
            if all(run.state is not None and run.state.is_final() for run in runs):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"task runs without a final state: {runs}")
            time.sleep(0.5)
    return {run.name.rsplit("-", 1)[0]: run.state.name for run in runs if run.state}


def test_run_writes_every_output_and_rerun_is_cached(small_config: RetrainConfig):
    first = retrain(small_config, return_state=True)
    assert first.is_completed()
    summary = first.result()
    output = Path(summary.output_dir)
    assert sorted(p.name for p in output.iterdir()) == sorted([*OUTPUT_FILES, MARKER])
    metrics = json.loads((output / "metrics.json").read_text())
    for key in (
        "best_epoch",
        "test_rmse",
        "test_mae",
        "val_rmse",
        "baselines",
        "data_sha256",
        "config",
        "device",
    ):
        assert key in metrics
    assert set(metrics["baselines"]) == {"training_mean", "linear_regression"}
    assert metrics["config"]["training"]["epochs"] == 3
    assert 1 <= metrics["best_epoch"] <= 3
    predictions = (output / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "date,actual,predicted" and len(predictions) == 31
    assert len((output / "history.csv").read_text().splitlines()) == 4
    assert all(state == "Completed" for state in task_states(first).values())

    second = retrain(small_config, return_state=True)
    states = task_states(second)
    assert {step: states[step] for step in STEPS} == dict.fromkeys(STEPS, "Cached")
    assert second.result().test_rmse == summary.test_rmse


def test_changing_a_training_parameter_reuses_the_data_steps(small_config: RetrainConfig):
    assert retrain(small_config, return_state=True).is_completed()
    changed = small_config.model_copy(
        update={"training": TrainingConfig(epochs=2, batch_size=16, learning_rate=0.05)}
    )
    states = task_states(retrain(changed, return_state=True))
    assert [states[s] for s in STEPS[:4]] == ["Cached"] * 4
    assert [states[s] for s in STEPS[4:]] == ["Completed"] * 3


def test_edited_source_invalidates_everything(small_config: RetrainConfig):
    assert retrain(small_config, return_state=True).is_completed()
    Path(small_config.source).write_bytes(to_csv_bytes(make_day_frame(200, seed=2)))
    states = task_states(retrain(small_config, return_state=True))
    assert all(states[s] == "Completed" for s in STEPS)


def test_corrupted_cached_array_is_rebuilt(small_config: RetrainConfig):
    first = retrain(small_config, return_state=True)
    store = Path(small_config.store_root) / "objects"
    arrays = {p: np.load(p, allow_pickle=False) for p in store.rglob("*.npy")}
    # x_train: the largest normalised feature array (the raw features have all 200 rows).
    normalised = [
        p for p, a in arrays.items() if a.ndim == 2 and a.shape[1] == 11 and a.shape[0] < 200
    ]
    x_train = max(normalised, key=lambda p: arrays[p].shape[0])
    x_train.write_bytes(x_train.read_bytes()[:-64])  # truncate it
    second = retrain(small_config, return_state=True)
    assert second.is_completed()
    states = task_states(second)
    assert states["validate_records"] == "Cached"
    assert states["normalise_features"] == "Completed"  # rebuilt, not reused
    np.testing.assert_array_equal(np.load(x_train, allow_pickle=False), arrays[x_train])
    assert second.result().test_rmse == first.result().test_rmse


def test_malformed_csv_fails_the_run_and_writes_no_output(small_config: RetrainConfig):
    frame = make_day_frame(200, seed=1).astype(object)
    frame.loc[9, "weathersit"] = 7
    Path(small_config.source).write_bytes(to_csv_bytes(frame))
    state = retrain(small_config, return_state=True)
    assert state.is_failed()
    assert "row 10" in state.message or "row 10" in str(state.result(raise_on_failure=False))
    assert not Path(small_config.output_dir).exists()


def test_cli_exit_codes_and_messages(
    small_config: RetrainConfig, capsys: pytest.CaptureFixture[str]
):
    common = [
        "run",
        "--source",
        small_config.source,
        "--store-root",
        small_config.store_root,
        "--output-dir",
        small_config.output_dir,
        "--registry-root",
        small_config.registry_root,
        "--test-days",
        "30",
        "--batch-size",
        "16",
    ]
    assert main([*common, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "test RMSE" in out and small_config.output_dir in out
    assert (
        json.loads((Path(small_config.output_dir) / "metrics.json").read_text())["config"][
            "training"
        ]["epochs"]
        == 2
    )

    assert main([*common, "--epochs", "0"]) == 1  # a bad config is a user error: exit 1
    assert "epochs" in capsys.readouterr().err

    frame = make_day_frame(200, seed=1)
    frame.loc[4, "temp"] = 3.0
    bad = Path(small_config.source).with_name("bad.csv")
    bad.write_bytes(to_csv_bytes(frame))
    assert main([*common, "--source", str(bad), "--output-dir", str(bad.with_name("never"))]) == 1
    err = capsys.readouterr().err
    for part in ("bad.csv", "row 5", "column temp", "less_than_or_equal_to(1.0)", "3.0"):
        assert part in err
    assert not bad.with_name("never").exists()


def test_station_data_trains_a_model_with_a_station_input(
    tmp_path: Path, small_config: RetrainConfig
):
    import keras

    from schemas.synthetic import make_records

    source = tmp_path / "stations.csv"
    source.write_bytes(to_csv_bytes(make_records(200, stations=3, seed=1)))
    state = retrain(small_config.model_copy(update={"source": str(source)}), return_state=True)
    assert state.is_completed()
    output = Path(state.result().output_dir)
    model = keras.saving.load_model(output / "model.keras", safe_mode=True)
    assert [t.name for t in model.inputs] == ["features", "station"]
    statistics = json.loads((output / "normalisation.json").read_text())
    assert statistics["stations"] == {"ids": [31000, 31001, 31002]}
    metrics = json.loads((output / "metrics.json").read_text())
    assert all(np.isfinite(metrics[k]) for k in ("val_rmse", "test_rmse", "test_mae", "test_r2"))
    assert metrics["config"]["model"]["station_embedding_dim"] == 4
    # Every row is scored: one per station and test day.
    predictions = (output / "predictions.csv").read_text().splitlines()
    assert predictions[0] == "date,station,actual,predicted" and len(predictions) == 1 + 30 * 3
