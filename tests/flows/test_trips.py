"""Trip history in, end to end (real Prefect): a folder of monthly trip files and a weather table
train and publish a model; a rerun is all cached; a new month counts only that month's file; a
bad timestamp fails the run in one paragraph; ``bikeflow aggregate`` and ``bikeflow plan``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.cli.main import main
from flows.retrain import retrain
from schemas.config import RetrainConfig, SplitConfig, TrainingConfig
from schemas.records import FEATURE_COLUMNS
from schemas.trips_config import TripsConfig
from tests.flows.project_copy import task_run_states
from tests.flows.trip_files import (
    daily_counts,
    write_history,
    write_hourly_weather,
    write_month,
    write_weather,
)

pytestmark = [pytest.mark.slow, pytest.mark.minutes(6)]

TRIP_STEPS = ("list_trip_files", "aggregate_trips", "ingest_source", "assemble_trip_rows")
DATA_STEPS = ("validate_records", "split_by_date", "normalise_features")


@pytest.fixture
def trips_config(tmp_path: Path) -> RetrainConfig:
    """Four months of trips (both layouts, zip, gzip and plain) and 200 days of weather."""
    write_history(tmp_path / "trips")
    weather = write_weather(tmp_path / "weather.csv")
    return RetrainConfig(
        source=str(tmp_path / "trips"),
        trips=TripsConfig(weather=str(weather)),
        store_root=str(tmp_path / "store"),
        output_dir=str(tmp_path / "out"),
        registry_root=str(tmp_path / "models"),
        split=SplitConfig(test_days=20),
        training=TrainingConfig(epochs=2, batch_size=16, learning_rate=0.05),
    )


def states_of(state) -> dict[str, list[str]]:
    """Task name -> the states of its runs in one retrain run (and its subflows)."""
    return task_run_states(str(state.state_details.flow_run_id), ("aggregate_trips",))


def cli_flags(config: RetrainConfig) -> list[str]:
    """The ``bikeflow run`` (or plan) flags of the config."""
    return [
        *("--source", config.source, "--weather", config.trips.weather),
        *("--store-root", config.store_root, "--output-dir", config.output_dir),
        *("--registry-root", config.registry_root, "--test-days", "20"),
        *("--epochs", "2", "--batch-size", "16", "--learning-rate", "0.05"),
    ]


def champion_pointer(config: RetrainConfig) -> bytes:
    """The registry's champion pointer file, as it is."""
    pointers = [path for path in Path(config.registry_root).rglob("*champion*") if path.is_file()]
    assert pointers, "no champion pointer"
    return b"".join(path.read_bytes() for path in sorted(pointers))


