import pytest

from schemas.records import (
    COUNT_COLUMNS,
    NO_COUNTS_RULE,
    PREDICTION_COLUMNS,
    PREDICTION_STATION_UNIQUE_RULE,
    PREDICTION_UNIQUE_RULE,
)
from schemas.synthetic import make_day_frame, to_csv_bytes
from schemas.validation import validate_prediction_csv


def days_frame(n: int = 20, seed: int = 3):
    """Generated days without the count columns (and without instant)."""
    return make_day_frame(n, seed=seed)[list(PREDICTION_COLUMNS)]


def rules(report) -> set[tuple[int | None, str | None, str]]:
    return {(f.row, f.column, f.rule) for f in report.failures}


def test_days_without_counts_pass_and_keep_date_and_features():
    frame, report = validate_prediction_csv(to_csv_bytes(days_frame()), "days.csv")
    assert report.ok and frame is not None
    assert list(frame.columns) == list(PREDICTION_COLUMNS)
    assert len(frame) == 20


def test_instant_column_is_accepted_and_unordered_days_are_fine():
    full = make_day_frame(30, seed=3)
    picked = full.drop(columns=list(COUNT_COLUMNS)).iloc[[25, 3, 11]]
    frame, report = validate_prediction_csv(to_csv_bytes(picked), "days.csv")
    assert report.ok and frame is not None
    assert list(frame["dteday"].dt.strftime("%Y-%m-%d")) == list(picked["dteday"])


@pytest.mark.parametrize("column", COUNT_COLUMNS)
def test_count_columns_are_refused_by_name(column: str):
    frame = days_frame()
    frame[column] = 10
    result, report = validate_prediction_csv(to_csv_bytes(frame), "days.csv")
    assert result is None
    assert (None, column, NO_COUNTS_RULE) in rules(report)


def test_missing_feature_column_is_named():
    result, report = validate_prediction_csv(to_csv_bytes(days_frame().drop(columns="hum")), "d")
    assert result is None
    assert (None, "hum", "the required columns are present") in rules(report)
    assert "missing 'hum'; found 'dteday'" in report.failures[0].value


def test_weekday_that_disagrees_with_the_date_names_the_row():
    frame = days_frame()
    frame.loc[6, "weekday"] = (frame.loc[6, "weekday"] + 1) % 7
    result, report = validate_prediction_csv(to_csv_bytes(frame), "days.csv")
    assert result is None
    assert any(row == 7 and column == "weekday" for row, column, _ in rules(report))


def test_out_of_range_and_unparseable_values_are_listed_together():
    frame = days_frame().astype(object)
    frame.loc[2, "temp"] = 1.5
    frame.loc[4, "windspeed"] = "windy"
    result, report = validate_prediction_csv(to_csv_bytes(frame), "days.csv")
    assert result is None
    found = rules(report)
    assert any(row == 3 and column == "temp" for row, column, _ in found)
    assert (5, "windspeed", "value is a finite number") in found


def test_repeated_date_is_refused():
    frame = days_frame()
    frame = frame.iloc[[0, 1, 2, 1]]
    result, report = validate_prediction_csv(to_csv_bytes(frame), "days.csv")
    assert result is None
    assert (4, "dteday", PREDICTION_UNIQUE_RULE) in rules(report)


def test_header_only_file_is_refused():
    header = (",".join(PREDICTION_COLUMNS) + "\n").encode()
    result, report = validate_prediction_csv(header, "days.csv")
    assert result is None
    assert any("at least 1 day" in f.rule for f in report.failures)


def station_days(n: int = 10, stations: int = 3):
    from schemas.synthetic import make_records

    frame = make_records(n, stations=stations, seed=3)
    return frame[["dteday", "station", *PREDICTION_COLUMNS[1:]]]


def test_a_station_column_is_kept_and_each_date_may_repeat_once_per_station():
    frame, report = validate_prediction_csv(to_csv_bytes(station_days()), "stations.csv")
    assert report.ok and frame is not None
    assert list(frame.columns) == ["dteday", "station", *PREDICTION_COLUMNS[1:]]
    assert frame["station"].dtype == "int64" and len(frame) == 30
    assert frame["station"].tolist()[:3] == [31000, 31001, 31002]


def test_a_repeated_date_and_station_or_a_bad_station_id_is_refused():
    frame = station_days().astype(object)
    frame.loc[4, "station"] = frame.loc[3, "station"]  # (day 2, 31000) twice
    frame.loc[7, "station"] = "north"
    frame.loc[8, "station"] = -3
    result, report = validate_prediction_csv(to_csv_bytes(frame), "stations.csv")
    assert result is None
    found = rules(report)
    assert (5, "dteday", PREDICTION_STATION_UNIQUE_RULE) in found
    assert (8, "station", "value is an integer") in found
    assert any(row == 9 and column == "station" for row, column, _ in found)
