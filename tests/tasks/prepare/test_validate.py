from pathlib import Path

import numpy as np
import pytest
from prefect.logging import disable_run_logger

from schemas.errors import DataValidationError
from schemas.records import FEATURE_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.prepare.ingest import fetch_source
from tasks.prepare.validate import validate_records
from tasks.storage.store import ArtifactStore, load_array, load_json

# Runs tasks that talk to the Prefect API (artifacts, flow runs).
pytestmark = pytest.mark.usefixtures("prefect_server")


def test_valid_days_become_float32_arrays(tmp_path: Path, day_csv: Path):
    store = ArtifactStore(tmp_path / "store")
    raw = fetch_source(str(day_csv), store)
    with disable_run_logger():
        table = validate_records.fn(raw, 30, str(store.root))
    assert table.rows == 200
    assert table.feature_names == FEATURE_COLUMNS
    features, target = load_array(table.features), load_array(table.target)
    assert features.shape == (200, 11) and features.dtype == np.float32
    assert target.shape == (200, 1) and target.dtype == np.float32
    assert load_array(table.dates).dtype == np.dtype("datetime64[D]")
    assert load_json(table.report)["ok"] is True


def test_bad_days_fail_with_file_row_column_rule_and_value(tmp_path: Path):
    frame = make_day_frame(200, seed=1)
    frame.loc[41, "hum"] = 1.75
    path = tmp_path / "broken.csv"
    path.write_bytes(to_csv_bytes(frame))
    store = ArtifactStore(tmp_path / "store")
    raw = fetch_source(str(path), store)
    with disable_run_logger(), pytest.raises(DataValidationError) as caught:
        validate_records.fn(raw, 30, str(store.root))
    message = str(caught.value)
    for part in ("broken.csv", "row 42", "column hum", "less_than_or_equal_to(1.0)", "1.75"):
        assert part in message


def test_hourly_station_records_become_arrays_with_station_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import schemas.validation as validation
    from schemas.records import HOUR_FEATURE_COLUMNS
    from schemas.synthetic import make_records

    monkeypatch.setattr(validation, "CHUNK_ROWS", 500)  # several chunks
    frame = make_records(45, stations=4, granularity="hour", seed=3)
    path = tmp_path / "hours.csv"
    path.write_bytes(to_csv_bytes(frame))
    store = ArtifactStore(tmp_path / "store")
    raw = fetch_source(str(path), store, "hour.csv")
    with disable_run_logger():
        table = validate_records.fn(raw, 10, str(store.root), "hour")
    assert table.rows == len(frame) == 45 * 24 * 4 and table.granularity == "hour"
    assert table.feature_names == HOUR_FEATURE_COLUMNS
    features = load_array(table.features)
    assert features.shape == (len(frame), 12)
    np.testing.assert_array_equal(features[:, 3], frame["hr"].to_numpy())
    assert table.stations is not None
    np.testing.assert_array_equal(load_array(table.stations), frame["station"].to_numpy())
    np.testing.assert_array_equal(load_array(table.target)[:, 0], frame["cnt"].to_numpy())


def test_failed_validation_keeps_no_partial_arrays(tmp_path: Path):
    frame = make_day_frame(200, seed=1)
    frame.loc[150, "season"] = 9
    path = tmp_path / "broken.csv"
    path.write_bytes(to_csv_bytes(frame))
    store = ArtifactStore(tmp_path / "store")
    raw = fetch_source(str(path), store)
    with disable_run_logger(), pytest.raises(DataValidationError, match="row 151"):
        validate_records.fn(raw, 30, str(store.root))
    assert not list(store.objects.rglob("*.npy")) and not list(store.tmp.iterdir())


def test_day_csv_keeps_uci_bounds_and_rows_from_trips_take_plausible_weather(tmp_path: Path):
    frame = make_day_frame(200, seed=1)
    frame.loc[41, "temp"] = 1.2
    frame.loc[60, "temp"] = -12.5 / 41  # a January day of rows built from trips
    frame.loc[60, "windspeed"] = 80 / 67
    path = tmp_path / "winter.csv"
    path.write_bytes(to_csv_bytes(frame))
    store = ArtifactStore(tmp_path / "store")
    raw = fetch_source(str(path), store)
    assert raw.weather_scale == "uci"
    with disable_run_logger(), pytest.raises(DataValidationError) as caught:
        validate_records.fn(raw, 30, str(store.root))
    message = str(caught.value)
    for part in ("winter.csv", "row 42", "column temp", "less_than_or_equal_to(1.0)", "1.2"):
        assert part in message
    assert "row 61" in message and "greater_than_or_equal_to(0.0)" in message
    # The same rows, marked as built from trips (as assemble_trip_rows marks them): accepted.
    from_trips = raw.model_copy(update={"weather_scale": "raw-normalised"})
    with disable_run_logger():
        table = validate_records.fn(from_trips, 30, str(store.root))
    features = load_array(table.features)
    temp, windspeed = FEATURE_COLUMNS.index("temp"), FEATURE_COLUMNS.index("windspeed")
    assert features[60, temp] == pytest.approx(-12.5 / 41)
    assert features[60, windspeed] == pytest.approx(80 / 67)
    assert features[41, temp] == pytest.approx(1.2)
