"""The problems and warnings met reading trip files, one paragraph each, a few per rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

SHOWN_PER_RULE = 5  # a file with a million bad rows names the first few of each kind


class Problems:
    """Failures (one paragraph each, the first few per rule) and plausibility warnings."""

    def __init__(self, shown: int = SHOWN_PER_RULE) -> None:
        self.shown = shown
        self._failures: list[str] = []
        self._per_rule: dict[str, int] = {}
        self._long: dict[str, tuple[int, int, str]] = {}  # where -> (count, line, example)

    @property
    def failed(self) -> bool:
        """True once any rule is broken."""
        return bool(self._failures)

    def fail(self, paragraph: str) -> None:
        """Add one failure."""
        self._failures.append(paragraph)

    def more(self, rule: str, count: int) -> None:
        """Say that ``count`` more rows broke ``rule`` than were named."""
        if count > 0:
            self._failures.append(f"... and {count} more row(s) breaking the {rule} rule")

    def add_rows(
        self,
        where: str,
        rule: str,
        column: str,
        lines: np.ndarray,
        values: pd.Series,
        broken: np.ndarray,
        says: str,
    ) -> None:
        """Name the first rows of a chunk that break ``rule`` (file, line, column, value)."""
        if not broken.any():
            return
        rows = np.flatnonzero(broken)
        seen = self._per_rule.get(rule, 0)
        room = max(0, self.shown - seen)
        for row in rows[:room].tolist():
            self._failures.append(
                f"{where}, line {int(lines[row])}: column {column}: the value "
                f"'{values.iloc[row]}' {says}"
            )
        self._per_rule[rule] = seen + len(rows)

    def paragraphs(self) -> list[str]:
        """Every failure, with a count of the unnamed rows of each rule at the end."""
        extra = [
            f"... and {count - self.shown} more row(s) breaking the {rule} rule"
            for rule, count in self._per_rule.items()
            if count > self.shown
        ]
        return self._failures + extra

    def warn_long(self, where: str, count: int, line: int, example: str) -> None:
        """Count trips lasting over a day (kept, but worth a look)."""
        before = self._long.get(where)
        if before is None:
            self._long[where] = (count, line, example)
        else:
            self._long[where] = (before[0] + count, before[1], before[2])

    def warnings(self) -> list[str]:
        """One warning per file member with trips longer than a day."""
        return [
            f"{where}: {count} trip(s) last over a day, e.g. line {line}: {example} "
            "(counted by their start; a bike not docked back?)"
            for where, (count, line, example) in self._long.items()
        ]
