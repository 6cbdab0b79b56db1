"""Every retraining run reports the rows new since the champion's data, their drift and the
champion's error on them; with ``retrain_when: new-data`` a run with nothing new stops early."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.retrain import retrain
from schemas.config import RetrainConfig
from schemas.synthetic import make_day_frame, to_csv_bytes
from tests.flows.project_copy import task_states

pytestmark = pytest.mark.slow


def test_new_rows_are_counted_scored_and_checked_for_drift(small_config: RetrainConfig):
    frame = make_day_frame(200, seed=1)
    Path(small_config.source).write_bytes(to_csv_bytes(frame.iloc[:170]))
    first = retrain(small_config, return_state=True).result()
    assert first.new_data is not None and first.new_data.champion is None

    Path(small_config.source).write_bytes(to_csv_bytes(frame))
    second = retrain(small_config, return_state=True).result()
    report = second.new_data
    assert report.new_rows == 30 and report.new_days == 30
    assert report.champion_last_date == str(frame["dteday"].iloc[169])[:10]
    assert set(report.psi) >= {"temp", "hum", "windspeed"}
    assert report.champion_new_rows_rmse is not None and report.champion_test_rmse is not None
    metrics = json.loads((Path(second.output_dir) / "metrics.json").read_text())
    assert metrics["new_data"]["new_rows"] == 30
    assert metrics["new_data"]["summary"].startswith("new data: 30 rows (30 days")


def test_no_new_data_ends_before_training_when_asked(small_config: RetrainConfig):
    assert retrain(small_config, return_state=True).is_completed()
    lazy = small_config.model_copy(update={"retrain_when": "new-data"})
    state = retrain(lazy, return_state=True)
    summary = state.result()
    assert summary.trained is False and summary.new_data.new_rows == 0
    assert summary.new_data.summary.startswith("new data: none since the champion's last date")
    states = task_states(str(state.state_details.flow_run_id))
    assert "train_model" not in states and states["report_no_new_data"] == "Completed"

    # The default (always) retrains anyway and says there was nothing new.
    again = retrain(small_config, return_state=True).result()
    assert again.trained is True and again.new_data.new_rows == 0
