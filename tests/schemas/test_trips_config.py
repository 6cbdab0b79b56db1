"""A trips source (a folder or glob of trip files) and the fields that say how it is counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.utilities.callables import parameter_schema
from pydantic import ValidationError

from flows.cli.main import main, make_parser
from schemas.config import RetrainConfig
from schemas.errors import SourceError, SourceRefusedError
from schemas.ownership import MARKER, marker_bytes
from schemas.source import LocalSource, TripsSource, parse_source
from schemas.sources import SOURCE_ROOTS_ENV, allowed_source
from schemas.trips_config import TripsConfig


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder of trip files (their content does not matter to the config)."""
    trips = tmp_path / "trips"
    trips.mkdir()
    (trips / "202401-tripdata.csv").write_text("ride_id\n")
    return trips


def test_a_folder_or_a_glob_is_a_trips_source_and_a_file_stays_a_file(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    assert parse_source(str(folder)) == TripsSource(str(folder), folder, str(folder))
    assert parse_source(f"file://{folder}") == TripsSource(f"file://{folder}", folder, str(folder))
    monkeypatch.chdir(tmp_path)
    pattern = parse_source("trips/../trips/2024*.csv")
    assert isinstance(pattern, TripsSource)
    assert pattern.folder == folder and pattern.pattern == str(folder / "2024*.csv")
    # An existing file whose name holds a glob character is still that one file.
    odd = tmp_path / "day[1].csv"
    odd.write_text("x\n")
    assert parse_source(str(odd)) == LocalSource(str(odd), odd)
    assert parse_source(str(tmp_path / "missing.csv")) == LocalSource(
        str(tmp_path / "missing.csv"), tmp_path / "missing.csv"
    )
    with pytest.raises(SourceError, match="folder or pattern of trip files"):
        pattern.existing_file()


def test_the_allow_list_covers_the_trip_folder(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(SOURCE_ROOTS_ENV, str(folder))
    assert isinstance(allowed_source(f"{folder}/*.zip"), TripsSource)
    with pytest.raises(SourceRefusedError, match=f"source {tmp_path} is not under a folder"):
        allowed_source(f"{tmp_path}/*/*.zip")


def test_a_trips_source_needs_weather_and_other_sources_refuse_it(folder: Path, tmp_path: Path):
    config = RetrainConfig(source=str(folder), trips=TripsConfig(weather="weather.csv"))
    assert config.trips.timezone == "America/New_York"
    assert config.trips.holiday_calendar == "us-dc"
    with pytest.raises(ValidationError, match=r"trips\.weather: source .* is trip files"):
        RetrainConfig(source=str(folder))
    day = tmp_path / "day.csv"
    with pytest.raises(ValidationError, match=r"trips\.weather: only a trips source"):
        RetrainConfig(source=str(day), trips=TripsConfig(weather="weather.csv"))
    with pytest.raises(ValidationError, match=r"trips\.stations: only a trips source"):
        RetrainConfig(source=str(day), trips=TripsConfig(stations=True))


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "EST5EDT ", ""])
def test_a_time_zone_is_an_iana_name(zone: str):
    with pytest.raises(ValidationError, match=r"trips\.timezone"):
        RetrainConfig(trips={"timezone": zone})
    assert RetrainConfig(trips={"timezone": "Europe/London"}).trips.timezone == "Europe/London"


def test_the_holiday_calendar_is_one_of_three():
    for calendar in ("us-dc", "us-federal", "none"):
        assert (
            RetrainConfig(trips={"holiday_calendar": calendar}).trips.holiday_calendar == calendar
        )
    with pytest.raises(ValidationError, match="holiday_calendar"):
        RetrainConfig(trips={"holiday_calendar": "uk"})


def test_an_output_folder_may_not_hold_the_trip_folder(folder: Path):
    # An output folder bikeflow made (it could replace it), which holds the trip files.
    (folder.parent / MARKER).write_bytes(marker_bytes("output_dir"))
    with pytest.raises(ValidationError, match="it holds source"):
        RetrainConfig(
            source=str(folder / "*.csv"),
            trips=TripsConfig(weather="w.csv"),
            output_dir=str(folder.parent),
        )


def test_the_flags_and_the_ui_form_come_from_the_model(folder: Path):
    from flows.retrain import retrain

    args = make_parser().parse_args(
        [
            *("run", "--source", str(folder), "--weather", "w.csv"),
            *("--timezone", "America/Chicago", "--holiday-calendar", "us-federal"),
            *("--stations", "true"),
        ]
    )
    assert (args.weather, args.timezone, args.holiday_calendar, args.stations) == (
        "w.csv",
        "America/Chicago",
        "us-federal",
        True,
    )
    schema = parameter_schema(retrain).model_dump_for_openapi()
    trips = schema["definitions"]["TripsConfig"]["properties"]
    assert set(trips) == {"weather", "timezone", "holiday_calendar", "stations"}
    assert trips["holiday_calendar"]["enum"] == ["us-dc", "us-federal", "none"]
    assert all(field["description"] for field in trips.values())


def test_the_cli_refuses_a_trips_source_without_weather(folder: Path, capsys):
    assert main(["run", "--source", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "trips.weather" in err and "Traceback" not in err
