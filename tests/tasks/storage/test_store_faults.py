"""Storage faults: damaged cached artifacts are found by digest and rebuilt; a write that fails
part-way (disk full) leaves the previous state intact and says so."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

from flows.retrain import retrain
from schemas.config import RetrainConfig
from schemas.errors import ArtifactError
from tasks.storage.publish import publish_directory
from tasks.storage.store import ArtifactStore, is_intact, read_bytes, sha256_file
from tests.flows.test_retrain import with_subflows

# Runs tasks that talk to the Prefect API (artifacts, flow runs).
pytestmark = pytest.mark.usefixtures("prefect_server")


@contextlib.contextmanager
def small_disk(path: Path, size: str = "1m") -> Iterator[bool]:
    """Mount a tiny tmpfs at ``path`` if the test may (root); yield whether it did."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _folder(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def _assert_full_disk_keeps_previous_state(root: Path) -> None:
    store = ArtifactStore(root / "store")
    earlier = store.put_bytes(b"earlier artifact\n" * 100, ".txt")
    output = root / "out"
    publish_directory(output, {"model.keras": b"old model", "metrics.json": b"{}"})
    before = _folder(output)

    with pytest.raises(ArtifactError, match="No space left on device"):
        store.put_bytes(bytes(range(256)) * (8 << 10), ".bin")  # 2 MiB
    with pytest.raises(ArtifactError, match=r"No space left.*previous folder is unchanged"):
        publish_directory(output, {"model.keras": bytes(range(256)) * (8 << 10)})

    assert is_intact(earlier) and read_bytes(earlier) == b"earlier artifact\n" * 100
    assert _folder(output) == before
    assert not list(store.tmp.iterdir())  # no half-written temporary file is left
    assert sorted(p.name for p in root.iterdir()) == ["out", "store"]  # no staging folder


def test_disk_full_on_a_real_small_filesystem(tmp_path: Path):
    with small_disk(tmp_path / "disk") as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here; the injected-failure test covers this")
        _assert_full_disk_keeps_previous_state(tmp_path / "disk")


def test_disk_full_injected_at_the_storage_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The same fault where no tmpfs can be mounted: every write past 64 KiB fails."""
    import builtins

    real_open = builtins.open
    written: dict[int, int] = {}

    class FillingFile:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            size = len(memoryview(data).cast("B"))
            total = written.get(id(self), 0) + size
            if total > 64 << 10:
                raise OSError(errno.ENOSPC, "No space left on device")
            written[id(self)] = total
            return self._handle.write(data)

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._handle.__exit__(*exc)

    def filling_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        return FillingFile(handle) if "w" in mode and str(tmp_path) in str(file) else handle

    monkeypatch.setattr(builtins, "open", filling_open)
    monkeypatch.setattr(
        "pathlib.Path.write_bytes",
        lambda self, data: filling_open(self, "wb").write(data),
    )
    _assert_full_disk_keeps_previous_state(tmp_path)


def _task_states(state) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=with_subflows(state.state_details.flow_run_id))
            )
        )
    return {run.name.rsplit("-", 1)[0]: run.state.name for run in runs if run.state}


def _validated_artifacts(store_root: Path) -> dict[str, Path]:
    """The report, dates and features arrays that validate_records stored."""
    objects = store_root / "objects"
    reports = [p for p in objects.rglob("*.json") if '"failures"' in p.read_text()]
    arrays = {p: p.stat().st_size for p in objects.rglob("*.npy")}
    dates = [p for p in arrays if b"<M8[D]" in p.read_bytes()[:128]]
    return {"report": reports[0], "dates": dates[0]}


@pytest.mark.slow
def test_damaged_cached_artifact_is_detected_and_rebuilt(
    small_config: RetrainConfig, tmp_path: Path
):
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: tmp_path / "records"}):
        first = retrain(small_config, return_state=True)
        assert first.is_completed()
        for damage in ("deleted", "altered", "truncated"):
            for name, path in _validated_artifacts(Path(small_config.store_root)).items():
                digest = sha256_file(path)
                if damage == "deleted":
                    path.unlink()
                elif damage == "altered":  # same size, one byte flipped
                    data = bytearray(path.read_bytes())
                    data[-1] ^= 0x01
                    path.write_bytes(bytes(data))
                else:
                    path.write_bytes(path.read_bytes()[:-7])
                second = retrain(small_config, return_state=True)
                assert second.is_completed(), (damage, name)
                states = _task_states(second)
                # The damaged step is rebuilt; the steps after it see the same digests again.
                assert states["validate_records"] == "Completed", (damage, name, states)
                assert states["train_model"] == "Cached", (damage, name, states)
                assert sha256_file(path) == digest  # the very same bytes are back
                assert second.result().test_rmse == first.result().test_rmse
    assert json.loads((Path(small_config.output_dir) / "metrics.json").read_text())
