"""The champion pointer and its decision are one atomic change: a crash at each step."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schemas.errors import ArtifactError
from tasks.promotion import operations
from tasks.promotion.policy import promote
from tasks.promotion.registry import Registry
from tests.tasks.promotion.test_registry import (  # noqa: F401 (fixtures)
    candidates,
    days,
    newest_window,
    register,
    store,
)


def assert_consistent(registry: Registry) -> None:
    """The pointer's version is whole, and the last decision left exactly that champion."""
    pointer = registry.champion_pointer()
    assert pointer is not None
    registry.read_version(pointer.version)  # every file present with its digest
    history = registry.decision_history()
    assert history[-1].champion_after == pointer.version
    assert pointer.decision is not None and pointer.decision in history


def setup(tmp_path: Path, store, days):  # noqa: F811
    registry = Registry(tmp_path / "models")
    good, bad, stats = candidates(store, days)
    champion = register(registry, bad, stats)
    promote(registry, champion, *newest_window(days))
    challenger = register(registry, good, stats)
    return registry, champion, challenger


def test_a_crash_after_the_pointer_and_before_the_decision_file_loses_no_decision(
    tmp_path: Path,
    store,  # noqa: F811
    days,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    registry, _, challenger = setup(tmp_path, store, days)

    def disk_fails(self, decision):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Registry, "write_decision", disk_fails)
    with pytest.raises(OSError):
        promote(registry, challenger, *newest_window(days))
    monkeypatch.undo()
    fresh = Registry(registry.root)
    pointer = fresh.champion_pointer()
    assert pointer.version == challenger.version
    # The decision has no file yet, but the pointer holds it: the history shows it.
    assert not fresh.decision_path(pointer.decision).is_file()
    assert fresh.decision_history()[-1].outcome == "promoted"
    assert_consistent(fresh)
    # The next operation under the lock writes the missing file.
    with fresh.locked():
        pass
    assert fresh.decision_path(pointer.decision).is_file()
    assert_consistent(fresh)


def test_a_crash_while_the_pointer_is_swapped_leaves_the_old_champion_and_decision(
    tmp_path: Path,
    store,  # noqa: F811
    days,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    registry, champion, challenger = setup(tmp_path, store, days)
    history_before = registry.decision_history()
    real_replace = os.replace

    def failing_replace(source, target):
        if Path(target).name == "champion.json":
            raise OSError(5, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(ArtifactError, match="Input/output error"):
        promote(registry, challenger, *newest_window(days))
    monkeypatch.undo()
    fresh = Registry(registry.root)
    assert fresh.require_champion().version == champion.version
    assert fresh.decision_history() == history_before  # no decision without its pointer
    assert_consistent(fresh)
    assert not list(fresh.root.glob(".champion.json.*.tmp"))


def test_hand_operations_crash_consistently_too(
    tmp_path: Path,
    store,  # noqa: F811
    days,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):
    registry, champion, challenger = setup(tmp_path, store, days)

    def killed(self, decision):
        raise SystemExit("worker killed")

    monkeypatch.setattr(Registry, "write_decision", killed)
    with pytest.raises(SystemExit):
        operations.promote_by_hand(registry, challenger.version, "hotfix")
    monkeypatch.undo()
    fresh = Registry(registry.root)
    assert fresh.require_champion().version == challenger.version
    assert fresh.decision_history()[-1].reason == "hotfix"
    assert_consistent(fresh)
    # And a rollback from there returns to the first champion.
    assert operations.rollback(fresh).champion_after == champion.version
    assert_consistent(fresh)
