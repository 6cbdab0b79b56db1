"""Operating the registry by hand: list, show, promote, roll back, pin and unpin.

The Python API behind ``bikeflow models``. Each operation that changes the champion (or its
pin) is a decision, written with the pointer as one atomic change under the registry lock
(``Registry.commit``), with the person's reason and name.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from schemas.errors import BikeflowError
from tasks.promotion.policy import PROMOTION_METRIC, recorded_scores
from tasks.promotion.records import Outcome
from tasks.promotion.registry import (
    MODEL_CARD_FILE,
    ChampionPointer,
    Decision,
    ModelVersion,
    Registry,
)


class RegistryError(BikeflowError):
    """A registry operation cannot be done: an unknown version, a pinned champion, no history."""


class VersionSummary(BaseModel):
    """One line of ``bikeflow models list``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    registered_at: str
    test_rmse: float | None
    decision: str | None
    champion: bool
    pinned: bool


class VersionDetails(BaseModel):
    """What ``bikeflow models show`` prints: the record, its decisions and its model card."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: ModelVersion
    champion: bool
    pinned: bool
    decisions: list[Decision]
    card: str | None


def _person() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def describe(decision: Decision) -> str:
    """A decision in a few words, e.g. ``kept: champion pinned``."""
    return f"{decision.outcome}: {decision.reason}"


def require_version(registry: Registry, version: str) -> ModelVersion:
    """The registered version, or a ``RegistryError`` naming it and listing those that exist."""
    names = registry.version_names()
    if version not in names:
        known = ", ".join(names) if names else "none: run a retraining first"
        raise RegistryError(
            f"model version {version!r} is not in the registry {registry.root}; "
            f"registered versions: {known}"
        )
    return registry.read_version(version)


def list_versions(registry: Registry) -> list[VersionSummary]:
    """Every version, oldest first, with its test RMSE, its latest decision and marks."""
    pointer = registry.champion_pointer()
    latest: dict[str, Decision] = {}
    for decision in registry.decision_history():
        latest[decision.challenger] = decision
    summaries = []
    for name in registry.version_names():
        version = registry.read_version(name)
        rmse = version.metrics.get("test_rmse")
        summaries.append(
            VersionSummary(
                version=name,
                registered_at=version.registered_at,
                test_rmse=float(rmse) if isinstance(rmse, int | float) else None,
                decision=describe(latest[name]) if name in latest else None,
                champion=pointer is not None and pointer.version == name,
                pinned=pointer is not None and pointer.version == name and pointer.pinned,
            )
        )
    return summaries


def show_version(registry: Registry, version: str) -> VersionDetails:
    """A version's record (lineage, metrics), the decisions about it and its model card."""
    found = require_version(registry, version)
    pointer = registry.champion_pointer()
    card = None
    if MODEL_CARD_FILE in found.files:
        card = Path(registry.file_ref(found, MODEL_CARD_FILE).path).read_text(encoding="utf-8")
    return VersionDetails(
        version=found,
        champion=pointer is not None and pointer.version == version,
        pinned=pointer is not None and pointer.version == version and pointer.pinned,
        decisions=[
            d
            for d in registry.decision_history()
            if version in (d.challenger, d.champion_before, d.champion_after)
        ],
        card=card,
    )


def _hand_decision(
    outcome: Outcome,
    reason: str,
    target: ModelVersion,
    before: ChampionPointer | None,
) -> Decision:
    """A decision a person made: the target's recorded scores, no re-scoring."""
    return Decision(
        outcome=outcome,
        reason=reason,
        metric=PROMOTION_METRIC,
        challenger=target.version,
        challenger_scores=recorded_scores(target),
        champion_before=None if before is None else before.version,
        champion_scores=None,
        champion_after=target.version,
        test_window=target.test_window,
        data_sha256=target.data_sha256,
        decided_at=datetime.now(UTC).isoformat(),
        by=_person(),
    )


