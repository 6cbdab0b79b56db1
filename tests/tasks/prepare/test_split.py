import numpy as np
import pytest

from schemas.errors import SplitError
from tasks.prepare.split import MIN_TRAIN_DAYS, plan_split


def _days(n: int) -> np.ndarray:
    return np.datetime64("2011-01-01") + np.arange(n)


def test_split_never_overlaps_dates():
    plan = plan_split(_days(731), test_days=100, validation_fraction=0.1)
    assert (plan.train.start, plan.test.stop) == (0, 731)
    assert plan.test.days == 100 and plan.test.first_date == "2012-09-23"
    assert plan.validation.days == round(631 * 0.1)
    assert plan.train.stop == plan.validation.start and plan.validation.stop == plan.test.start
    assert plan.train.last_date < plan.validation.first_date < plan.test.first_date


def test_rows_sharing_a_date_stay_in_one_window():
    dates = np.repeat(_days(50), 3)  # three stations a day
    plan = plan_split(dates, test_days=10, validation_fraction=0.2)
    assert plan.test.stop - plan.test.start == 30
    assert dates[plan.validation.stop - 1] < dates[plan.test.start]


def test_too_few_days_for_the_split_is_refused():
    with pytest.raises(SplitError, match="cannot be split"):
        plan_split(_days(100 + MIN_TRAIN_DAYS), test_days=100, validation_fraction=0.1)


def test_unsorted_dates_are_refused():
    dates = _days(200)[::-1]
    with pytest.raises(SplitError, match="sorted"):
        plan_split(dates, test_days=20, validation_fraction=0.1)
