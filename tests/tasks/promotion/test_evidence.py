import numpy as np
import pytest

from schemas.config import PromotionConfig
from tasks.promotion.evidence import (
    BOOTSTRAP_SEED,
    DailyErrors,
    block_indices,
    bootstrap_evidence,
    daily_squared_errors,
    effective_block_days,
)

DAYS = 100


@pytest.fixture
def actual() -> np.ndarray:
    """A hundred days of counts with a weekly pattern, as in day.csv's test window."""
    day = np.arange(DAYS)
    return 4500.0 + 1200.0 * np.sin(2 * np.pi * day / 7) + 10.0 * day


def errors(actual: np.ndarray, noise: np.ndarray) -> DailyErrors:
    return daily_squared_errors(None, actual, actual + noise)


def compare(actual: np.ndarray, champion_noise: np.ndarray, challenger_noise: np.ndarray):
    defaults = PromotionConfig()
    return bootstrap_evidence(
        errors(actual, champion_noise),
        errors(actual, challenger_noise),
        block_days=defaults.block_days,
        resamples=defaults.resamples,
    )


def test_clearly_better_challenger_is_better_with_high_probability(actual):
    rng = np.random.default_rng(1)
    evidence = compare(actual, rng.normal(0, 900, DAYS), rng.normal(0, 450, DAYS))
    assert evidence.probability >= PromotionConfig().min_probability
    assert evidence.rmse_difference > 0 and evidence.rmse_difference_low > 0
    assert evidence.rmse_difference_low <= evidence.rmse_difference <= evidence.rmse_difference_high
    assert evidence.mse_difference_low > 0


def test_clearly_worse_challenger_has_low_probability(actual):
    rng = np.random.default_rng(2)
    evidence = compare(actual, rng.normal(0, 450, DAYS), rng.normal(0, 900, DAYS))
    assert evidence.probability < 0.01
    assert evidence.rmse_difference_high < 0


def test_an_exact_tie_is_never_better(actual):
    # Same squared error every day (the errors only change sign): no resample favours it.
    noise = np.random.default_rng(3).normal(0, 600, DAYS)
    evidence = compare(actual, noise, -noise)
    assert evidence.probability == 0.0
    assert evidence.mse_difference == pytest.approx(0.0, abs=1e-6)
    assert evidence.rmse_difference == pytest.approx(0.0, abs=1e-9)


def test_an_equally_good_challenger_stays_below_the_promotion_probability(actual):
    # Independent errors of the same size: better on some resamples, worse on others.
    rng = np.random.default_rng(4)
    evidence = compare(actual, rng.normal(0, 600, DAYS), rng.normal(0, 600, DAYS))
    assert 0.05 < evidence.probability < PromotionConfig().min_probability
    assert evidence.rmse_difference_low < 0 < evidence.rmse_difference_high


def test_same_seed_same_evidence_other_seed_other_resamples(actual):
    rng = np.random.default_rng(5)
    old, new = errors(actual, rng.normal(0, 600, DAYS)), errors(actual, rng.normal(0, 560, DAYS))
    first = bootstrap_evidence(old, new, resamples=2000)
    assert bootstrap_evidence(old, new, resamples=2000) == first
    assert first.seed == BOOTSTRAP_SEED
    other = bootstrap_evidence(old, new, resamples=2000, seed=BOOTSTRAP_SEED + 1)
    assert other.rmse_difference == first.rmse_difference  # the estimate is not resampled
    assert other.probability != first.probability or other.rmse_difference_low != (
        first.rmse_difference_low
    )


def test_blocks_are_runs_of_consecutive_days_wrapping_around():
    rng = np.random.default_rng(6)
    index = block_indices(30, 7, 500, rng)
    assert index.shape == (500, 30)
    # Five blocks per resample (the last cut to two days); inside a block each day follows
    # the one before it, and the day after the last is the first.
    for start in range(0, 30, 7):
        block = index[:, start : start + 7]
        assert np.all((np.diff(block, axis=1) % 30) == 1)
    assert np.any(index[:, 1:] < index[:, :-1])  # some block runs past the last day
    # Circular blocks draw every day equally often (no edge days left out).
    counts = np.bincount(index.ravel(), minlength=30)
    assert counts.min() > 0.8 * counts.mean() and counts.max() < 1.2 * counts.mean()


def test_weekly_blocks_widen_the_interval_of_autocorrelated_differences(actual):
    # A challenger that is better in some weeks and worse in others (spells, not single days):
    # resampling single days would treat 100 correlated days as independent evidence.
    weeks = np.repeat(np.random.default_rng(7).choice([-1.0, 1.0], DAYS // 7 + 1), 7)[:DAYS]
    champion_noise = np.full(DAYS, 500.0)
    challenger_noise = 500.0 + 150.0 * weeks + 60.0
    old, new = errors(actual, champion_noise), errors(actual, challenger_noise)
    daily = bootstrap_evidence(old, new, block_days=1, resamples=4000)
    weekly = bootstrap_evidence(old, new, block_days=7, resamples=4000)
    width = weekly.rmse_difference_high - weekly.rmse_difference_low
    assert width > 1.5 * (daily.rmse_difference_high - daily.rmse_difference_low)
    assert weekly.rmse_difference == daily.rmse_difference


def test_station_rows_are_summed_per_date_and_weighted_by_rows():
    dates = np.array(["2012-01-02", "2012-01-01", "2012-01-01", "2012-01-02", "2012-01-03"])
    dates = dates.astype("datetime64[D]")
    actual = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    predicted = np.array([12.0, 17.0, 30.0, 44.0, 49.0])
    daily = daily_squared_errors(dates, actual, predicted)
    assert list(daily.days.astype(str)) == ["2012-01-01", "2012-01-02", "2012-01-03"]
    assert list(daily.squared_error) == [9.0 + 0.0, 4.0 + 16.0, 1.0]
    assert list(daily.rows) == [2.0, 2.0, 1.0]
    # On the window itself the estimate is the difference of the row-level MSEs and RMSEs.
    better = daily_squared_errors(dates, actual, actual + 1.0)
    evidence = bootstrap_evidence(daily, better, block_days=1, resamples=2000)
    row_mse = np.mean((predicted - actual) ** 2)
    assert evidence.mse_difference == pytest.approx(row_mse - 1.0)
    assert evidence.champion_rmse == pytest.approx(np.sqrt(row_mse))
    assert evidence.challenger_rmse == pytest.approx(1.0)


def test_models_scored_on_other_days_cannot_be_compared(actual):
    one = daily_squared_errors(None, actual, actual + 1.0)
    shorter = daily_squared_errors(None, actual[:-1], actual[:-1])
    with pytest.raises(ValueError, match="same rows and days"):
        bootstrap_evidence(one, shorter)
    with pytest.raises(ValueError, match="one date per row"):
        daily_squared_errors(np.zeros(3, dtype="datetime64[D]"), actual, actual)


def test_short_windows_use_blocks_of_half_the_window():
    assert effective_block_days(100, 7) == 7
    assert effective_block_days(10, 7) == 5
    assert effective_block_days(1, 7) == 1