def _pointer(target: ModelVersion, decision: Decision, pinned: bool) -> ChampionPointer:
    scores = decision.challenger_scores
    return ChampionPointer(
        version=target.version,
        promoted_at=decision.decided_at,
        score=None if scores is None else getattr(scores, PROMOTION_METRIC),
        metric=PROMOTION_METRIC,
        pinned=pinned,
    )


def _refuse_while_pinned(pointer: ChampionPointer | None, action: str) -> None:
    if pointer is not None and pointer.pinned:
        raise RegistryError(
            f"cannot {action}: the champion {pointer.version} is pinned; "
            "run `bikeflow models unpin` first"
        )


def promote_by_hand(registry: Registry, version: str, reason: str) -> Decision:
    """Make a version the champion, recorded as ``promoted-by-hand`` with the reason."""
    if not reason.strip():
        raise RegistryError("a promotion by hand needs a reason (--reason TEXT)")
    with registry.locked():
        target = require_version(registry, version)
        before = registry.champion_pointer()
        _refuse_while_pinned(before, f"promote {version}")
        decision = _hand_decision("promoted-by-hand", reason.strip(), target, before)
        return registry.commit(decision, _pointer(target, decision, pinned=False))


def champion_stack(history: list[Decision]) -> list[str]:
    """The champions in the order they took over, the ones rolled back removed."""
    stack: list[str] = []
    for decision in history:
        if decision.outcome == "rolled-back":
            while stack and stack[-1] != decision.champion_after:
                stack.pop()
            if not stack:
                stack.append(decision.champion_after)
        elif decision.champion_after != decision.champion_before:
            stack.append(decision.champion_after)
    return stack


def rollback(registry: Registry, to: str | None = None, reason: str = "") -> Decision:
    """Return to the previous champion (or to ``to``), recorded as ``rolled-back``."""
    with registry.locked():
        before = registry.champion_pointer()
        if before is None:
            raise RegistryError(f"the registry {registry.root} has no champion to roll back")
        _refuse_while_pinned(before, "roll back")
        if to is None:
            stack = champion_stack(registry.decision_history())
            if len(stack) < 2:
                raise RegistryError(
                    f"the champion {before.version} has no previous champion to return to; "
                    "name one with --to VERSION"
                )
            to = stack[-2]
        target = require_version(registry, to)
        if target.version == before.version:
            raise RegistryError(f"{to} is already the champion")
        why = f"rolled back from {before.version}" + (f": {reason.strip()}" if reason else "")
        decision = _hand_decision("rolled-back", why, target, before)
        return registry.commit(decision, _pointer(target, decision, pinned=False))


def pin(registry: Registry, version: str, reason: str = "") -> Decision:
    """Pin a version as champion: runs still register and decide, nothing replaces it."""
    with registry.locked():
        target = require_version(registry, version)
        before = registry.champion_pointer()
        why = "champion pinned" + (f": {reason.strip()}" if reason else "")
        decision = _hand_decision("pinned", why, target, before)
        return registry.commit(decision, _pointer(target, decision, pinned=True))


def unpin(registry: Registry, reason: str = "") -> Decision:
    """Lift the pin: the next run's decision may replace the champion again."""
    with registry.locked():
        before = registry.champion_pointer()
        if before is None or not before.pinned:
            raise RegistryError(f"the registry {registry.root} has no pinned champion")
        target = registry.read_version(before.version)
        why = "champion unpinned" + (f": {reason.strip()}" if reason else "")
        decision = _hand_decision("unpinned", why, target, before)
        return registry.commit(decision, _pointer(target, decision, pinned=False))


def as_json(value: BaseModel | list[Any]) -> Any:
    """A summary, details or list of them as plain JSON values (for ``--json``)."""
    if isinstance(value, list):
        return [item.model_dump(mode="json") for item in value]
    return value.model_dump(mode="json")
