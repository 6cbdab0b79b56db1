from pathlib import Path

import numpy as np
import pytest

from tasks.errors import ArtifactError
from tasks.store import ArtifactStore, is_intact, load_array, load_json, publish_directory


def test_array_round_trips_through_its_digest(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    array = np.arange(12, dtype=np.float32).reshape(4, 3)
    ref = store.put_array(array)
    assert ref.shape == (4, 3) and ref.dtype == "float32"
    assert Path(ref.path).name == f"{ref.sha256}.npy"
    np.testing.assert_array_equal(load_array(ref), array)
    assert store.put_array(array) == ref  # same content, same object


def test_altered_artifact_is_refused(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    ref = store.put_array(np.ones((3, 2), dtype=np.float32))
    with open(ref.path, "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x00\x80\x7f")
    assert not is_intact(ref)
    with pytest.raises(ArtifactError, match="altered"):
        load_array(ref)
    Path(ref.path).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_array(ref)


def test_object_arrays_are_refused(tmp_path: Path):
    with pytest.raises(ArtifactError, match="pickle"):
        ArtifactStore(tmp_path).put_array(np.array([{"a": 1}], dtype=object))


def test_stream_over_cap_leaves_nothing(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(ArtifactError, match="size cap"):
        store.put_stream([b"x" * 10, b"y" * 10], ".bin", max_bytes=15)
    assert not any(store.tmp.iterdir())
    assert not store.objects.exists()


def test_json_round_trips(tmp_path: Path):
    ref = ArtifactStore(tmp_path).put_json({"b": [1, 2], "a": "x"})
    assert load_json(ref) == {"a": "x", "b": [1, 2]}


def test_publish_directory_replaces_whole_folder(tmp_path: Path):
    destination = tmp_path / "out"
    publish_directory(destination, {"a.txt": b"one", "b.txt": b"two"})
    publish_directory(destination, {"a.txt": b"three"})
    assert sorted(p.name for p in destination.iterdir()) == ["a.txt"]
    assert (destination / "a.txt").read_bytes() == b"three"


def test_failed_publish_keeps_previous_folder(tmp_path: Path):
    store = ArtifactStore(tmp_path / "store")
    missing = store.put_bytes(b"gone soon", ".txt")
    Path(missing.path).unlink()
    destination = tmp_path / "out"
    publish_directory(destination, {"a.txt": b"old"})
    with pytest.raises(ArtifactError):
        publish_directory(destination, {"a.txt": b"new", "b.txt": missing})
    assert (destination / "a.txt").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "store"]
