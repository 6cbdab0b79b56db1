from pathlib import Path

import numpy as np
import pytest
from prefect.logging import disable_run_logger

from schemas.records import FEATURE_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.errors import DataValidationError
from tasks.ingest import fetch_source
from tasks.store import ArtifactStore, load_array, load_json
from tasks.validate import validate_records


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
