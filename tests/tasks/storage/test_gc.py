"""``tasks.storage.gc`` and ``tasks.promotion.registry_gc`` on a store, records and registry
built by hand: what a dry run lists, what --apply deletes, and what is always kept."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from tasks.gc_pass import GcConfig, gc_pass
from tasks.promotion.registry import Registry
from tasks.promotion.registry_gc import plan_registry_gc
from tasks.storage.gc import plan_gc
from tasks.storage.keys import KEY_INDEX
from tasks.storage.store import ArtifactStore, FileRef

DAY = 86_400.0


def _age(path: Path, seconds: float) -> None:
    moment = time.time() - seconds
    os.utime(path, (moment, moment))


def _record(records: Path, key: str, task: str, result: object, age: float) -> Path:
    """A Prefect-style JSON record under ``key`` and its key-index entry, both ``age`` old."""
    path = records / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"metadata": {}, "result": json.dumps(result)}))
    index = records / KEY_INDEX / task / f"{key}.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text("{}")
    _age(path, age)
    _age(index, age)
    return path


def _stored(store: ArtifactStore, content: bytes, suffix: str, age: float) -> FileRef:
    ref = store.put_bytes(content, suffix)
    _age(Path(ref.path), age)
    return ref


def _tree(*roots: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for root in roots for p in root.rglob("*") if p.is_file()}


def _old_and_new_run(tmp_path: Path) -> tuple[ArtifactStore, Path, dict[str, FileRef]]:
    """Two runs' records: one 10 days old, one 5 days old; an orphan; a young orphan."""
    store = ArtifactStore(tmp_path / "store")
    records = tmp_path / "records"
    refs = {
        "old_table": _stored(store, b"old table", ".csv", 10 * DAY),
        "old_model": _stored(store, b"old model", ".keras", 10 * DAY),
        "new_table": _stored(store, b"new table", ".csv", 5 * DAY),
        "new_model": _stored(store, b"new model", ".keras", 5 * DAY),
        "orphan": _stored(store, b"orphan", ".npy", 8 * DAY),
        "young": _stored(store, b"young orphan", ".npy", 60),
    }
    _record(records, "a" * 64, "ingest_source", {"table": refs["old_table"].model_dump()}, 10 * DAY)
    _record(records, "b" * 64, "train_model", {"c": [refs["old_model"].model_dump()]}, 10 * DAY)
    _record(records, "c" * 64, "ingest_source", {"table": refs["new_table"].model_dump()}, 5 * DAY)
    _record(records, "d" * 64, "train_model", {"c": [refs["new_model"].model_dump()]}, 5 * DAY)
    return store, records, refs


def test_a_dry_run_lists_by_kind_and_deletes_nothing(tmp_path: Path):
    store, records, refs = _old_and_new_run(tmp_path)
    before = _tree(tmp_path)
    config = GcConfig(
        store_root=str(store.root), registry_root=str(tmp_path / "models"), keep_runs=1
    )
    report = gc_pass(config, records, apply=False)
    assert _tree(tmp_path) == before
    kinds = report.plan.by_kind()
    # The old run's two records (with their key files), its table and checkpoint, the orphan.
    assert kinds["cache records"][0] == 2
    assert kinds["checkpoints"] == (1, refs["old_model"].size)
    assert kinds["tables"] == (1, refs["old_table"].size)
    assert kinds["arrays"] == (1, refs["orphan"].size)
    assert "would free" in report.lines()[-2] and "--apply" in report.lines()[-1]


def test_apply_deletes_the_old_run_and_keeps_the_last_runs_and_young_files(tmp_path: Path):
    store, records, refs = _old_and_new_run(tmp_path)
    config = GcConfig(
        store_root=str(store.root), registry_root=str(tmp_path / "models"), keep_runs=1
    )
    report = gc_pass(config, records, apply=True)
    assert report.freed == report.plan.total_bytes() > 0
    gone = {name for name, ref in refs.items() if not Path(ref.path).exists()}
    assert gone == {"old_table", "old_model", "orphan"}
    assert sorted(p.name for p in records.iterdir() if p.is_file()) == ["c" * 64, "d" * 64]
    assert not (records / KEY_INDEX / "ingest_source" / f"{'a' * 64}.json").exists()
    # keep_runs=2 would have kept both runs.
    store2, records2, refs2 = _old_and_new_run(tmp_path / "again")
    plan = plan_gc(store2.root, records2, keep_runs=2, grace_seconds=DAY)
    assert [item.path for item in plan.garbage] == [Path(refs2["orphan"].path)]


