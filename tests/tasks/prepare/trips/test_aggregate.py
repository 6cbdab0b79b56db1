"""One trip file's counts: both layouts, .csv/.csv.gz/.zip, chunk borders, midnight, DST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.errors import TripDataError
from tasks.prepare.trips.aggregate import aggregate_trip_file, duplicate_rides
from tasks.prepare.trips.layouts import CURRENT
from tests.tasks.prepare.trips.trip_builder import (
    csv_text,
    expected_counts,
    in_layout,
    make_trips,
    random_trips,
    write_trip_file,
)


@pytest.mark.parametrize("layout", ["legacy", "current"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".zip"])
@pytest.mark.parametrize(("granularity", "stations"), [("day", False), ("hour", True)])
def test_counts_equal_the_plain_count(
    tmp_path: Path, layout: str, suffix: str, granularity: str, stations: bool
):
    trips = random_trips("2024-01-01", 9, 3000, seed=1, skip_days=[4])
    halves = (in_layout(trips.iloc[:1700], layout), in_layout(trips.iloc[1700:], layout))
    members = halves if suffix == ".zip" else (pd.concat(halves),)
    path = write_trip_file(tmp_path / f"trips{suffix}", *members)

    # Chunks of 257 rows: many chunk borders, and one in the middle of each zip member.
    result = aggregate_trip_file(path, granularity=granularity, stations=stations, chunk_rows=257)

    expected = expected_counts(trips, granularity, stations)
    pd.testing.assert_frame_equal(result.counts, expected, check_dtype=False)
    assert result.trips == 3000
    assert result.first_start == trips["start"].min()
    assert result.last_start == trips["start"].max()
    assert result.warnings == ()
    assert (len(result.ride_hashes) == 3000) == (layout == "current")
    assert np.all(np.diff(result.ride_hashes.astype(np.float64)) >= 0)
    # The day with no trips has no row here; assemble_rows gives it zero counts.
    assert pd.Timestamp("2024-01-05") not in set(result.counts["dteday"])


def test_a_trip_crossing_midnight_counts_on_the_day_it_starts(tmp_path: Path):
    trips = make_trips(
        np.array(["2024-05-01T23:50", "2024-05-02T00:05"], dtype="datetime64[s]"),
        np.array([30, 10]),
        np.array([True, False]),
    )
    path = write_trip_file(tmp_path / "t.csv", in_layout(trips, "current"))
    counts = aggregate_trip_file(path, granularity="hour").counts
    assert counts[["hr", "casual", "registered", "cnt"]].values.tolist() == [
        [23, 0, 1, 1],
        [0, 1, 0, 1],
    ]
    assert counts["dteday"].dt.day.tolist() == [1, 2]


def _current_file(path: Path, starts: list[str], ends: list[str], rides: list[str] | None = None):
    header = ",".join(CURRENT.columns)
    rows = [
        f"{rides[i] if rides else f'R{i}'},classic_bike,{start},{end},a,31000,b,31001,"
        f"38.9,-77.0,38.9,-77.0,member"
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_timestamps_with_an_offset_are_local_wall_clock_across_both_dst_changes(tmp_path: Path):
    # 2024-03-10: clocks in New York jump from 02:00 to 03:00 (06:30Z is 01:30 EST, 07:30Z is
    # 03:30 EDT). 2024-11-03: 01:00-02:00 happens twice (05:30Z and 06:30Z are both 01:30).
    starts = [
        "2024-03-10T06:30:00Z",
        "2024-03-10T07:30:00+00:00",
        "2024-11-03T05:30:00Z",
        "2024-11-03T06:30:00Z",
        "2024-11-03 09:00:00",  # a naive one in the same chunk: local already
    ]
    ends = ["2024-03-10T07:40:00Z", "2024-03-10T07:50:00Z", "2024-11-03T06:20:00Z"]
    ends += ["2024-11-03T06:40:00Z", "2024-11-03 09:10:00"]
    path = _current_file(tmp_path / "dst.csv", starts, ends)
    counts = aggregate_trip_file(path, granularity="hour").counts
    got = {(f"{day:%m-%d}", hour): n for day, hour, n in counts[["dteday", "hr", "cnt"]].values}
    assert got == {("03-10", 1): 1, ("03-10", 3): 1, ("11-03", 1): 2, ("11-03", 9): 1}


def test_a_naive_trip_in_the_repeated_hour_may_end_before_it_starts_on_the_clock(
    tmp_path: Path,
):
    # 01:55 EDT to 01:05 EST is a 10-minute ride; 03:55 to 03:05 is not possible.
    good = _current_file(tmp_path / "good.csv", ["2024-11-03 01:55:00"], ["2024-11-03 01:05:00"])
    assert aggregate_trip_file(good).trips == 1
    bad = _current_file(tmp_path / "bad.csv", ["2024-11-03 03:55:00"], ["2024-11-03 03:05:00"])
    with pytest.raises(TripDataError) as raised:
        aggregate_trip_file(bad)
    message = str(raised.value)
    assert "bad.csv, line 2" in message and "ends before it starts" in message
    assert "2024-11-03 03:55:00 to 2024-11-03 03:05:00" in message


def _with_bad_line(tmp_path: Path, name: str, layout: str, column: str, value: str) -> Path:
    trips = random_trips("2024-02-01", 3, 600, seed=2)
    frame = in_layout(trips, layout)
    frame[column] = frame[column].astype(object)
    frame.loc[436, column] = value  # data row 436 is line 438 (the header is line 1)
    return write_trip_file(tmp_path / name, frame)


@pytest.mark.parametrize(
    ("layout", "column", "value", "says"),
    [
        ("current", "started_at", "2024-02-31 08:00:00", "does not parse as a date and time"),
        ("legacy", "End date", "yesterday", "does not parse as a date and time"),
        ("legacy", "Member type", "Unknown", "is neither a member nor a casual rider"),
        ("current", "member_casual", "", "is neither a member nor a casual rider"),
        ("current", "ended_at", "2024-01-01 00:00:00", "ends before it starts"),
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".zip"])
def test_a_bad_row_is_one_paragraph_naming_file_line_and_value(
    tmp_path: Path, layout: str, column: str, value: str, says: str, suffix: str
):
    path = _with_bad_line(tmp_path, f"2024-02{suffix}", layout, column, value)
    with pytest.raises(TripDataError) as raised:
        aggregate_trip_file(path, chunk_rows=100)
    message = str(raised.value)
    place = f"{path}:2024-02.csv" if suffix == ".zip" else str(path)
    assert message.startswith(f"{place}, line 438: column ")
    assert says in message
    assert value in message
    assert "\n" not in message  # one problem, one paragraph


def test_several_problems_are_a_paragraph_each_and_the_rest_are_counted(tmp_path: Path):
    trips = random_trips("2024-02-01", 3, 300, seed=3)
    frame = in_layout(trips, "current")
    frame.loc[10:29, "member_casual"] = "Subscriber"
    frame.loc[50, "started_at"] = "not a time"
    path = write_trip_file(tmp_path / "many.csv", frame)
    with pytest.raises(TripDataError) as raised:
        aggregate_trip_file(path, chunk_rows=16)
    paragraphs = str(raised.value).split("\n\n")
    assert paragraphs[0] == "7 problems in the trip files:"
    named = [p for p in paragraphs if "'Subscriber'" in p]
    assert [p.split(": column")[0].rsplit(", ", 1)[1] for p in named] == [
        f"line {n}" for n in range(12, 17)
    ]
    assert any("line 52" in p and "'not a time'" in p for p in paragraphs)
    assert paragraphs[-1] == "... and 15 more row(s) breaking the member rule"


def test_a_ride_id_twice_in_a_file_names_both_lines_and_the_id(tmp_path: Path):
    rides = ["AAA1", "BBB2", "CCC3", "BBB2"]
    times = ["2024-01-01 08:00:00"] * 4
    path = _current_file(tmp_path / "dup.csv", times, ["2024-01-01 08:10:00"] * 4, rides)
    with pytest.raises(TripDataError) as raised:
        aggregate_trip_file(path, chunk_rows=2)
    assert str(raised.value) == (
        f"{path}, line 5: column ride_id: the ride 'BBB2' appeared before, on line 3; "
        "every ride_id must be unique"
    )


def test_rides_shared_between_files_are_found(tmp_path: Path):
    trips = random_trips("2024-03-01", 4, 500, seed=4)
    first = write_trip_file(tmp_path / "a.csv", in_layout(trips.iloc[:300], "current"))
    second = write_trip_file(tmp_path / "b.zip", in_layout(trips.iloc[250:], "current"))
    third = write_trip_file(
        tmp_path / "c.csv.gz", in_layout(random_trips("2024-03-05", 1, 9, seed=5), "current")
    )
    counts = [aggregate_trip_file(path, chunk_rows=64) for path in (first, second, third)]
    problems = duplicate_rides(counts)
    assert problems == [
        f"{second}: 50 ride_id(s) also appear in {first}; a ride must be in one file only "
        "(is a file there twice, or do two files cover the same days?)"
    ]
    assert duplicate_rides([counts[0], counts[2]]) == []


def test_long_trips_are_a_warning_with_an_example(tmp_path: Path):
    trips = make_trips(
        np.array(["2024-06-01T10:00"] * 3, dtype="datetime64[s]"),
        np.array([20, 60 * 30, 60 * 50]),
        np.array([True, True, False]),
    )
    path = write_trip_file(tmp_path / "long.csv", in_layout(trips, "legacy"))
    result = aggregate_trip_file(path)
    assert result.counts["cnt"].tolist() == [3]
    assert result.warnings == (
        f"{path}: 2 trip(s) last over a day, e.g. line 3: 2024-06-01 10:00:00 to "
        "2024-06-02 16:00:00 (counted by their start; a bike not docked back?)",
    )


def test_blank_lines_are_no_trips_and_keep_line_numbers(tmp_path: Path):
    trips = make_trips(
        np.array(["2024-06-01T10:00", "2024-06-01T11:00"], dtype="datetime64[s]"),
        np.array([5, 5]),
        np.array([True, False]),
    )
    lines = csv_text(in_layout(trips, "current")).splitlines()
    text = "\n".join(
        [
            lines[0],
            lines[1],
            "",
            lines[2],
            "R9,x,oops,2024-06-01 12:00:00,a,1,b,2,0,0,0,0,member",
            "",
        ]
    )
    path = tmp_path / "blank.csv"
    path.write_text(text + "\n\n")
    with pytest.raises(TripDataError) as raised:
        aggregate_trip_file(path)
    assert str(raised.value).startswith(f"{path}, line 5: column started_at: the value 'oops'")
    path.write_text("\n".join([*lines[:2], "", *lines[2:]]) + "\n\n")
    assert aggregate_trip_file(path).trips == 2


def test_an_unknown_header_is_refused_naming_the_file_and_columns(tmp_path: Path):
    path = write_trip_file(
        tmp_path / "odd.zip", "tripduration,starttime,stoptime,usertype\n1,2,3,4\n"
    )
    with pytest.raises(TripDataError) as raised:
        aggregate_trip_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:odd.csv: the header is not a trip history layout")
    assert "Columns found: tripduration, starttime, stoptime, usertype." in message


def test_station_ids_must_be_whole_numbers_and_dockless_trips_are_a_warning(tmp_path: Path):
    trips = random_trips("2024-07-01", 2, 200, seed=6)
    frame = in_layout(trips, "current")
    frame["start_station_id"] = frame["start_station_id"].astype(object)
    frame.loc[[5, 6], "start_station_id"] = ""
    path = write_trip_file(tmp_path / "dockless.csv", frame)
    result = aggregate_trip_file(path, stations=True)
    assert result.counts["cnt"].sum() == 198
    assert result.warnings == (
        f"{path}: 2 trip(s) have no start station (dockless); they are left out of the "
        "per-station counts",
    )
    assert aggregate_trip_file(path).counts["cnt"].sum() == 200  # not per station: all count
    frame.loc[9, "start_station_id"] = "5329.03"
    write_trip_file(path, frame)
    with pytest.raises(
        TripDataError, match=r"line 11: column start_station_id: the value '5329.03'"
    ):
        aggregate_trip_file(path, stations=True)


def test_an_unknown_timezone_is_refused(tmp_path: Path):
    path = _current_file(tmp_path / "t.csv", ["2024-01-01 08:00:00"], ["2024-01-01 08:10:00"])
    with pytest.raises(TripDataError, match="'Mars/Olympus' is not an IANA time zone"):
        aggregate_trip_file(path, timezone="Mars/Olympus")
    europe = aggregate_trip_file(
        _current_file(tmp_path / "z.csv", ["2024-01-01T23:30:00Z"], ["2024-01-01T23:50:00Z"]),
        timezone="Europe/Paris",
        granularity="hour",
    )
    assert europe.counts[["hr"]].values.tolist() == [[0]]
    assert europe.counts["dteday"].tolist() == [pd.Timestamp("2024-01-02")]
