"""Split: cut the days, in date order, into training, validation and test windows."""

from __future__ import annotations

import numpy as np
from prefect import task

from schemas.config import SplitConfig
from schemas.errors import SplitError
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import SplitPlan, Window
from tasks.storage.store import load_array
from tasks.storage.table import TableData

# Mean and variance from fewer training days would be noise; one validation day is the least
# that can pick an epoch.
MIN_TRAIN_DAYS = 10
MIN_VALIDATION_DAYS = 1


def plan_split(dates: np.ndarray, test_days: int, validation_fraction: float) -> SplitPlan:
    """Plan a chronological split of sorted dates (several rows may share a date)."""
    if len(dates) and np.any(dates[1:] < dates[:-1]):
        raise SplitError("dates must be sorted before they can be split chronologically")
    days = np.unique(dates)
    needed = test_days + MIN_TRAIN_DAYS + MIN_VALIDATION_DAYS
    if len(days) < needed:
        raise SplitError(
            f"{len(days)} days cannot be split into {test_days} test days, at least "
            f"{MIN_VALIDATION_DAYS} validation day and {MIN_TRAIN_DAYS} training days "
            f"(need {needed})"
        )
    remaining = len(days) - test_days
    validation_days = max(MIN_VALIDATION_DAYS, round(remaining * validation_fraction))
    train_days = remaining - validation_days
    if train_days < MIN_TRAIN_DAYS:
        raise SplitError(
            f"validation_fraction {validation_fraction} leaves {train_days} training days; "
            f"at least {MIN_TRAIN_DAYS} are needed"
        )
    bounds = [0, train_days, remaining, len(days)]
    rows = [int(np.searchsorted(dates, days[i], side="left")) for i in bounds[:-1]] + [len(dates)]
    windows = [
        Window(
            start=rows[i],
            stop=rows[i + 1],
            days=bounds[i + 1] - bounds[i],
            first_date=str(days[bounds[i]]),
            last_date=str(days[bounds[i + 1] - 1]),
        )
        for i in range(3)
    ]
    plan = SplitPlan(train=windows[0], validation=windows[1], test=windows[2])
    # Guard: the windows are ordered and disjoint, in rows and in dates.
    if not (
        plan.train.stop == plan.validation.start
        and plan.validation.stop == plan.test.start
        and plan.train.last_date < plan.validation.first_date
        and plan.validation.last_date < plan.test.first_date
    ):
        raise SplitError(f"split windows overlap or are out of order: {plan}")
    return plan


@task(
    name="split_by_date",
    cache_policy=ArtifactCache(libraries=("numpy",)),
    persist_result=True,
    result_serializer="json",
)
def split_by_date(table: TableData, split: SplitConfig) -> SplitPlan:
    """Split the table's days into training, validation (just before test) and test windows."""
    dates = load_array(table.dates, mmap=True)
    return plan_split(dates, split.test_days, split.validation_fraction)
