"""The registry's operations by hand: list, show, promote, rollback, pin and unpin."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.evaluation.lineage import gather_lineage
from tasks.promotion import operations
from tasks.promotion.operations import RegistryError
from tasks.promotion.policy import promote
from tasks.promotion.registry import Registry
from tests.tasks.promotion.test_registry import (  # noqa: F401 (fixtures)
    TEST,
    candidates,
    days,
    newest_window,
    store,
)


def two_versions(tmp_path: Path, store, days):  # noqa: F811
    """A registry whose champion is the bad model, with the good one registered beside it."""
    registry = Registry(tmp_path / "models")
    good, bad, stats = candidates(store, days)
    lineage = gather_lineage("d" * 64, {"seed": 1})
    first = registry.register(bad, stats, {"test_rmse": 900.0}, "d" * 64, TEST, lineage, "# card")
    promote(registry, first, *newest_window(days))
    second = registry.register(good, stats, {"test_rmse": 300.0}, "d" * 64, TEST, lineage)
    return registry, first, second


def test_list_shows_each_version_with_its_decision_and_the_champion_mark(
    tmp_path: Path,
    store,  # noqa: F811
    days,  # noqa: F811
):
    registry, first, second = two_versions(tmp_path, store, days)
    promote(registry, second, *newest_window(days))
    listed = operations.list_versions(registry)
    assert [s.version for s in listed] == [first.version, second.version]
    assert [s.champion for s in listed] == [False, True]
    assert listed[0].decision.startswith("first-champion")
    assert listed[1].decision.startswith("promoted")
    assert listed[1].test_rmse == 300.0
    assert not any(s.pinned for s in listed)


def test_show_gives_lineage_decisions_and_card(tmp_path: Path, store, days):  # noqa: F811
    registry, first, _ = two_versions(tmp_path, store, days)
    details = operations.show_version(registry, first.version)
    lineage = details.version.lineage
    assert lineage is not None and lineage.source_sha256 == "d" * 64
    assert lineage.libraries["numpy"] and lineage.libraries["keras"]
    assert lineage.config == {"seed": 1}
    # The tests run from a git checkout: the commit is recorded.
    assert lineage.git is not None and len(lineage.git.commit) == 40
    assert details.champion and details.card == "# card"
    assert [d.outcome for d in details.decisions] == ["first-champion"]
    # Read back from version.json by a fresh registry object.
    assert Registry(registry.root).read_version(first.version).lineage == lineage


def test_promote_by_hand_records_the_reason_and_rollback_returns(
    tmp_path: Path,
    store,  # noqa: F811
    days,  # noqa: F811
):
    registry, first, second = two_versions(tmp_path, store, days)
    decision = operations.promote_by_hand(registry, second.version, "canary passed")
    assert decision.outcome == "promoted-by-hand" and decision.reason == "canary passed"
    assert decision.by and decision.champion_before == first.version
    assert registry.require_champion().version == second.version
    assert Path(decision.record).is_file()
    back = operations.rollback(registry, reason="bad night")
    assert back.outcome == "rolled-back" and "bad night" in back.reason
    assert registry.require_champion().version == first.version
    # Nothing before the first champion: a second rollback has nowhere to go.
    with pytest.raises(RegistryError, match="no previous champion"):
        operations.rollback(registry)
    assert operations.rollback(registry, to=second.version).champion_after == second.version


def test_while_pinned_a_better_run_is_kept_out(tmp_path: Path, store, days):  # noqa: F811
    registry, first, second = two_versions(tmp_path, store, days)
    operations.pin(registry, first.version, reason="incident 42")
    decision = promote(registry, second, *newest_window(days))
    assert decision.outcome == "kept"
    assert decision.reason.startswith("champion pinned; the rule alone: promoted")
    assert operations.describe(decision).startswith("kept: champion pinned")
    assert registry.require_champion().version == first.version
    assert registry.champion_pointer().pinned
    with pytest.raises(RegistryError, match="pinned"):
        operations.promote_by_hand(registry, second.version, "try")
    operations.unpin(registry)
    assert promote(registry, second, *newest_window(days)).outcome == "promoted"
    assert registry.require_champion().version == second.version


def test_an_unknown_version_names_it_and_lists_the_versions(
    tmp_path: Path,
    store,  # noqa: F811
    days,  # noqa: F811
):
    registry, first, second = two_versions(tmp_path, store, days)
    with pytest.raises(RegistryError) as raised:
        operations.show_version(registry, "no-such-version")
    message = str(raised.value)
    assert "'no-such-version'" in message
    assert first.version in message and second.version in message
