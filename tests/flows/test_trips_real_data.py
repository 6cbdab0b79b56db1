"""Acceptance through the command: trip files rebuilt from the UCI hourly counts (both layouts,
zipped, mixed) and a raw-unit weather table, run through ``bikeflow aggregate``, give day.csv
(every calendar and count column exactly, the weather within 1e-4) and hour.csv's rows (with
zero rows where hour.csv has gaps). Skips without BIKEFLOW_DATA_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli.main import main
from tests.tasks.prepare.trips.uci_rebuild import (
    daily_weather,
    hourly_weather,
    trips_from_hours,
    write_monthly_files,
)

pytestmark = [pytest.mark.real_data, pytest.mark.slow, pytest.mark.minutes(3)]

CALENDAR = ["season", "yr", "mnth", "holiday", "weekday", "workingday", "weathersit"]
COUNTS = ["casual", "registered", "cnt"]
WEATHER = ["temp", "atemp", "hum", "windspeed"]


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The UCI files, and the trip folder and weather tables rebuilt from them."""
    value = os.environ.get("BIKEFLOW_DATA_DIR")
    if not value or not (Path(value) / "hour.csv").is_file():
        pytest.skip("BIKEFLOW_DATA_DIR does not point at the UCI Bike Sharing files")
    days = pd.read_csv(Path(value) / "day.csv")
    hours = pd.read_csv(Path(value) / "hour.csv")
    folder = tmp_path_factory.mktemp("rebuilt")
    write_monthly_files(trips_from_hours(hours), folder / "trips")
    (folder / "day-weather.csv").write_text(daily_weather(days))
    (folder / "hour-weather.csv").write_text(hourly_weather(hours))
    return {"days": days, "hours": hours, "folder": folder}


def aggregate(folder: Path, granularity: str) -> pd.DataFrame:
    """``bikeflow aggregate`` of the rebuilt trips at ``granularity``; the table it wrote."""
    output = folder / "tables" / f"{granularity}.csv"
    flags = [
        *("aggregate", "--trips", str(folder / "trips"), "--granularity", granularity),
        *("--weather", str(folder / f"{granularity}-weather.csv")),
        *("--store-root", str(folder / "store"), "--output-csv", str(output), "--quiet"),
    ]
    assert main(flags) == 0
    return pd.read_csv(output)


def test_bikeflow_aggregate_by_day_gives_day_csv(rebuilt):
    rows, expected = aggregate(rebuilt["folder"], "day"), rebuilt["days"]
    assert list(rows.columns) == list(expected.columns)
    exact = ["instant", "dteday", *CALENDAR, *COUNTS]
    pd.testing.assert_frame_equal(rows[exact], expected[exact], check_dtype=False)
    np.testing.assert_allclose(rows[WEATHER], expected[WEATHER], rtol=0, atol=1e-4)


def test_bikeflow_aggregate_by_hour_gives_hour_csv_with_zero_rows_for_its_gaps(rebuilt):
    rows, hours = aggregate(rebuilt["folder"], "hour"), rebuilt["hours"]
    assert list(rows.columns) == list(hours.columns) and len(rows) == 731 * 24
    joined = rows.merge(hours, on=["dteday", "hr"], how="left", suffixes=("", "_uci"))
    present = joined["instant_uci"].notna().to_numpy()
    assert present.sum() == len(hours)
    for name in [*CALENDAR, *COUNTS]:
        np.testing.assert_array_equal(
            joined.loc[present, name], joined.loc[present, f"{name}_uci"], name
        )
    np.testing.assert_allclose(
        joined.loc[present, WEATHER].to_numpy(),
        joined.loc[present, [f"{name}_uci" for name in WEATHER]].to_numpy(),
        rtol=0,
        atol=1e-4,
    )
    assert (joined.loc[~present, COUNTS].to_numpy() == 0).all()
