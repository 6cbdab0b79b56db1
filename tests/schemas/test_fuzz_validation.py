"""Property-based: whatever bytes arrive, ingest + validate raise only bikeflow's own errors."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import BikeflowError, DataValidationError
from schemas.records import DAY_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from schemas.validation import validate_day_csv
from tasks.prepare.ingest import fetch_source
from tasks.storage.store import ArtifactStore, read_bytes

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples every CI run; a failure is reproducible
)
_VALID = to_csv_bytes(make_day_frame(45, seed=5))
_LINES = _VALID.decode().splitlines()

cells = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-0", "1e309", "0x10", "2011-02-30", '"']),
    st.dates().map(lambda d: d.isoformat()),
    st.text(max_size=12),
)
headers = st.lists(
    st.one_of(st.sampled_from(DAY_COLUMNS), st.text(max_size=8)), min_size=0, max_size=20
)


@st.composite
def structured_csv(draw: st.DrawFn) -> bytes:
    """A header of (mostly) real column names and rows of arbitrary cells."""
    header = draw(st.one_of(st.just(list(DAY_COLUMNS)), headers))
    width = st.integers(max(0, len(header) - 2), len(header) + 2)
    rows = draw(
        st.lists(width.flatmap(lambda n: st.lists(cells, min_size=n, max_size=n)), max_size=60)
    )
    separator = draw(st.sampled_from([",", ";", "\t"]))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = ending.join(separator.join(row) for row in [header, *rows])
    return text.encode("utf-8", errors="surrogatepass")


@st.composite
def mutated_csv(draw: st.DrawFn) -> bytes:
    """A valid file with a few random edits: a cell replaced, bytes cut, lines swapped or lost."""
    lines = [line.split(",") for line in _LINES]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cell", "drop", "swap", "duplicate", "truncate-line"]))
        row = draw(st.integers(0, len(lines) - 1))
        if kind == "cell":
            column = draw(st.integers(0, len(lines[row]) - 1)) if lines[row] else 0
            if lines[row]:
                lines[row][column] = draw(cells)
        elif kind == "drop" and len(lines) > 1:
            del lines[row]
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[row], lines[other] = lines[other], lines[row]
        elif kind == "duplicate":
            lines.insert(row, list(lines[row]))
        else:
            lines[row] = lines[row][: draw(st.integers(0, len(lines[row])))]
    data = "\n".join(",".join(line) for line in lines).encode("utf-8", errors="surrogatepass")
    cut = draw(st.integers(0, len(data)))
    return data[:cut] if draw(st.booleans()) else data


def ingest_and_validate(data: bytes, folder: Path) -> None:
    """What the flow does with a source file, up to and including the error the user sees."""
    source = folder / "fuzz.csv"
    source.write_bytes(data)
    raw = fetch_source(str(source), ArtifactStore(folder / "store"))
    frame, report = validate_day_csv(read_bytes(raw.table), str(source), min_rows=41)
    if frame is None:
        raise DataValidationError.from_failures(str(source), report.failures)
    assert report.ok and len(frame) >= 41


def _only_our_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        try:
            ingest_and_validate(data, Path(folder))
        except BikeflowError as error:
            assert str(error)  # every error says something
            if isinstance(error, DataValidationError):
                assert error.failures and error.file.endswith("fuzz.csv")
        # Anything else (a pandas, NumPy or Python error) propagates and fails the test.


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_raise_only_bikeflow_errors(data: bytes):
    _only_our_errors(data)


@FUZZ
@given(structured_csv())
def test_arbitrary_tables_raise_only_bikeflow_errors(data: bytes):
    _only_our_errors(data)


@FUZZ
@given(mutated_csv())
def test_edited_valid_files_raise_only_bikeflow_errors(data: bytes):
    _only_our_errors(data)


def test_the_unedited_file_passes():
    with tempfile.TemporaryDirectory() as folder:
        ingest_and_validate(_VALID, Path(folder))
