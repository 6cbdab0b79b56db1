"""The record files plan reads without Prefect: found where Prefect keeps them, or not at all,
and read back into the same objects Prefect's own result store gives."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem
from prefect.results import ResultStore
from prefect.serializers import CompressedJSONSerializer, JSONSerializer
from prefect.settings import Settings

from tasks.plan.result_files import ResultFiles, UnknownRecordFormatError, local_result_folder
from tasks.storage.descriptors import RawData, SplitPlan, Window
from tasks.storage.keys import resolve_key
from tasks.storage.store import ArtifactStore, FileRef


def prefect_storage(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> Path:
    """Where Prefect itself, given only this environment, keeps local results."""
    for name in [name for name in os.environ if name.startswith("PREFECT_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return Path(Settings().results.local_storage_path).expanduser().resolve()


@pytest.mark.parametrize(
    "variables",
    [
        {},
        {"PREFECT_RESULTS_LOCAL_STORAGE_PATH": "{tmp}/results"},
        {"PREFECT_LOCAL_STORAGE_PATH": "{tmp}/older-name"},
        {"PREFECT_RESULTS_LOCAL_STORAGE_PATH": "{tmp}/first", "PREFECT_LOCAL_STORAGE_PATH": "x"},
    ],
    ids=["home", "results-path", "older-name", "both-names"],
)
def test_the_folder_is_the_one_prefect_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
):
    monkeypatch.chdir(tmp_path)
    environ = {"PREFECT_HOME": str(tmp_path / "home")}
    environ |= {name: value.format(tmp=tmp_path) for name, value in variables.items()}
    (tmp_path / "home").mkdir()
    # A profile that sets something unrelated to results does not get in the way.
    (tmp_path / "home" / "profiles.toml").write_text(
        'active = "mine"\n[profiles.mine]\nPREFECT_LOGGING_LEVEL = "DEBUG"\n'
    )
    assert local_result_folder(environ, tmp_path) == prefect_storage(monkeypatch, environ)


def test_any_other_source_of_settings_sends_plan_to_prefect(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    environ = {"PREFECT_HOME": str(home)}
    assert local_result_folder(environ, tmp_path) == (home / "storage").resolve()
    assert local_result_folder(environ | {"PREFECT_API_URL": "http://127.0.0.1:1/api"}) is None
    block = {"PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": "s3-bucket/results"}
    assert local_result_folder(environ | block, tmp_path) is None
    (home / "profiles.toml").write_text(
        '[profiles.ephemeral]\nPREFECT_RESULTS_LOCAL_STORAGE_PATH = "/elsewhere"\n'
    )
    assert local_result_folder(environ, tmp_path) is None
    (home / "profiles.toml").rename(home / "other.toml")
    templated = environ | {"PREFECT_PROFILES_PATH": "$PREFECT_HOME/other.toml"}
    assert local_result_folder(templated, tmp_path) is None
    (home / "other.toml").unlink()
    for name, text in [
        (".env", "PREFECT_API_URL=http://127.0.0.1:1/api\n"),
        ("prefect.toml", '[results]\nlocal_storage_path = "/elsewhere"\n'),
        ("pyproject.toml", '[tool.prefect.results]\nlocal_storage_path = "/elsewhere"\n'),
    ]:
        (tmp_path / name).write_text(text)
        assert local_result_folder(environ, tmp_path) is None, name
        (tmp_path / name).unlink()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert local_result_folder(environ, tmp_path) == (home / "storage").resolve()


def prefect_store(folder: Path, serializer: object) -> ResultStore:
    """Prefect's result store on a local folder, as a cached task's run writes records."""
    return ResultStore(result_storage=LocalFileSystem(basepath=str(folder)), serializer=serializer)


def a_result(tmp_path: Path) -> dict[str, object]:
    """Nested descriptors, as a step's result holds them."""
    ref = ArtifactStore(str(tmp_path / "store")).put_bytes(b"day,cnt\n", ".csv")
    window = Window(start=0, stop=5, days=5, first_date="2011-01-01", last_date="2011-01-05")
    return {
        "raw": RawData(source="day.csv", fetched=ref, table=ref),
        "plan": SplitPlan(train=window, validation=window, test=window),
        "counts": [1, 2.5, None, "text"],
    }


def test_a_record_reads_back_as_prefect_reads_it(tmp_path: Path):
    store = prefect_store(tmp_path / "records", JSONSerializer())
    result = a_result(tmp_path)
    store.write(result, key="k1")
    files = ResultFiles((tmp_path / "records").resolve())
    assert files.exists("k1") and not files.exists("missing")
    read = files.read_result("k1")
    assert read == store.read("k1").result == result
    assert isinstance(read["raw"], RawData) and isinstance(read["raw"].fetched, FileRef)


def test_an_expired_record_does_not_exist_for_either(tmp_path: Path):
    store = prefect_store(tmp_path / "records", JSONSerializer())
    store.write({"n": 1}, key="old", expiration=datetime.now(UTC) - timedelta(minutes=1))
    store.write({"n": 2}, key="new", expiration=datetime.now(UTC) + timedelta(days=1))
    files = ResultFiles((tmp_path / "records").resolve())
    assert [files.exists(key) for key in ("old", "new")] == [
        store.exists(k) for k in ("old", "new")
    ]
    assert [files.exists(key) for key in ("old", "new")] == [False, True]


def test_a_record_written_another_way_is_left_to_prefect(tmp_path: Path):
    store = prefect_store(tmp_path / "records", CompressedJSONSerializer())
    store.write({"n": 1}, key="compressed")
    files = ResultFiles((tmp_path / "records").resolve())
    assert store.exists("compressed") and store.read("compressed").result == {"n": 1}
    with pytest.raises(UnknownRecordFormatError, match="serializer"):
        files.read_result("compressed")
    # It reaches plan (which then asks Prefect) instead of reading as an unreadable record.
    with pytest.raises(UnknownRecordFormatError):
        resolve_key(files, "compressed")
    (tmp_path / "records" / "garbage").write_bytes(b"\x00not json")
    assert not files.exists("garbage") and not store.exists("garbage")
