"""The registry's records: a version's files, a decision, the champion pointer (plain data)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from schemas.config import PromotionConfig
from tasks.evaluation.lineage import Lineage
from tasks.promotion.evidence import Evidence
from tasks.storage.descriptors import Scores, Window

DEFAULT_PROMOTION = PromotionConfig()


class StoredFile(BaseModel):
    """A file inside a version folder and the digest it was written with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str
    size: int


class ModelVersion(BaseModel):
    """One registered model: its files, the data it was trained on, and its metrics."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    registered_at: str
    data_sha256: str
    files: dict[str, StoredFile]
    test_window: Window
    metrics: dict[str, Any]
    # Code, flow run, libraries, data and config that made it (None: registered before lineage).
    lineage: Lineage | None = None


# What a decision did: the rule's verdicts (kept: the rule ran while the champion was pinned),
# and the operations a person runs (bikeflow models promote, rollback, pin, unpin).
Outcome = Literal[
    "first-champion",
    "promoted",
    "rejected",
    "kept",
    "promoted-by-hand",
    "rolled-back",
    "pinned",
    "unpinned",
]


class Decision(BaseModel):
    """The outcome of one champion/challenger comparison, with both scores and the evidence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: Outcome
    reason: str
    metric: str
    challenger: str
    # None for a version promoted by hand whose run recorded no test scores.
    challenger_scores: Scores | None
    champion_before: str | None
    champion_scores: Scores | None
    champion_after: str
    test_window: Window
    data_sha256: str
    decided_at: str
    # The rule in force, and what the paired bootstrap found when both models were scored.
    promotion: PromotionConfig = DEFAULT_PROMOTION
    evidence: Evidence | None = None
    record: str = ""
    # Who ran a hand operation (promote, rollback, pin, unpin); None for the rule's decisions.
    by: str | None = None


class ChampionPointer(BaseModel):
    """The content of ``champion.json``: the champion and the decision that made it so."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    promoted_at: str
    # None when a version promoted by hand recorded no score.
    score: float | None
    metric: str
    # While pinned, the rule still decides and records, but nothing replaces the champion.
    pinned: bool = False
    # The decision that wrote this pointer (absent in pointers written before it was kept).
    decision: Decision | None = None