def test_a_trips_folder_trains_caches_per_file_and_fails_a_bad_file_cleanly(
    trips_config: RetrainConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    first = retrain(trips_config, return_state=True)
    assert first.is_completed(), first.message
    summary = first.result()
    assert summary.trained and summary.new_data.new_rows == 121
    metrics = json.loads((Path(summary.output_dir) / "metrics.json").read_text())
    assert metrics["split"]["test"]["last_date"] == "2024-04-30"
    states = states_of(first)
    assert states["aggregate_trips"] == ["Completed"] * 4
    assert all(states[step] == ["Completed"] for step in (*TRIP_STEPS[2:], *DATA_STEPS))

    # The same folder again: every data step is cached, each file's count too.
    states = states_of(retrain(trips_config, return_state=True))
    assert states["aggregate_trips"] == ["Cached"] * 4
    assert all(states[step] == ["Cached"] for step in (*TRIP_STEPS[2:], *DATA_STEPS))

    # A sync job adds May: plan says so, and the run counts that one file only.
    write_month(Path(trips_config.source), 2024, 5, "current", "csv")
    assert main(["plan", *cli_flags(trips_config)]) == 0
    plan = capsys.readouterr().out
    assert "ingest: 1 new file of 5" in plan and "new: 202405-tripdata.csv" in plan
    lazy = trips_config.model_copy(update={"retrain_when": "new-data"})
    third = retrain(lazy, return_state=True)
    assert third.is_completed(), third.message
    assert third.result().trained and third.result().new_data.new_rows == 31
    assert sorted(states_of(third)["aggregate_trips"]) == ["Cached"] * 4 + ["Completed"]
    champion = champion_pointer(trips_config)
    # The next night finds no new file: no new days, the run ends before training.
    quiet = retrain(lazy, return_state=True).result()
    assert not quiet.trained and quiet.new_data.new_rows == 0

    # June arrives with one timestamp that does not parse: exit 1, one paragraph, no traceback.
    june = write_month(Path(trips_config.source), 2024, 6, "current", "csv")
    june_file = Path(trips_config.source) / "202406-tripdata.csv"
    lines = june_file.read_text().splitlines()
    bad = lines[7].split(",")
    bad[2] = "2024-06-31 25:61:00"
    lines[7] = ",".join(bad)
    june_file.write_text("\n".join(lines) + "\n")
    assert len(june) > 7
    assert main(["run", *cli_flags(trips_config), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert str(june_file) in err and "line 8" in err and "2024-06-31 25:61:00" in err
    assert "Traceback" not in err
    assert err.count("bikeflow: retraining failed") == 1
    assert champion_pointer(trips_config) == champion


def test_aggregate_writes_the_uci_table_through_the_task_cache_and_keeps_a_users_file(
    trips_config: RetrainConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from flows.aggregate import aggregate_trips_table
    from schemas.aggregate_config import AggregateConfig

    output = tmp_path / "tables" / "day.csv"
    flags = [
        *("aggregate", "--trips", trips_config.source, "--weather", trips_config.trips.weather),
        *("--granularity", "day", "--store-root", trips_config.store_root),
    ]
    assert main([*flags, "--output-csv", str(output)]) == 0
    assert "rows:      121 (2024-01-01 .. 2024-04-30)" in capsys.readouterr().out
    table = pd.read_csv(output)
    assert list(table.columns) == [
        "instant",
        "dteday",
        *FEATURE_COLUMNS,
        "casual",
        "registered",
        "cnt",
    ]
    # The same months the fixture wrote, counted here independently of bikeflow.
    expected = daily_counts(write_history(tmp_path / "again"))
    counted = table.set_index("dteday")[["casual", "registered", "cnt"]]
    pd.testing.assert_frame_equal(counted, expected, check_names=False)
    assert np.all(table["hum"].between(0, 1)) and set(table["yr"]) == {13}

    # Again, as a flow: each file's count comes from the cache the first call filled.
    config = AggregateConfig.model_validate(
        {
            "trips": trips_config.source,
            "counting": {"weather": trips_config.trips.weather},
            "store_root": trips_config.store_root,
            "output_csv": str(output),  # bikeflow wrote it: it may be replaced
        }
    )
    state = aggregate_trips_table(config, return_state=True)
    assert state.is_completed()
    states = task_run_states(str(state.state_details.flow_run_id), ("aggregate_trips",))
    assert states["aggregate_trips"] == ["Cached"] * 4
    assert pd.read_csv(output).equals(table)

    # A file the user put there is refused before any work, naming it, and left as it is.
    mine = tmp_path / "tables" / "mine.csv"
    mine.write_text("my own notes\n")
    assert main([*flags, "--output-csv", str(mine)]) == 1
    err = capsys.readouterr().err
    assert str(mine) in err and "bikeflow did not write it" in err and "Traceback" not in err
    assert mine.read_text() == "my own notes\n"


def test_hourly_rows_per_station_count_every_trip_with_zero_hours_filled(
    trips_config: RetrainConfig, tmp_path: Path
):
    from flows.aggregate import aggregate_trips_table
    from schemas.aggregate_config import AggregateConfig

    weather = write_hourly_weather(tmp_path / "hourly.csv")
    output = tmp_path / "tables" / "hour.csv"
    config = AggregateConfig.model_validate(
        {
            "trips": f"{trips_config.source}/*",
            "granularity": "hour",
            "counting": {"weather": str(weather), "stations": True},
            "store_root": trips_config.store_root,
            "output_csv": str(output),
        }
    )
    state = aggregate_trips_table(config, return_state=True)
    assert state.is_completed(), state.message
    table = pd.read_csv(output)
    assert {"hr", "station"} <= set(table.columns)
    trips = write_history(tmp_path / "again")
    # Every trip is in the row of its station and local start hour; the other hours are zeros.
    assert table["cnt"].sum() == len(trips)
    by_station = table.groupby("station")["cnt"].sum()
    assert by_station.to_dict() == trips.groupby("station").size().to_dict()
    assert (table["cnt"] == 0).any() and set(table["hr"]) == set(range(24))
    assert (table["casual"] + table["registered"] == table["cnt"]).all()
