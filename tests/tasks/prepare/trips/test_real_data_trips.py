"""Acceptance: trip files rebuilt from the UCI hourly counts aggregate back to day.csv and hour.csv.

The UCI files were built from Capital Bikeshare's trip history; here hour.csv's counts become
3.3 million trips again (monthly files, both layouts, plain, gzipped and zipped, in one
folder) and a weather table in raw units. Aggregated and assembled, every calendar and count
column equals the UCI files exactly and the weather columns within 1e-4 (hourly: with a
zero row for each hour hour.csv lacks). Skips without BIKEFLOW_DATA_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.prepare.trips.aggregate import aggregate_trip_file, duplicate_rides
from tasks.prepare.trips.assemble import assemble_rows
from tasks.prepare.trips.files import find_trip_files
from tasks.prepare.trips.weather import read_weather
from tests.tasks.prepare.trips.uci_rebuild import (
    daily_weather,
    hourly_weather,
    trips_from_hours,
    write_monthly_files,
)

pytestmark = [pytest.mark.real_data, pytest.mark.minutes(1)]

CALENDAR = ["season", "yr", "mnth", "holiday", "weekday", "workingday", "weathersit"]
COUNTS = ["casual", "registered", "cnt"]
WEATHER = ["temp", "atemp", "hum", "windspeed"]


@pytest.fixture(scope="module")
def uci(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    value = os.environ.get("BIKEFLOW_DATA_DIR")
    if not value or not (Path(value) / "hour.csv").is_file():
        pytest.skip("BIKEFLOW_DATA_DIR does not point at the UCI Bike Sharing files")
    days = pd.read_csv(Path(value) / "day.csv")
    hours = pd.read_csv(Path(value) / "hour.csv")
    folder = tmp_path_factory.mktemp("trips")
    write_monthly_files(trips_from_hours(hours), folder)
    return {"days": days, "hours": hours, "folder": folder}


def test_the_rebuilt_folder_mixes_layouts_and_containers(uci):
    files = find_trip_files(uci["folder"])
    suffixes = {path.name.split(".", 1)[1] for path in files}
    assert suffixes == {"csv", "csv.gz", "zip"}
    assert len(files) == 24 - 8 + 8  # 16 monthly files and 8 quarterly zips


def test_daily_aggregate_equals_day_csv(uci):
    files = find_trip_files(uci["folder"])
    counts = [aggregate_trip_file(path, granularity="day") for path in files]
    assert sum(item.trips for item in counts) == int(uci["hours"]["cnt"].sum())
    assert duplicate_rides(counts) == []
    weather = read_weather(daily_weather(uci["days"]), "day")
    rows = assemble_rows(counts, weather, "day", holiday_calendar="us-dc")
    expected = uci["days"]
    assert list(rows.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(
        rows[["instant", "dteday", *CALENDAR, *COUNTS]],
        expected[["instant", "dteday", *CALENDAR, *COUNTS]],
        check_dtype=False,
    )
    np.testing.assert_allclose(rows[WEATHER], expected[WEATHER], rtol=0, atol=1e-4)


def test_hourly_aggregate_equals_hour_csv_with_zero_rows_for_its_gaps(uci):
    files = find_trip_files(uci["folder"])
    counts = [aggregate_trip_file(path, granularity="hour") for path in files]
    hours = uci["hours"]
    weather = read_weather(hourly_weather(hours), "hour")
    rows = assemble_rows(counts, weather, "hour")
    assert list(rows.columns) == list(hours.columns)
    assert len(rows) == 731 * 24
    assert rows["instant"].tolist() == list(range(1, len(rows) + 1))
    joined = rows.merge(hours, on=["dteday", "hr"], how="left", suffixes=("", "_uci"))
    present = joined["instant_uci"].notna().to_numpy()
    assert present.sum() == len(hours)
    for name in [*CALENDAR, *COUNTS]:
        np.testing.assert_array_equal(
            joined.loc[present, name].to_numpy(),
            joined.loc[present, f"{name}_uci"].to_numpy(),
            name,
        )
    for name in WEATHER:
        np.testing.assert_allclose(
            joined.loc[present, name], joined.loc[present, f"{name}_uci"], rtol=0, atol=1e-4
        )
    gaps = joined.loc[~present]
    assert len(gaps) == 731 * 24 - len(hours)
    assert (gaps[COUNTS].to_numpy() == 0).all()
