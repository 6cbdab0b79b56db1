"""The trip files a source names: found, hashed, allow-listed one by one; counts kept as arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schemas.errors import SourceError, SourceRefusedError
from schemas.sources import SOURCE_ROOTS_ENV
from tasks.prepare.trip_descriptors import (
    check_unchanged,
    find_source_files,
    load_frame,
    store_frame,
)
from tasks.storage.store import ArtifactStore, sha256_file


def test_the_files_are_found_sorted_with_their_digests(tmp_path: Path):
    folder = tmp_path / "trips"
    folder.mkdir()
    for name in ("202402-tripdata.csv", "202401-tripdata.zip", "notes.txt", ".hidden.csv"):
        (folder / name).write_bytes(name.encode())
    found = find_source_files(str(folder))
    assert [Path(file.path).name for file in found.files] == [
        "202401-tripdata.zip",
        "202402-tripdata.csv",
    ]
    assert all(file.sha256 == sha256_file(Path(file.path)) for file in found.files)
    only = find_source_files(f"{folder}/*.csv")
    assert [Path(file.path).name for file in only.files] == ["202402-tripdata.csv"]
    with pytest.raises(SourceError, match=r"2023\*\.zip: no trip files found"):
        find_source_files(f"{folder}/2023*.zip")


def test_a_file_that_leads_out_of_the_allowed_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder, outside = tmp_path / "trips", tmp_path / "secret.csv"
    folder.mkdir()
    outside.write_text("ride_id\n")
    (folder / "202401-tripdata.csv").symlink_to(outside)
    monkeypatch.setenv(SOURCE_ROOTS_ENV, str(folder))
    with pytest.raises(SourceRefusedError, match=f"source {outside} is not under"):
        find_source_files(str(folder))


def test_a_file_changed_after_it_was_listed_is_refused(tmp_path: Path):
    folder = tmp_path / "trips"
    folder.mkdir()
    path = folder / "202401-tripdata.csv"
    path.write_text("ride_id\nA\n")
    (listed,) = find_source_files(str(folder)).files
    check_unchanged(listed)
    path.write_text("ride_id\nA\nB\n")
    with pytest.raises(SourceError, match="changed while it was read"):
        check_unchanged(listed)


def test_counts_are_kept_column_by_column_without_pickle(tmp_path: Path):
    frame = pd.DataFrame(
        {
            "dteday": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "station": np.array([31000, 31001], dtype=np.int64),
            "name": ["a", "bb"],
            "cnt": np.array([3, 0], dtype=np.int64),
        }
    )
    columns = store_frame(ArtifactStore(tmp_path / "store"), frame)
    assert list(columns) == list(frame.columns)
    back = load_frame(columns)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back["dteday"].dtype.kind == "M" and back["cnt"].dtype == np.int64
