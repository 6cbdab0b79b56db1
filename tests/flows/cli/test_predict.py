"""``bikeflow predict``: the predict-batch flow from the command line, hourly champions too."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli.main import main
from flows.retrain import retrain
from schemas.config import RetrainConfig, SplitConfig, TrainingConfig
from schemas.records import COUNT_COLUMNS
from schemas.synthetic import make_records, to_csv_bytes
from tasks.promotion.registry import Registry

pytestmark = pytest.mark.slow


def test_predict_command_serves_an_hourly_champion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    hours = make_records(60, granularity="hour", seed=3)
    source = tmp_path / "hour.csv"
    source.write_bytes(to_csv_bytes(hours))
    config = RetrainConfig(
        source=str(source),
        granularity="hour",
        store_root=str(tmp_path / "store"),
        output_dir=str(tmp_path / "out"),
        registry_root=str(tmp_path / "models"),
        split=SplitConfig(test_days=10),
        training=TrainingConfig(epochs=2, batch_size=64),
    )
    assert retrain(config, return_state=True).is_completed()
    capsys.readouterr()

    wanted = hours.tail(48).drop(columns=[*COUNT_COLUMNS, "instant"])
    input_csv = tmp_path / "hours.csv"
    input_csv.write_bytes(to_csv_bytes(wanted))
    output_csv = tmp_path / "predicted.csv"
    flags = ["--registry-root", config.registry_root, "--output-csv", str(output_csv)]
    assert main(["predict", "--input-csv", str(input_csv), *flags]) == 0
    assert "48 (" in capsys.readouterr().out
    written = pd.read_csv(output_csv)
    assert list(written.columns) == ["dteday", "hr", "predicted_cnt"]
    assert written["hr"].tolist() == wanted["hr"].tolist()
    registry = Registry(config.registry_root)
    expected = registry.bundle(registry.require_champion()).predict(wanted)
    np.testing.assert_array_equal(written["predicted_cnt"], np.rint(np.clip(expected, 0, None)))

    # A daily file for an hourly champion: one clear message naming the missing column.
    days = tmp_path / "days.csv"
    days.write_bytes(to_csv_bytes(wanted.drop(columns=["hr"]).drop_duplicates("dteday")))
    assert main(["predict", "--input-csv", str(days), *flags]) == 1
    err = capsys.readouterr().err
    assert "column hr" in err and "missing" in err and "Traceback" not in err
    # A bad flag is refused before anything runs.
    assert main(["predict", "--input-csv", "", *flags]) == 1