def test_a_held_cache_lock_keeps_its_record_and_every_unreferenced_object(tmp_path: Path):
    store, records, refs = _old_and_new_run(tmp_path)
    lock = records / ".locks" / f"{'b' * 64}.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # as a running step's FlockLockManager
        report = gc_pass(
            GcConfig(
                store_root=str(store.root), registry_root="models", keep_runs=1, grace_hours=0
            ),
            records,
            apply=True,
        )
    assert report.plan.held_locks == 1 and "running flow" in report.lines()[0]
    # The unlocked old record went; the locked one, and every object, stayed.
    assert not (records / ("a" * 64)).exists() and (records / ("b" * 64)).exists()
    assert all(Path(ref.path).exists() for ref in refs.values())


def test_journals_keep_their_checkpoints_until_they_are_old(tmp_path: Path):
    store = ArtifactStore(tmp_path / "store")
    checkpoint = _stored(store, b"epoch 1", ".keras", 3 * DAY)
    journal = store.root / "journals" / "abc.json"
    journal.parent.mkdir(parents=True)
    journal.write_text(
        json.dumps({"epochs": [{"record": {}, "checkpoint": checkpoint.model_dump()}]})
    )
    assert plan_gc(store.root, None, grace_seconds=DAY).garbage == []
    _age(journal, 2 * DAY)
    kinds = plan_gc(store.root, None, grace_seconds=DAY).by_kind()
    assert kinds == {"checkpoints": (1, checkpoint.size), "journals": (1, journal.stat().st_size)}


def _version(registry: Registry, name: str, days_old: float, extra: dict | None = None) -> None:
    folder = registry.versions / name
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(name.encode())
    when = time.time() - days_old * DAY
    from datetime import UTC, datetime

    record = {
        "version": name,
        "registered_at": datetime.fromtimestamp(when, UTC).isoformat(),
        "files": {"model.keras": {"sha256": "0" * 64, "size": len(name)}},
        **(extra or {}),
    }
    (folder / "version.json").write_text(json.dumps(record))


def test_registry_keeps_champion_previous_pinned_newest_and_foreign(tmp_path: Path):
    registry = Registry(tmp_path / "models")
    for index in range(8):
        _version(
            registry,
            f"v{index}",
            days_old=10 - index,
            extra={"pinned": True} if index == 1 else None,
        )
    (registry.versions / "v2" / "notes.txt").write_text("mine")  # a user's file: not ours
    registry.decisions.mkdir(parents=True)
    for index, (before, after) in enumerate(
        [(None, "v0"), ("v0", "v3"), ("v3", "v4"), ("v4", "v4")]
    ):
        decision = {"champion_before": before, "champion_after": after}
        (registry.decisions / f"2026010{index}T000000Z-x.json").write_text(json.dumps(decision))
    (registry.root / "champion.json").write_text(json.dumps({"version": "v4"}))
    (registry.root / "pins.json").write_text(json.dumps(["v5"]))
    garbage = plan_registry_gc(registry, keep_versions=2, grace_seconds=DAY)
    # Kept: v4 (champion), v3 (previous), v1 (pinned in its record), v5 (pins file), v2
    # (a foreign file), v6 and v7 (the newest two). Deleted: v0.
    assert [item.path.name for item in garbage] == ["v0"]
    assert plan_registry_gc(registry, keep_versions=2, grace_seconds=11 * DAY) == []
    # An unreadable pointer keeps everything.
    (registry.root / "champion.json").write_text("{")
    assert plan_registry_gc(registry, keep_versions=0, grace_seconds=0) == []
