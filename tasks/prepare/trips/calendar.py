"""The calendar columns of day.csv and hour.csv: season, yr, mnth, hr, weekday, holiday, workingday.

Derived from the real files: the seasons change on fixed dates (winter from 21 December,
spring 21 March, summer 21 June, fall 23 September), and ``holiday`` marks the US federal
holidays plus DC Emancipation Day (16 April), each on its observed day (a Saturday holiday on
the Friday before, a Sunday one on the Monday after), which is how the UCI file has
2011-04-15 and 2012-04-16.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from schemas.records import FIRST_YEAR

HolidayCalendar = Literal["us-dc", "us-federal", "none"]
HOLIDAY_CALENDARS: tuple[str, ...] = ("us-dc", "us-federal", "none")

# (month, day) each season starts on; season 1 (winter) runs from 21 December to 20 March.
SEASON_STARTS: tuple[tuple[int, int, int], ...] = ((3, 21, 2), (6, 21, 3), (9, 23, 4), (12, 21, 1))
JUNETEENTH_FROM = 2021  # a federal holiday since 2021


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> dt.date:
    """The nth given weekday (Monday = 0) of a month; nth = -1 is the last one."""
    if nth > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    last = following - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    """A Saturday holiday is observed on the Friday before, a Sunday one on the Monday after."""
    if day.weekday() == 5:
        return day - dt.timedelta(days=1)
    if day.weekday() == 6:
        return day + dt.timedelta(days=1)
    return day


def _year_holidays(year: int, calendar: HolidayCalendar) -> list[dt.date]:
    """The observed holidays of one year's holidays (one may fall on 31 December before)."""
    if calendar == "none":
        return []
    fixed = [dt.date(year, 1, 1), dt.date(year, 7, 4), dt.date(year, 11, 11), dt.date(year, 12, 25)]
    if year >= JUNETEENTH_FROM:
        fixed.append(dt.date(year, 6, 19))
    if calendar == "us-dc":
        fixed.append(dt.date(year, 4, 16))  # DC Emancipation Day
    floating = [
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
    ]
    return [_observed(day) for day in fixed] + floating


def holiday_dates(years: Iterable[int], calendar: HolidayCalendar = "us-dc") -> set[dt.date]:
    """The observed holidays that fall in ``years`` under ``calendar`` (us-dc, us-federal, none)."""
    if calendar not in HOLIDAY_CALENDARS:
        raise ValueError(f"holiday calendar must be one of {', '.join(HOLIDAY_CALENDARS)}")
    wanted = set(years)
    # New Year's Day on a Saturday is observed on 31 December of the year before.
    candidates = {year + offset for year in wanted for offset in (0, 1)}
    return {
        day for year in candidates for day in _year_holidays(year, calendar) if day.year in wanted
    }


def season_of(dates: pd.DatetimeIndex) -> np.ndarray:
    """UCI's season (1 winter, 2 spring, 3 summer, 4 fall) of each date."""
    month_day = np.asarray(dates.month) * 100 + np.asarray(dates.day)
    season = np.ones(len(dates), dtype=np.int64)
    for month, day, number in SEASON_STARTS:
        season[month_day >= month * 100 + day] = number
    return season


def calendar_columns(
    dates: Iterable[object] | pd.DatetimeIndex,
    hours: Iterable[int] | None = None,
    holiday_calendar: HolidayCalendar = "us-dc",
    first_year: int = FIRST_YEAR,
) -> pd.DataFrame:
    """season, yr, mnth, (hr,) holiday, weekday, workingday of each date, as the UCI files.

    ``yr`` counts years from ``first_year``: 2011 by default, the year the UCI files start
    and the one record validation checks ``yr`` against (``schemas.records.FIRST_YEAR``).
    """
    index = pd.DatetimeIndex(
        pd.to_datetime(list(dates) if not isinstance(dates, pd.Index) else dates)
    )
    index = index.normalize()
    holidays = holiday_dates(set(index.year.tolist()), holiday_calendar)
    holiday_days = np.array(sorted(holidays), dtype="datetime64[D]")
    days = index.to_numpy().astype("datetime64[D]")
    holiday = np.isin(days, holiday_days).astype(np.int64)
    weekday = (np.asarray(index.dayofweek) + 1) % 7  # pandas: Monday 0; UCI: Sunday 0
    columns: dict[str, np.ndarray] = {
        "season": season_of(index),
        "yr": np.asarray(index.year, dtype=np.int64) - first_year,
        "mnth": np.asarray(index.month, dtype=np.int64),
    }
    if hours is not None:
        columns["hr"] = np.asarray(list(hours), dtype=np.int64)
    columns.update(
        holiday=holiday,
        weekday=weekday.astype(np.int64),
        workingday=((weekday >= 1) & (weekday <= 5) & (holiday == 0)).astype(np.int64),
    )
    return pd.DataFrame(columns)
