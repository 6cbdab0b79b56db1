from pathlib import Path

import numpy as np
import pytest

from schemas.errors import ArtifactError
from schemas.ownership import MARKER
from tasks.storage.publish import publish_directory
from tasks.storage.store import ArtifactStore, is_intact, load_array, load_json


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
    assert sorted(p.name for p in destination.iterdir()) == [MARKER, "a.txt"]
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


def test_array_appender_writes_what_np_save_would(tmp_path):
    from tasks.storage.appender import ArrayAppender
    from tasks.storage.store import ArtifactStore, load_array

    store = ArtifactStore(tmp_path)
    blocks = [np.arange(i * 6, i * 6 + 6, dtype=np.float32).reshape(3, 2) for i in range(4)]
    with ArrayAppender(store, "float32", (2,)) as appender:
        for block in blocks:
            appender.append(block)
        ref = appender.finish()
    expected = np.concatenate(blocks)
    np.testing.assert_array_equal(load_array(ref), expected)
    assert ref.shape == (12, 2) and ref.sha256 == store.put_array(expected).sha256
    dates = ArrayAppender(store, "datetime64[D]", ())
    dates.append(np.array(["2011-01-01", "2011-01-02"], dtype="datetime64[D]"))
    assert str(load_array(dates.finish())[1]) == "2011-01-02"


def test_array_appender_leaves_nothing_when_aborted(tmp_path):
    from tasks.storage.appender import ArrayAppender
    from tasks.storage.store import ArtifactStore

    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError), ArrayAppender(store, "int64", ()) as appender:
        appender.append(np.arange(5))
        raise RuntimeError("stop")
    assert not appender.temp.exists() and not list(store.objects.rglob("*.npy"))
