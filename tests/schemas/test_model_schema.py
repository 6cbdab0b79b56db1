"""Validating records does not import dask's DataFrame, and leaves pandera's dask support whole.

Each case runs in a fresh interpreter: what a process has imported is the thing checked.
"""

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("dask") is None, reason="dask is not installed (the dask extra)"
)

VALIDATE = """
import io, sys
import pandas as pd
from schemas.validation import RecordValidator

rows = [
    "instant,dteday,season,yr,mnth,holiday,weekday,workingday,weathersit,temp,atemp,hum,"
    "windspeed,casual,registered,cnt",
    "1,2011-01-01,1,0,1,0,6,0,2,0.34,0.36,0.81,0.16,331,654,985",
    "2,2011-01-02,1,0,1,0,0,0,2,0.36,0.35,0.70,0.25,131,670,801",
    "3,2011-01-03,1,0,1,0,1,1,1,0.20,0.19,1.70,0.25,120,1229,1349",
]
validator = RecordValidator("day.csv")
list(validator.chunks(io.BytesIO("\\n".join(rows).encode())))
print([(f.row, f.column) for f in validator.report.failures])
print("dask.dataframe" in sys.modules)
"""


def _run(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_validation_finds_the_bad_cell_without_importing_dask_frames():
    failures, imported = _run(VALIDATE)
    assert failures == "[(3, 'hum')]"  # humidity 1.70 on the third data row
    assert imported == "False"


DASK_MODEL = """
import dask.dataframe as dd
import pandera.pandas as pa
from pandera.typing.dask import Series

class Counts(pa.DataFrameModel):
    cnt: Series[int] = pa.Field(ge=0)

frame = dd.from_pandas(pd.DataFrame({"cnt": [1, -2]}), npartitions=1)
try:
    Counts.validate(frame).compute()
except pa.errors.SchemaError as error:
    print("refused", error.failure_cases["failure_case"].tolist())
"""


def test_pandera_still_validates_dask_frames_in_the_same_process_afterwards():
    lines = _run(VALIDATE + DASK_MODEL)
    assert lines[:2] == ["[(3, 'hum')]", "False"]
    assert lines[2] == "refused [-2]"
