"""Rows in the UCI layout from trip counts and weather: zero rows, missing weather, stations."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.errors import WeatherDataError
from schemas.records import DAY_COLUMNS, HOUR_COLUMNS
from schemas.validation import validate_day_csv
from tasks.prepare.trips.aggregate import aggregate_trip_file
from tasks.prepare.trips.assemble import assemble_rows, quiet_days
from tasks.prepare.trips.weather import read_weather
from tests.tasks.prepare.trips.trip_builder import (
    expected_counts,
    in_layout,
    make_trips,
    random_trips,
    weather_text,
    write_trip_file,
)


def _csv(rows: pd.DataFrame) -> bytes:
    return rows.to_csv(index=False).encode()


@pytest.fixture
def two_files(tmp_path: Path) -> tuple[list[Path], pd.DataFrame]:
    # Nine days in two files of the two layouts; 2024-03-05 has no trips at all.
    trips = random_trips("2024-03-01", 9, 2500, seed=7, skip_days=[4])
    first = trips[trips["start"] < "2024-03-06"]
    second = trips[trips["start"] >= "2024-03-06"]
    paths = [
        write_trip_file(tmp_path / "2024-03-a.csv.gz", in_layout(first, "legacy")),
        write_trip_file(tmp_path / "2024-03-b.zip", in_layout(second, "current")),
    ]
    return paths, trips


def test_daily_rows_are_day_csv_rows_with_a_zero_row_for_the_day_without_trips(two_files):
    paths, trips = two_files
    counts = [aggregate_trip_file(path, chunk_rows=500) for path in paths]
    weather = read_weather(weather_text(pd.date_range("2024-02-25", "2024-03-15")), "day")
    rows = assemble_rows(counts, weather, "day")
    assert tuple(rows.columns) == DAY_COLUMNS
    assert rows["dteday"].tolist() == [f"2024-03-{day:02d}" for day in range(1, 10)]
    assert rows["instant"].tolist() == list(range(1, 10))
    assert rows.loc[4, ["casual", "registered", "cnt"]].tolist() == [0, 0, 0]
    expected = expected_counts(trips, "day", False)
    assert rows["cnt"].sum() == 2500
    assert rows.loc[rows["cnt"] > 0, "registered"].tolist() == expected["registered"].tolist()
    by_day = weather.set_index("dteday").loc[pd.to_datetime(rows["dteday"])]
    np.testing.assert_allclose(rows["temp"], by_day["temp"])
    _frame, report = validate_day_csv(_csv(rows), "assembled", 1, "day")
    assert report.ok, report.failures
    median = [*rows.loc[rows["cnt"] > 0, "cnt"].tolist(), 0]
    assert quiet_days(rows) == [
        f"1 day(s) have under 5% of the median day's {np.median(median):.0f} trips (an "
        "outage, a storm, or a missing trip file?): 2024-03-05"
    ]


def test_hourly_rows_have_every_hour_and_pass_record_validation(two_files):
    paths, trips = two_files
    counts = [aggregate_trip_file(path, granularity="hour") for path in paths]
    weather = read_weather(
        weather_text(pd.date_range("2024-03-01", "2024-03-09"), hourly=True), "hour"
    )
    rows = assemble_rows(counts, weather, "hour")
    assert tuple(rows.columns) == HOUR_COLUMNS
    assert len(rows) == 9 * 24 and rows["hr"].tolist()[:25] == [*range(24), 0]
    expected = expected_counts(trips, "hour", False)
    joined = rows.assign(dteday=pd.to_datetime(rows["dteday"])).merge(
        expected, on=["dteday", "hr"], how="left"
    )
    np.testing.assert_array_equal(joined["cnt_x"], joined["cnt_y"].fillna(0))
    # 2024-03-10 is not in the range (no trips that day), so no DST hour here.
    _frame, report = validate_day_csv(_csv(rows), "assembled", 1, "hour")
    assert report.ok, report.failures
    assert report.warnings == []


def test_per_station_rows_cover_each_station_from_its_first_to_its_last_day(tmp_path: Path):
    starts = np.array(
        ["2024-04-01T08:00", "2024-04-03T09:00", "2024-04-02T10:00", "2024-04-02T10:30"],
        dtype="datetime64[s]",
    )
    trips = make_trips(
        starts, np.full(4, 10), np.array([1, 0, 1, 1]), np.array([31002, 31002, 31000, 31000])
    )
    path = write_trip_file(tmp_path / "s.csv", in_layout(trips, "current"))
    weather = read_weather(weather_text(pd.date_range("2024-04-01", "2024-04-03")), "day")
    rows = assemble_rows([aggregate_trip_file(path, stations=True)], weather, "day", stations=True)
    assert list(rows.columns[:3]) == ["instant", "dteday", "station"]
    assert rows[["dteday", "station", "casual", "registered", "cnt"]].values.tolist() == [
        ["2024-04-01", 31002, 0, 1, 1],
        ["2024-04-02", 31000, 0, 2, 2],
        ["2024-04-02", 31002, 0, 0, 0],
        ["2024-04-03", 31002, 1, 0, 1],
    ]
    _frame, report = validate_day_csv(_csv(rows), "assembled", 1, "day")
    assert report.ok, report.failures


def test_missing_weather_is_named_in_ranges_and_trips_outside_it_are_refused(two_files):
    paths, _ = two_files
    counts = [aggregate_trip_file(path, granularity="hour") for path in paths]
    days = pd.date_range("2024-03-02", "2024-03-09")
    text = weather_text(days, hourly=True)
    kept = [
        line
        for line in text.splitlines()
        if not line.startswith(("2024-03-04,5,", "2024-03-04,6,", "2024-03-07,"))
    ]
    weather = read_weather("\n".join(kept) + "\n", "hour")
    with pytest.raises(WeatherDataError) as raised:
        assemble_rows(counts, weather, "hour")
    assert str(raised.value) == (
        "2 problems in the weather table:\n\n"
        "trips fall outside the weather's dates (2024-03-02..2024-03-09): trips on 2024-03-01 "
        "have no weather; extend the weather table or leave those trip files out\n\n"
        "the weather table has no row for these hours between the first and the last trip: "
        "2024-03-04 05:00..2024-03-04 06:00, 2024-03-07 00:00..2024-03-07 23:00; every hour "
        "needs its weather"
    )


def test_the_hour_a_clock_skips_takes_the_weather_of_the_hour_before(tmp_path: Path):
    # 2024-03-10 02:00 does not exist in New York: a weather table in local time has no row.
    starts = np.array(["2024-03-10T01:30", "2024-03-10T03:30"], dtype="datetime64[s]")
    path = write_trip_file(
        tmp_path / "d.csv", in_layout(make_trips(starts, [5, 5], [1, 1]), "legacy")
    )
    text = weather_text(["2024-03-10"], hourly=True)
    kept = [line for line in text.splitlines() if not line.startswith("2024-03-10,2,")]
    weather = read_weather("\n".join(kept) + "\n", "hour")
    rows = assemble_rows([aggregate_trip_file(path, granularity="hour")], weather, "hour")
    assert rows["cnt"].tolist()[:4] == [0, 1, 0, 1]
    assert rows.loc[2, "temp"] == rows.loc[1, "temp"]
    with pytest.raises(WeatherDataError, match="2024-03-10 02:00"):
        assemble_rows(
            [aggregate_trip_file(path, granularity="hour")], weather, "hour", timezone="UTC"
        )


def test_holiday_calendar_and_csv_round_trip(two_files):
    paths, _ = two_files
    counts = [aggregate_trip_file(path) for path in paths]
    weather = read_weather(weather_text(pd.date_range("2024-03-01", "2024-03-09")), "day")
    rows = assemble_rows(counts, weather, "day", holiday_calendar="none")
    assert rows["holiday"].sum() == 0
    assert rows["workingday"].tolist() == [1, 0, 0, 1, 1, 1, 1, 1, 0]
    again = pd.read_csv(io.BytesIO(_csv(rows)))
    assert again["dteday"].tolist() == rows["dteday"].tolist()
