"""The corpus of malformed inputs: each fails loudly, names its place, and changes nothing.

Every case is built in code from the project's generator (no row of the real dataset), as the
bytes a user could hand us. ``EXPECTED`` says what the error must name: the file always, and
the row, column, rule and value where the fault has them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from flows.cli.main import main
from schemas.synthetic import make_day_frame, to_csv_bytes
from schemas.validation import validate_day_csv
from tasks.prepare.validate import minimum_rows

TEST_DAYS = 30
ROWS = 80


def _lines() -> list[str]:
    return to_csv_bytes(make_day_frame(ROWS, seed=3)).decode().splitlines()


def _join(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _set(row: int, column: str, value: str) -> Callable[[], bytes]:
    """A file whose data row ``row`` (1-based) has ``value`` in ``column``."""

    def build() -> bytes:
        lines = _lines()
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        return _join(lines)

    return build


def _drop_column(column: str) -> bytes:
    lines = _lines()
    index = lines[0].split(",").index(column)
    return _join(
        [",".join(c for i, c in enumerate(line.split(",")) if i != index) for line in lines]
    )


def _rename_column(old: str, new: str) -> bytes:
    lines = _lines()
    lines[0] = lines[0].replace(old, new)
    return _join(lines)


def _swap_rows(a: int, b: int) -> bytes:
    lines = _lines()
    lines[a], lines[b] = lines[b], lines[a]
    return _join(lines)


def _duplicate_row(row: int) -> bytes:
    lines = _lines()
    return _join([*lines[: row + 1], lines[row], *lines[row + 1 :]])


def _drop_row(row: int) -> bytes:
    lines = _lines()
    return _join(lines[:row] + lines[row + 1 :])


def _ragged(row: int, extra: bool) -> bytes:
    lines = _lines()
    lines[row] = lines[row] + ",42" if extra else lines[row].rsplit(",", 2)[0]
    return _join(lines)


def _latin1(row: int) -> bytes:
    data = _lines()
    data[row] = data[row].replace(",1,", ",1\xe9,", 1)
    return "\n".join(data).encode("latin-1")


def _first_rows(count: int) -> bytes:
    return _join(_lines()[: count + 1])


def _semicolons() -> bytes:
    return _join([line.replace(",", ";") for line in _lines()])


def _hourly() -> bytes:
    lines = _lines()
    header = lines[0].split(",")
    header.insert(5, "hr")
    rows = [line.split(",") for line in lines[1:]]
    for cells in rows:
        cells.insert(5, "0")
    return _join([",".join(header), *(",".join(cells) for cells in rows)])


def _unterminated_quote(row: int) -> bytes:
    lines = _lines()
    lines[row] = lines[row].replace(",", ',"', 1)
    return _join(lines)


def _counts_inconsistent(row: int) -> bytes:
    lines = _lines()
    cells = lines[row].split(",")
    cells[-1] = str(int(cells[-1]) + 1)
    lines[row] = ",".join(cells)
    return _join(lines)


def _zip_of_csv_with_nul() -> bytes:
    data = _set(7, "temp", "0.2\x003")()
    return data


# name -> (bytes builder, fragments the error message and the report must contain)
CASES: dict[str, tuple[Callable[[], bytes], tuple[str, ...]]] = {
    "empty-file": (lambda: b"", ("file has a header row", "empty file")),
    "whitespace-only": (lambda: b"\n  \n\n", ("file has a header row", "empty file")),
    "header-only": (lambda: _first_rows(0), ("at least", "0 days")),
    "too-few-rows-for-split": (lambda: _first_rows(20), ("at least", "20 days")),
    "missing-column": (
        lambda: _drop_column("hum"),
        ("the required columns are present", "missing 'hum'; found 'instant'"),
    ),
    "renamed-column": (
        lambda: _rename_column("windspeed", "wind"),
        ("the required columns are present", "missing 'windspeed'", "'wind'"),
    ),
    "unexpected-column": (
        lambda: _join([line + ",1" if i else line + ",extra" for i, line in enumerate(_lines())]),
        ("column extra", "no unexpected columns", "'extra'"),
    ),
    "duplicate-column": (
        lambda: _rename_column("casual", "cnt"),
        ("column cnt", "column names are unique", "given more than once: 'cnt'", "'casual'"),
    ),
    "hourly-file-instead-of-daily": (
        _hourly,
        ("column hr", "a daily table has no hr column", "looks like hourly data"),
    ),
    "semicolon-separated": (_semicolons, ("fields are separated by commas", "semicolons")),
    "text-in-integer-column": (
        _set(10, "weathersit", "sunny"),
        ("row 10", "column weathersit", "value is an integer", "'sunny'"),
    ),
    "fraction-in-integer-column": (
        _set(12, "casual", "12.5"),
        ("row 12", "column casual", "value is an integer", "12.5"),
    ),
    "text-in-float-column": (
        _set(5, "temp", "warm"),
        ("row 5", "column temp", "value is a finite number", "'warm'"),
    ),
    "infinite-float": (
        _set(6, "windspeed", "inf"),
        ("row 6", "column windspeed", "value is a finite number", "inf"),
    ),
    "nan-float": (
        _set(8, "atemp", "NaN"),
        ("row 8", "column atemp", "value is a finite number", "'NaN'"),
    ),
    "empty-cell": (_set(9, "hum", ""), ("row 9", "column hum", "value is not empty", "''")),
    "nul-byte-in-cell": (
        _zip_of_csv_with_nul,
        ("row 7", "column temp", "value is a finite number", "0.2\\x003"),
    ),
    "date-in-wrong-format": (
        _set(3, "dteday", "01/03/2011"),
        ("row 3", "column dteday", "value is a date YYYY-MM-DD", "'01/03/2011'"),
    ),
    "impossible-date": (
        _set(40, "dteday", "2011-02-30"),
        ("row 40", "column dteday", "value is a date YYYY-MM-DD", "'2011-02-30'"),
    ),
    "undecodable-bytes": (lambda: _latin1(15), ("file is UTF-8 text", "0xe9", "row 15")),
    "ragged-row-extra-field": (
        lambda: _ragged(20, extra=True),
        ("row 20", "every row has as many fields as the header", "saw 17"),
    ),
    "ragged-row-missing-fields": (
        lambda: _ragged(21, extra=False),
        ("row 21", "column registered", "value is not empty", "''"),
    ),
    "unterminated-quote": (
        lambda: _unterminated_quote(30),
        ("every row has as many fields as the header", "EOF inside string"),
    ),
    "humidity-out-of-range": (
        _set(11, "hum", "1.7"),
        ("row 11", "column hum", "less_than_or_equal_to(1.0)", "1.7"),
    ),
    "negative-count": (
        _set(13, "casual", "-5"),
        ("row 13", "column casual", "greater_than_or_equal_to(0)", "-5"),
    ),
    "season-not-in-set": (
        _set(14, "season", "5"),
        ("row 14", "column season", "isin([1, 2, 3, 4])", "5"),
    ),
    "instant-zero": (_set(1, "instant", "0"), ("row 1", "column instant", "greater_than", "0")),
    "counts-do-not-add-up": (
        lambda: _counts_inconsistent(16),
        ("row 16", "column cnt", "cnt = casual + registered", "cnt="),
    ),
    "weekday-contradicts-date": (
        _set(17, "weekday", "6"),
        ("row 17", "column weekday", "weekday = day of week", "weekday=6"),
    ),
    "year-contradicts-date": (
        _set(18, "yr", "1"),
        ("row 18", "column yr", "yr = year of dteday - 2011", "yr=1"),
    ),
    "month-contradicts-date": (
        _set(19, "mnth", "7"),
        ("row 19", "column mnth", "mnth = month of dteday", "mnth=7"),
    ),
    "workingday-contradicts-holiday": (
        _set(3, "holiday", "1"),
        ("row 3", "column workingday", "workingday = 1 exactly on Monday-Friday", "holiday=1"),
    ),
    "duplicate-date": (
        lambda: _duplicate_row(25),
        ("row 26", "column dteday", "unique dates", "2011-01-25"),
    ),
    "unsorted-dates": (
        lambda: _swap_rows(33, 34),
        ("row 34", "column dteday", "(sorted)", "2011-02-02"),
    ),
    "missing-date": (
        lambda: _drop_row(50),
        ("row 50", "column dteday", "(no gaps)", "2011-02-20"),
    ),
}


def test_corpus_has_at_least_twenty_distinct_kinds():
    assert len(CASES) >= 20
    payloads = [build() for build, _ in CASES.values()]
    assert len({hashlib.sha256(p).hexdigest() for p in payloads}) == len(payloads)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_reported_with_file_row_column_rule_and_value(name: str):
    build, fragments = CASES[name]
    frame, report = validate_day_csv(build(), f"{name}.csv", minimum_rows(TEST_DAYS))
    assert frame is None and not report.ok
    described = "; ".join(failure.describe() for failure in report.failures)
    for fragment in fragments:
        assert fragment in described, f"{fragment!r} not in {described!r}"


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root`` (lock files aside)."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".locks" not in path.parts
    }


def _cache_records(root: Path) -> dict[str, str]:
    """The cache records in Prefect's result storage: files named by a 64-hex cache key.

    (Failed runs also store their exception under a random 32-hex name; those are run
    records, not cache entries.)
    """
    return {name: digest for name, digest in _tree(root).items() if len(Path(name).name) == 64}


@pytest.fixture(scope="module")
def previous_run(tmp_path_factory: pytest.TempPathFactory):
    """A good run whose outputs, store and cache records bad runs must leave as they were."""
    root = tmp_path_factory.mktemp("bad-data")
    good = root / "day.csv"
    good.write_bytes(to_csv_bytes(make_day_frame(ROWS, seed=3)))
    common = [
        "run",
        "--store-root",
        str(root / "store"),
        "--output-dir",
        str(root / "out"),
        "--test-days",
        str(TEST_DAYS),
        "--batch-size",
        "16",
        "--epochs",
        "1",
    ]
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: root / "records"}):
        assert main([*common, "--source", str(good)]) == 0
        yield root, common


def _latest_flow_run():
    with get_client(sync_client=True) as client:
        run = client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    return run, artifacts


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_fails_the_run_and_changes_nothing(
    name: str, previous_run, capsys: pytest.CaptureFixture[str]
):
    root, common = previous_run
    source = root / "inputs" / f"{name}.csv"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(CASES[name][0]())
    before = (_tree(root / "out"), _cache_records(root / "records"))
    store_before = _tree(root / "store" / "objects")
    capsys.readouterr()

    assert main([*common, "--source", str(source)]) == 1

    err = capsys.readouterr().err
    for fragment in (str(source), "retraining failed:", *CASES[name][1]):
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert "Traceback" not in err
    run, artifacts = _latest_flow_run()
    assert run.state is not None and run.state.is_failed()
    assert str(source) in (run.state.message or "")
    reports = [a for a in artifacts if a.key == "validation-report"]
    assert len(reports) == 1 and str(source) in str(reports[0].data)
    # The output folder and the cache records are as they were; stored artifacts unchanged,
    # and no typed arrays were derived from the bad bytes.
    assert (_tree(root / "out"), _cache_records(root / "records")) == before
    assert before[0] and before[1]  # there was something to lose
    store_after = _tree(root / "store" / "objects")
    assert {k: v for k, v in store_after.items() if k in store_before} == store_before
    assert not [k for k in store_after if k not in store_before and k.endswith(".npy")]
