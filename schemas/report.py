"""The validation report: every broken rule and warning of one file, and how values are shown."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from schemas.errors import Failure

# A broken file can break one rule on every one of millions of rows: list the first ones.
LISTED_PER_RULE = 50
# A value is shown up to this many characters: a field of megabytes must not become a
# message of megabytes.
SHOWN_VALUE_CHARS = 60


def format_value(value: Any) -> str:
    """Render a cell for a report: strings quoted, dates as YYYY-MM-DD, long ones cut short."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, str) and len(value) > SHOWN_VALUE_CHARS:
        return f"{value[:SHOWN_VALUE_CHARS]!r}... ({len(value):,} characters)"
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return repr(value) if isinstance(value, str) else str(value)


@dataclass
class ValidationReport:
    """All failures and warnings found in one file, JSON-able.

    Each rule lists its first ``LISTED_PER_RULE`` rows; ``failure_counts`` and
    ``warning_counts`` hold how many rows broke each rule in all.
    """

    file: str
    rows: int = 0
    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    failure_counts: Counter[str] = field(default_factory=Counter)
    warning_counts: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """True when no rule is broken (warnings are allowed)."""
        return not self.failures

    def fail(self, failure: Failure) -> None:
        """Record a broken rule (listed if its rule has not been listed too often yet)."""
        self.failure_counts[failure.rule] += 1
        if self.failure_counts[failure.rule] <= LISTED_PER_RULE:
            self.failures.append(failure)

    def warn(self, warning: Failure) -> None:
        """Record a legal but suspicious value."""
        self.warning_counts[warning.rule] += 1
        if self.warning_counts[warning.rule] <= LISTED_PER_RULE:
            self.warnings.append(warning)

    def close(self) -> None:
        """Sort by row and say how many rows of each rule went unlisted."""
        for items, counts in (
            (self.failures, self.failure_counts),
            (self.warnings, self.warning_counts),
        ):
            for rule, count in counts.items():
                if count > LISTED_PER_RULE:
                    items.append(
                        Failure(None, None, rule, f"... and {count - LISTED_PER_RULE} more rows")
                    )
            items.sort(key=lambda item: (item.row is not None, item.row or 0))

    def to_json(self) -> dict[str, Any]:
        """Return the report as plain JSON data."""
        return {
            "file": self.file,
            "rows": self.rows,
            "ok": self.ok,
            "failures": [asdict(item) for item in self.failures],
            "warnings": [asdict(item) for item in self.warnings],
            "failure_counts": dict(self.failure_counts),
            "warning_counts": dict(self.warning_counts),
        }
