import pandas as pd
import pytest

from schemas.records import DAY_COLUMNS, HOUR_COLUMNS
from schemas.synthetic import make_day_frame, make_records, to_csv_bytes
from schemas.validation import validate_day_csv


def _validate(frame: pd.DataFrame, min_rows: int = 10):
    return validate_day_csv(to_csv_bytes(frame), "days.csv", min_rows)


def _frame() -> pd.DataFrame:
    return make_day_frame(60, seed=3).astype(object)


def test_generated_days_pass_every_rule():
    typed, report = _validate(make_day_frame(400, seed=5))
    assert report.ok, [f.describe() for f in report.failures]
    assert typed is not None and len(typed) == 400
    assert str(typed["dteday"].dtype).startswith("datetime64")


def _set(row, column, value):
    def mutate(frame):
        frame.loc[row, column] = value

    return mutate


def _swap_rows(a, b):
    def mutate(frame):
        frame.loc[[a, b], "dteday"] = frame.loc[[b, a], "dteday"].to_numpy()

    return mutate


def _workingday_flip(frame):
    frame.loc[10, "workingday"] = 1 - int(frame.loc[10, "workingday"])


# (mutation, row reported (1-based), column reported, words of the rule)
BROKEN_RULES = [
    (_set(4, "season", 5), 5, "season", "isin"),
    (_set(4, "yr", -1), 5, "yr", "greater_than_or_equal_to"),
    (_set(4, "yr", 1), 5, "yr", "yr = year of dteday"),
    (_set(4, "mnth", 13), 5, "mnth", "less_than_or_equal_to"),
    (_set(4, "mnth", 2), 5, "mnth", "mnth = month of dteday"),
    (_set(4, "holiday", 2), 5, "holiday", "isin"),
    (_set(4, "weekday", 7), 5, "weekday", "less_than_or_equal_to"),
    (
        _set(4, "weekday", (int(make_day_frame(60, seed=3).loc[4, "weekday"]) + 1) % 7),
        5,
        "weekday",
        "day of week",
    ),
    (_set(4, "workingday", 3), 5, "workingday", "isin"),
    (_workingday_flip, 11, "workingday", "workingday = 1 exactly"),
    (_set(4, "weathersit", 0), 5, "weathersit", "isin"),
    (_set(4, "temp", 1.2), 5, "temp", "less_than_or_equal_to"),
    (_set(4, "atemp", -0.1), 5, "atemp", "greater_than_or_equal_to"),
    (_set(4, "hum", 1.01), 5, "hum", "less_than_or_equal_to"),
    (_set(4, "windspeed", -0.5), 5, "windspeed", "greater_than_or_equal_to"),
    (_set(4, "casual", -3), 5, "casual", "greater_than_or_equal_to"),
    (_set(4, "cnt", 1), 5, "cnt", "cnt = casual + registered"),
    (_set(4, "instant", 0), 5, "instant", "greater_than_or_equal_to"),
    (_set(4, "temp", ""), 5, "temp", "not empty"),
    (_set(4, "cnt", "12.5"), 5, "cnt", "integer"),
    (_set(4, "hum", "humid"), 5, "hum", "finite number"),
    (_set(4, "dteday", "2011/01/05"), 5, "dteday", "date YYYY-MM-DD"),
    (_set(5, "dteday", "2011-01-05"), 6, "dteday", "unique dates"),
    (_swap_rows(20, 21), 22, "dteday", "sorted"),
]


@pytest.mark.parametrize(("mutate", "row", "column", "rule"), BROKEN_RULES)
def test_each_broken_rule_is_reported_with_row_column_rule_and_value(mutate, row, column, rule):
    frame = _frame()
    mutate(frame)
    typed, report = _validate(frame)
    assert typed is None
    matching = [
        f for f in report.failures if f.row == row and f.column == column and rule in f.rule
    ]
    assert matching, [f.describe() for f in report.failures]
    assert matching[0].value


def test_gap_in_dates_is_an_error():
    frame = make_day_frame(60, seed=3).drop(index=30).reset_index(drop=True)
    typed, report = _validate(frame)
    assert typed is None
    assert any("no gaps" in f.rule and f.row == 31 for f in report.failures)


def test_all_failures_are_collected_together():
    frame = _frame()
    frame.loc[3, "hum"] = 1.5
    frame.loc[9, "cnt"] = 7
    frame.loc[15, "season"] = "x"
    _, report = _validate(frame)
    assert {(f.row, f.column) for f in report.failures} >= {(4, "hum"), (10, "cnt"), (16, "season")}


def test_too_few_rows_for_the_split():
    _, report = _validate(make_day_frame(20), min_rows=141)
    assert any("at least 141 days" in f.rule and f.value == "20 days" for f in report.failures)


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (b"", "header row"),
        (b"\xff\xfe\x00bad", "UTF-8"),
        (",".join(DAY_COLUMNS).encode() + b"\n1,2\n", "not empty"),
        (b"instant,dteday\n1,2011-01-01\n", "the required columns are present"),
        (",".join(DAY_COLUMNS).encode() + b"\n" + b",".join([b"1"] * 18) + b"\n", "as many fields"),
    ],
)
def test_malformed_files_are_reported_not_raised(data, rule):
    typed, report = validate_day_csv(data, "bad.csv", 1)
    assert typed is None
    assert any(rule in f.rule for f in report.failures), [f.describe() for f in report.failures]


def test_unexpected_column_is_an_error():
    frame = make_day_frame(30)
    frame["extra"] = 1
    _, report = _validate(frame)
    assert any(f.column == "extra" and "unexpected" in f.rule for f in report.failures)


