"""The UCI calendar columns, the holiday calendars, the weather table, and finding trip files."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.errors import SourceError, WeatherDataError
from tasks.prepare.trips.calendar import calendar_columns, holiday_dates
from tasks.prepare.trips.files import find_trip_files, open_trip_members
from tasks.prepare.trips.weather import read_weather
from tests.tasks.prepare.trips.trip_builder import weather_text


def test_us_dc_adds_emancipation_day_observed_to_the_federal_holidays():
    dc = holiday_dates([2011, 2012], "us-dc")
    federal = holiday_dates([2011, 2012], "us-federal")
    # 16 April 2011 was a Saturday: observed on Friday the 15th; 2012's was a Monday.
    assert dc - federal == {dt.date(2011, 4, 15), dt.date(2012, 4, 16)}
    assert len(federal) == 19  # 2011-01-01 (a Saturday) was observed on 2010-12-31
    assert dt.date(2011, 12, 26) in federal and dt.date(2012, 11, 12) in federal
    assert holiday_dates([2011, 2012], "none") == set()


def test_juneteenth_from_2021_and_new_year_observed_the_year_before():
    assert dt.date(2021, 6, 18) in holiday_dates([2021], "us-federal")  # the 19th: a Saturday
    assert dt.date(2020, 6, 19) not in holiday_dates([2020], "us-federal")
    # 2022-01-01 was a Saturday: observed on Friday 2021-12-31, a holiday of 2021's table.
    assert dt.date(2021, 12, 31) in holiday_dates([2021], "us-dc")
    assert dt.date(2022, 1, 1) not in holiday_dates([2022], "us-dc")
    with pytest.raises(ValueError, match="us-dc, us-federal, none"):
        holiday_dates([2022], "uk")  # type: ignore[arg-type]


def test_calendar_columns_follow_the_uci_definitions():
    dates = pd.to_datetime(
        ["2011-03-20", "2011-03-21", "2011-06-21", "2011-09-22", "2011-09-23", "2012-12-20",
         "2012-12-21", "2024-07-04", "2024-07-06"]
    )  # fmt: skip
    columns = calendar_columns(dates)
    assert list(columns.columns) == ["season", "yr", "mnth", "holiday", "weekday", "workingday"]
    assert columns["season"].tolist() == [1, 2, 3, 3, 4, 4, 1, 3, 3]
    assert columns["yr"].tolist() == [0, 0, 0, 0, 0, 1, 1, 13, 13]
    assert columns["weekday"].tolist() == [0, 1, 2, 4, 5, 4, 5, 4, 6]
    assert columns["holiday"].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 0]
    assert columns["workingday"].tolist() == [0, 1, 1, 1, 1, 1, 1, 0, 0]
    hourly = calendar_columns(dates[:2], hours=[5, 23], first_year=2011)
    assert list(hourly.columns) == [
        "season",
        "yr",
        "mnth",
        "hr",
        "holiday",
        "weekday",
        "workingday",
    ]
    assert hourly["hr"].tolist() == [5, 23]
    assert calendar_columns(dates[-2:], first_year=2024)["yr"].tolist() == [0, 0]


def test_weather_is_normalised_as_the_uci_readme():
    text = "date,temp_c,feels_like_c,humidity_pct,wind_kmh,weathersit,station_note\n"
    text += "2024-01-02,20.5,25,81,33.5,2,x\n2024-01-01,41,0,100,0,1,y\n"
    table = read_weather(text, "day")
    assert list(table.columns) == ["dteday", "weathersit", "temp", "atemp", "hum", "windspeed"]
    assert table["dteday"].dt.day.tolist() == [1, 2]  # sorted
    np.testing.assert_allclose(
        table[["temp", "atemp", "hum", "windspeed"]].to_numpy()[1], [0.5, 0.5, 0.81, 0.5]
    )
    assert table["weathersit"].tolist() == [1, 2]
    hourly = read_weather(weather_text(["2024-01-01", "2024-01-02"], hourly=True), "hour")
    assert len(hourly) == 48 and hourly["hr"].tolist()[:3] == [0, 1, 2]


def test_weather_problems_name_the_line_and_value(tmp_path: Path):
    path = tmp_path / "weather.csv"
    path.write_text(
        "date,hour,temp_c,feels_like_c,humidity_pct,wind_kmh,weathersit\n"
        "2024-01-01,0,10,10,50,5,1\n"
        "2024-01-01,24,10,10,50,5,1\n"
        "2024-01-01,1,-3.5,10,50,5,1\n"
        "2024-01-01,2,10,10,50,5,5\n"
        "2024-02-30,3,10,10,50,5,1\n"
        "2024-01-01,4,10,10,abc,5,1\n"
    )
    with pytest.raises(WeatherDataError) as raised:
        read_weather(path, "hour")
    paragraphs = str(raised.value).split("\n\n")
    assert paragraphs[0] == "5 problems in the weather table:"
    assert f"{path}, line 3: column hour: the value '24' is not an hour 0..23" in paragraphs
    assert any(
        p.startswith(f"{path}, line 4: column temp_c: the value '-3.5' is outside 0..41")
        for p in paragraphs
    )
    assert (
        f"{path}, line 5: column weathersit: the value '5' is not a weather situation 1, 2, 3 or 4"
        in paragraphs
    )
    assert (
        f"{path}, line 6: column date: the value '2024-02-30' is not a YYYY-MM-DD date"
        in paragraphs
    )
    assert any(
        p.startswith(f"{path}, line 7: column humidity_pct: the value 'abc'") for p in paragraphs
    )


def test_weather_refuses_missing_columns_and_repeated_days(tmp_path: Path):
    with pytest.raises(
        WeatherDataError, match=r"lacks the column\(s\) hour\. Columns found: date, temp_c"
    ):
        read_weather(weather_text(["2024-01-01"]), "hour")
    repeated = weather_text(["2024-01-01", "2024-01-02", "2024-01-01"])
    with pytest.raises(WeatherDataError) as raised:
        read_weather(repeated, "day")
    assert str(raised.value) == (
        "weather table, line 4: column date: the value '2024-01-01' appears twice "
        "(one weather row per day)"
    )


def test_trip_files_of_a_folder_or_a_glob(tmp_path: Path):
    for name in (
        "202402-tripdata.zip",
        "202401-tripdata.csv",
        "old.csv.gz",
        "notes.txt",
        ".hidden.csv",
    ):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "202403.csv").write_text("x")
    names = [path.name for path in find_trip_files(tmp_path)]
    assert names == ["202401-tripdata.csv", "202402-tripdata.zip", "old.csv.gz"]
    assert [path.name for path in find_trip_files(str(tmp_path / "2024*"))] == names[:2]
    assert find_trip_files(tmp_path / "old.csv.gz") == [tmp_path / "old.csv.gz"]
    with pytest.raises(SourceError, match="no trip files found"):
        find_trip_files(tmp_path / "sub" / "*.zip")


def test_a_broken_zip_is_a_source_error(tmp_path: Path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SourceError, match=r"broken\.zip: cannot be read as \.zip"):
        list(open_trip_members(path))


def test_the_trip_modules_import_no_prefect():
    modules = ["aggregate", "assemble", "calendar", "files", "layouts", "parsing", "weather"]
    code = "import sys\n" + "".join(f"import tasks.prepare.trips.{name}\n" for name in modules)
    code += "assert 'prefect' not in sys.modules, 'prefect imported'\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
