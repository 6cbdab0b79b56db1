"""The rules between rows: unique, sorted and without gaps, per station when there are stations.

``RowOrder`` carries the last rows seen from one chunk to the next, so the rules hold across
chunk borders of a file read in bounded memory.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.errors import Failure
from schemas.records import DATE_COLUMN, HOUR_COLUMN, STATION_COLUMN, Granularity
from schemas.report import ValidationReport, format_value

_NO_TIME = np.iinfo(np.int64).min


class RowOrder:
    """Check chunk after chunk of typed rows against the rows before them."""

    def __init__(self, granularity: Granularity = "day", has_station: bool = False) -> None:
        self.granularity = granularity
        self.has_station = has_station
        self.days = 0
        self.missing_hours = 0
        self.hour_gaps = 0
        self._last: tuple[int, int, int, int] | None = None  # (time, station, row, day)
        self._station_last: dict[int, int] = {}

    # -- names of the rules, kept as they were for daily files without stations --
    def _key_name(self) -> str:
        parts = [DATE_COLUMN] + ([HOUR_COLUMN] if self.granularity == "hour" else [])
        return ", ".join(parts + ([STATION_COLUMN] if self.has_station else []))

    def rule_unique(self) -> str:
        """The name of the uniqueness rule for this kind of file."""
        if self.granularity == "day" and not self.has_station:
            return "dteday differs from the previous row (unique dates)"
        return f"({self._key_name()}) differs from the previous row (unique records)"

    def rule_sorted(self) -> str:
        """The name of the order rule for this kind of file."""
        if self.granularity == "day" and not self.has_station:
            return "dteday is not before the previous row (sorted)"
        return f"({self._key_name()}) is not before the previous row (sorted)"

    def rule_gap(self) -> str:
        """The name of the no-gaps rule (a warning for hours) for this kind of file."""
        previous = "the station's previous row" if self.has_station else "the previous row"
        if self.granularity == "hour":
            return f"the hour is one after {previous} (a missing hour is a warning)"
        return f"dteday is at most one day after {previous} (no gaps)"

    def check(self, frame: pd.DataFrame, report: ValidationReport) -> None:
        """Unique, sorted (by time, then station) and gap rules against the previous rows."""
        day = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]").astype(np.int64)
        time_ = day * 24 + frame[HOUR_COLUMN].to_numpy() if self.granularity == "hour" else day
        station = (
            frame[STATION_COLUMN].to_numpy(dtype=np.int64)
            if self.has_station
            else np.zeros(len(frame), dtype=np.int64)
        )
        rows = frame.index.to_numpy(dtype=np.int64)
        last = self._last if self._last is not None else (_NO_TIME, 0, -2, _NO_TIME)
        prev_time = np.concatenate([[last[0]], time_[:-1]])
        prev_station = np.concatenate([[last[1]], station[:-1]])
        prev_row = np.concatenate([[last[2]], rows[:-1]])
        prev_day = np.concatenate([[last[3]], day[:-1]])
        # A row right after one set aside as unparseable is not compared (already reported).
        comparable = prev_row == rows - 1
        same = (time_ == prev_time) & (station == prev_station) & comparable
        before = ((time_ < prev_time) | ((time_ == prev_time) & (station < prev_station))) & (
            comparable
        )
        self.days += int(np.count_nonzero(day != prev_day))
        self._last = (int(time_[-1]), int(station[-1]), int(rows[-1]), int(day[-1]))

        def describe(i: int) -> str:
            parts = [f"{DATE_COLUMN}={format_value(frame[DATE_COLUMN].iloc[i])}"]
            if self.granularity == "hour":
                parts.append(f"{HOUR_COLUMN}={int(frame[HOUR_COLUMN].iloc[i])}")
            if self.has_station:
                parts.append(f"{STATION_COLUMN}={int(station[i])}")
            return ", ".join(parts)

        for i in np.flatnonzero(same).tolist():
            report.fail(Failure(int(rows[i]) + 1, DATE_COLUMN, self.rule_unique(), describe(i)))
        for i in np.flatnonzero(before).tolist():
            report.fail(Failure(int(rows[i]) + 1, DATE_COLUMN, self.rule_sorted(), describe(i)))

        # Gaps, per station: group the chunk's rows by station (stable keeps time order).
        order = np.argsort(station, kind="stable")
        s_sorted, t_sorted = station[order], time_[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = s_sorted[1:] != s_sorted[:-1]
        previous = np.empty_like(t_sorted)
        previous[1:] = t_sorted[:-1]
        starts = np.flatnonzero(first)
        previous[starts] = [self._station_last.get(int(s), _NO_TIME) for s in s_sorted[starts]]
        ends = np.append(starts[1:] - 1, len(order) - 1)
        self._station_last.update(
            zip(s_sorted[ends].tolist(), t_sorted[ends].tolist(), strict=True)
        )
        step = t_sorted - previous
        gap_sorted = (previous != _NO_TIME) & (step > 1)
        gap_sorted &= comparable[order] & ~before[order]
        for position in np.flatnonzero(gap_sorted).tolist():
            i = int(order[position])
            missing = int(step[position]) - 1
            if self.granularity == "hour":
                self.missing_hours += missing
                self.hour_gaps += 1
                report.warn(
                    Failure(
                        int(rows[i]) + 1,
                        HOUR_COLUMN,
                        self.rule_gap(),
                        f"{missing} hour(s) missing before {describe(i)}",
                    )
                )
            else:
                report.fail(
                    Failure(
                        int(rows[i]) + 1,
                        DATE_COLUMN,
                        self.rule_gap(),
                        f"{describe(i)}, {missing} day(s) missing before it",
                    )
                )

    def finish(self, report: ValidationReport) -> None:
        """Add the whole-file summary of missing hours (a warning)."""
        if self.hour_gaps:
            report.warn(
                Failure(
                    None,
                    HOUR_COLUMN,
                    "missing hours in all",
                    f"{self.missing_hours} hour(s) missing in {self.hour_gaps} gap(s)",
                )
            )
