"""Evidence for a promotion: a paired block bootstrap over days of the squared-error difference.

Champion and challenger predict the same rows of the newest test window. The rows' squared
errors are summed per date (one row per day, or one per station and day, or per hour and
day), so a day is the unit that is resampled and both models always see the same days. A
resample draws blocks of ``block_days`` consecutive days (circular: a block may run past the
last day into the first, so every day is drawn equally often) until it has as many days as
the window; neighbouring days' errors are correlated (weather spells, holidays), and blocks
keep that correlation inside a resample instead of pretending the days are independent.

The statistic of a resample is its row-weighted mean squared-error difference, champion
minus challenger: the sum of the drawn days' squared errors over the number of their rows.
On the window itself that is exactly the difference of the two models' mean squared errors,
so the estimate agrees with the RMSEs the decision reports (and its RMSE difference has the
same sign in every resample). ``probability`` is the share of resamples in which the
challenger's error is strictly lower (beyond float rounding): a challenger whose errors
equal the champion's gets 0.

Pure numpy; the seed is fixed, so the same predictions always give the same evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

# Fixed so that a decision can be recomputed from the same predictions and comes out equal.
BOOTSTRAP_SEED = 20_260
# The two-sided interval the decision shows (the 5th and 95th percentiles).
INTERVAL = 0.9
# A resample's difference smaller than this share of the MSEs is float rounding: a tie.
TIE_TOLERANCE = 1e-9
# Index matrices are built this many cells at a time, so long windows stay in small memory.
_CHUNK_CELLS = 1 << 22


@dataclass(frozen=True)
class DailyErrors:
    """Squared errors per day: the days in order, each day's sum and its number of rows."""

    days: np.ndarray
    squared_error: np.ndarray
    rows: np.ndarray


class Evidence(BaseModel):
    """What the paired bootstrap found; differences are champion minus challenger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int
    block_days: int
    resamples: int
    seed: int
    interval: float
    champion_rmse: float
    challenger_rmse: float
    rmse_difference: float
    rmse_difference_low: float
    rmse_difference_high: float
    mse_difference: float
    mse_difference_low: float
    mse_difference_high: float
    probability: float


def daily_squared_errors(
    dates: np.ndarray | None, actual: np.ndarray, predicted: np.ndarray
) -> DailyErrors:
    """Sum the rows' squared errors per date, in date order (no dates: each row is one day)."""
    actual = np.asarray(actual, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"cannot compare {predicted.shape} predictions with {actual.shape}")
    squared = (predicted - actual) ** 2
    if dates is None:
        return DailyErrors(
            days=np.arange(actual.size), squared_error=squared, rows=np.ones(actual.size)
        )
    dates = np.asarray(dates).ravel()
    if dates.shape != actual.shape:
        raise ValueError(f"{dates.size} dates for {actual.size} rows: one date per row")
    days, day_of_row = np.unique(dates, return_inverse=True)
    return DailyErrors(
        days=days,
        squared_error=np.bincount(day_of_row, weights=squared, minlength=days.size),
        rows=np.bincount(day_of_row, minlength=days.size).astype(np.float64),
    )


def effective_block_days(days: int, block_days: int) -> int:
    """The block length used: ``block_days``, or half the window when it is shorter than two."""
    return max(1, min(block_days, days // 2))


def block_indices(
    days: int, block_days: int, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Day indices of ``resamples`` circular block resamples, shape (resamples, days).

    Each row is made of runs of ``block_days`` consecutive days (modulo ``days``) starting at
    uniformly drawn days, cut to the window's length.
    """
    if days < 1 or block_days < 1 or resamples < 1:
        raise ValueError(f"cannot resample {days} days in blocks of {block_days}")
    blocks = math.ceil(days / block_days)
    starts = rng.integers(0, days, size=(resamples, blocks))
    runs = (starts[:, :, None] + np.arange(block_days)) % days
    return runs.reshape(resamples, blocks * block_days)[:, :days]


def bootstrap_evidence(
    champion: DailyErrors,
    challenger: DailyErrors,
    block_days: int = 7,
    resamples: int = 2000,
    seed: int = BOOTSTRAP_SEED,
    interval: float = INTERVAL,
) -> Evidence:
    """Paired circular block bootstrap of the per-day squared-error difference."""
    if not np.array_equal(champion.days, challenger.days) or not np.array_equal(
        champion.rows, challenger.rows
    ):
        raise ValueError("champion and challenger must be scored on the same rows and days")
    days = int(champion.days.size)
    block = effective_block_days(days, block_days)
    rng = np.random.default_rng(seed)
    old, new, rows = champion.squared_error, challenger.squared_error, champion.rows
    mse_diff = np.empty(resamples)
    rmse_diff = np.empty(resamples)
    better = np.empty(resamples, dtype=bool)
    per_chunk = max(1, _CHUNK_CELLS // max(days, 1))
    for begin in range(0, resamples, per_chunk):
        count = min(per_chunk, resamples - begin)
        index = block_indices(days, block, count, rng)
        drawn_rows = rows[index].sum(axis=1)
        old_mse = old[index].sum(axis=1) / drawn_rows
        new_mse = new[index].sum(axis=1) / drawn_rows
        mse_diff[begin : begin + count] = old_mse - new_mse
        better[begin : begin + count] = old_mse - new_mse > TIE_TOLERANCE * (old_mse + new_mse)
        rmse_diff[begin : begin + count] = np.sqrt(old_mse) - np.sqrt(new_mse)
    total_rows = rows.sum()
    old_rmse = math.sqrt(old.sum() / total_rows)
    new_rmse = math.sqrt(new.sum() / total_rows)
    tail = (1.0 - interval) / 2.0
    mse_low, mse_high = np.quantile(mse_diff, [tail, 1.0 - tail])
    rmse_low, rmse_high = np.quantile(rmse_diff, [tail, 1.0 - tail])
    return Evidence(
        days=days,
        block_days=block,
        resamples=resamples,
        seed=seed,
        interval=interval,
        champion_rmse=old_rmse,
        challenger_rmse=new_rmse,
        rmse_difference=old_rmse - new_rmse,
        rmse_difference_low=float(rmse_low),
        rmse_difference_high=float(rmse_high),
        mse_difference=float((old.sum() - new.sum()) / total_rows),
        mse_difference_low=float(mse_low),
        mse_difference_high=float(mse_high),
        probability=float(np.mean(better)),
    )
