"""Drift: the population stability index of new rows against the training rows."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluation.drift import (
    PSI_EPSILON,
    NewDataReport,
    bin_edges,
    feature_drift,
    new_row_start,
    population_stability,
)


def test_injected_shift_is_large_for_the_shifted_feature_only():
    rng = np.random.default_rng(0)
    train = np.column_stack([rng.normal(0, 1, 2000), rng.integers(1, 5, 2000), rng.random(2000)])
    new = np.column_stack([rng.normal(0, 1, 300), rng.integers(1, 5, 300), rng.random(300)])
    new[:, 0] += 1.5  # the injected shift
    psi = feature_drift(train, new, ("temp", "season", "hum"))
    assert psi["temp"] > 0.5
    assert psi["season"] < 0.05 and psi["hum"] < 0.1


def test_psi_is_zero_for_the_same_distribution_and_finite_for_empty_bins():
    values = np.arange(100.0)
    assert population_stability(values, values) == pytest.approx(0.0, abs=1e-12)
    # Every new row beyond the largest training value: all in the last bin, empty bins floored.
    far = population_stability(values, np.full(50, 1e6))
    assert np.isfinite(far) and far > 5
    assert PSI_EPSILON == 1e-4


def test_few_distinct_values_get_one_bin_each():
    edges = bin_edges(np.array([1, 2, 2, 3, 4, 4, 4], dtype=float))
    np.testing.assert_allclose(edges, [1.5, 2.5, 3.5])


def test_psi_refuses_empty_sides():
    with pytest.raises(ValueError, match="rows on both sides"):
        population_stability(np.array([]), np.array([1.0]))


def test_new_rows_start_after_the_champions_last_date():
    dates = np.array(["2012-01-01", "2012-01-02", "2012-01-02", "2012-01-03"], "datetime64[D]")
    assert new_row_start(dates, "2012-01-02") == 3
    assert new_row_start(dates, "2012-01-03") == 4


def test_summary_says_no_new_data_in_one_line():
    report = NewDataReport(
        champion="v1",
        champion_last_date="2012-12-31",
        newest_data_sha256="a" * 64,
        newest_last_date="2012-12-31",
        new_rows=0,
        new_days=0,
    )
    assert (
        report.summary == "new data: none since the champion's last date 2012-12-31 (champion v1)"
    )
