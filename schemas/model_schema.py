"""A pandera model's schema, built without importing dask's DataFrame library.

pandera checks each ``Series[...]`` annotation of a ``DataFrameModel`` against the series
types of every dataframe library it can import (``pandera.typing.get_series_types``), so the
first schema a process builds imports ``dask.dataframe`` wherever dask is installed, as the
``dask`` extra installs it: 0.9 s of CPU in every run's validation step (a cold ``bikeflow run``
included), for frames this product never validates (it validates pandas chunks only). So the
schema is built while ``dask.dataframe`` is hidden, and afterwards everything pandera computed
without it is dropped again, so that other code in the same process (a notebook validating dask
frames) finds pandera as it would have been. Where dask's DataFrame is already imported nothing
is hidden: there is nothing left to save.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Iterator

import pandera.pandas as pa

HIDDEN = "dask.dataframe"
_LOCK = threading.Lock()  # sys.modules is process-wide: one build at a time hides it


@contextlib.contextmanager
def _dask_frames_hidden() -> Iterator[None]:
    if HIDDEN in sys.modules:
        yield
        return
    sys.modules[HIDDEN] = None  # type: ignore[assignment]  # makes "import dask.dataframe" fail
    try:
        yield
    finally:
        del sys.modules[HIDDEN]
        typing = importlib.import_module("pandera.typing")
        # pandera's answers computed without dask: its module saying "not installed", and the
        # cached type sets (Python's import finds a package attribute before sys.modules).
        sys.modules.pop("pandera.typing.dask", None)
        if "dask" in vars(typing):
            delattr(typing, "dask")
        for name in ("get_dataframe_types", "get_series_types", "get_index_types"):
            getattr(typing, name).cache_clear()


def model_schema(model: type[pa.DataFrameModel]) -> pa.DataFrameSchema:
    """The model's schema (pandera keeps one per model and thread), built without dask's frames."""
    with _LOCK, _dask_frames_hidden():
        return model.to_schema()