def test_suspicious_values_are_warnings_not_errors():
    frame = make_day_frame(60, seed=3)
    frame.loc[7, "hum"] = 0.0
    typed, report = _validate(frame)
    assert report.ok and typed is not None
    assert any(w.row == 8 and w.column == "hum" for w in report.warnings)


# --- chunked validation, hourly records, stations ---------------------------------------


def test_rules_between_rows_hold_across_chunk_borders():
    frame = make_day_frame(60, seed=3).astype(object)
    frame.loc[16, "dteday"] = frame.loc[15, "dteday"]  # row 17 repeats row 16: chunk border
    frame.loc[40, "hum"] = "wet"  # a parse failure in the third chunk
    typed, report = validate_day_csv(to_csv_bytes(frame), "days.csv", 10, chunk_rows=16)
    assert typed is None
    assert any(f.row == 17 and "unique dates" in f.rule for f in report.failures)
    assert any(f.row == 41 and f.column == "hum" and f.value == "'wet'" for f in report.failures)


def test_chunked_validation_returns_the_same_rows_as_one_chunk():
    data = to_csv_bytes(make_records(40, stations=3, granularity="hour", seed=1))
    whole, _ = validate_day_csv(data, "h.csv", 10, "hour")
    chunked, report = validate_day_csv(data, "h.csv", 10, "hour", chunk_rows=100)
    assert report.ok and whole is not None and chunked is not None
    pd.testing.assert_frame_equal(whole, chunked)
    assert list(whole.index[:3]) == [0, 1, 2] and whole.index[-1] == len(whole) - 1


def test_generated_hours_and_stations_pass_every_rule():
    for stations, granularity in ((0, "hour"), (4, "day"), (4, "hour")):
        frame = make_records(30, stations=stations, granularity=granularity, seed=2)
        typed, report = validate_day_csv(to_csv_bytes(frame), "x.csv", 10, granularity, 97)
        assert report.ok, [f.describe() for f in report.failures]
        assert typed is not None and len(typed) == len(frame)
    assert list(make_records(2, granularity="hour").columns) == list(HOUR_COLUMNS)


def test_missing_hours_are_a_warning_with_the_count():
    frame = make_records(20, granularity="hour", seed=4)
    frame = frame.drop(index=[30, 31, 200]).reset_index(drop=True)
    typed, report = validate_day_csv(to_csv_bytes(frame), "hour.csv", 10, "hour", chunk_rows=64)
    assert report.ok and typed is not None
    gaps = [w for w in report.warnings if w.row is not None and "missing hour" in w.rule]
    assert [(w.row, w.value.split()[0]) for w in gaps] == [(31, "2"), (199, "1")]
    assert any(w.value == "3 hour(s) missing in 2 gap(s)" for w in report.warnings)


def test_duplicate_hour_is_an_error():
    frame = make_records(5, granularity="hour", seed=4)
    frame.loc[50, "hr"] = frame.loc[49, "hr"]
    typed, report = validate_day_csv(to_csv_bytes(frame), "hour.csv", 1, "hour")
    assert typed is None
    assert any(f.row == 51 and "unique records" in f.rule for f in report.failures)


def test_hour_out_of_range_is_an_error():
    frame = make_records(5, granularity="hour", seed=4)
    frame.loc[7, "hr"] = 24
    _, report = validate_day_csv(to_csv_bytes(frame), "hour.csv", 1, "hour")
    assert any(f.row == 8 and f.column == "hr" and f.value == "24" for f in report.failures)


def test_a_station_missing_a_day_is_an_error_naming_the_station():
    frame = make_records(30, stations=3, seed=5)
    # Day 11 of the second station (31001) is missing; the other stations are complete.
    drop = frame.index[(frame["dteday"] == "2011-01-11") & (frame["station"] == 31001)]
    frame = frame.drop(index=drop).reset_index(drop=True)
    typed, report = validate_day_csv(to_csv_bytes(frame), "s.csv", 10, chunk_rows=20)
    assert typed is None
    gaps = [f for f in report.failures if "station's previous row" in f.rule]
    assert len(gaps) == 1 and "station=31001" in gaps[0].value and "2011-01-12" in gaps[0].value


def test_duplicate_and_unsorted_station_rows_are_errors():
    frame = make_records(20, stations=3, seed=5)
    frame.loc[10, "station"] = frame.loc[9, "station"]  # (date, station) twice
    frame.loc[[22, 23], "station"] = frame.loc[[23, 22], "station"].to_numpy()  # same day
    typed, report = validate_day_csv(to_csv_bytes(frame), "s.csv", 1)
    assert typed is None
    assert any(f.row == 11 and "unique records" in f.rule for f in report.failures)
    assert any(f.row == 24 and "sorted" in f.rule for f in report.failures)


def test_a_rule_broken_on_every_row_is_listed_a_few_times_and_counted():
    frame = make_day_frame(200, seed=1)
    frame["cnt"] = frame["cnt"] + 1
    _, report = validate_day_csv(to_csv_bytes(frame), "d.csv", 10)
    rule = "cnt = casual + registered"
    assert report.failure_counts[rule] == 200
    assert len([f for f in report.failures if f.rule == rule]) == 51  # 50 rows + "... and 150"
    assert report.to_json()["failure_counts"][rule] == 200


def test_hourly_rules_keep_their_names_after_daily_validation():
    from schemas.synthetic import make_records

    assert _validate(make_day_frame(60))[1].ok  # uses DayRecords, HourRecords' parent, first
    hours = make_records(30, granularity="hour")
    hours.loc[30, "weekday"] = (hours.loc[30, "weekday"] + 1) % 7
    _, report = validate_day_csv(to_csv_bytes(hours), "h.csv", 10, granularity="hour")
    assert any(
        f.row == 31 and f.column == "weekday" and "day of week" in f.rule for f in report.failures
    ), [f.describe() for f in report.failures]
