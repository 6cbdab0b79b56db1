import subprocess
import sys

import numpy as np
import pytest

from tasks.evaluation.metrics import regression_scores


def test_perfect_predictions_score_perfectly():
    actual = np.array([100.0, 2000.0, 4500.0, 30.0])
    scores = regression_scores(actual, actual.copy())
    assert (scores.rmse, scores.mae, scores.r2, scores.wape) == (0.0, 0.0, 1.0, 0.0)


def test_constant_error_shows_in_every_score():
    actual = np.array([1000.0, 2000.0, 3000.0])
    scores = regression_scores(actual, actual + 100)
    assert scores.rmse == pytest.approx(100) and scores.mae == pytest.approx(100)
    assert scores.wape == pytest.approx(300 / 6000)
    assert scores.r2 == pytest.approx(1 - 3 * 100**2 / 2_000_000)


def test_percentage_error_stays_finite_on_a_near_zero_day():
    actual = np.array([22.0, 5000.0, 6000.0])  # the Hurricane Sandy day has 22 rentals
    scores = regression_scores(actual, np.array([3000.0, 5000.0, 6000.0]))
    assert scores.wape == pytest.approx(2978 / 11022)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="cannot score"):
        regression_scores(np.zeros(3), np.zeros(4))


def test_metrics_and_the_registry_import_no_prefect():
    # bikeflow plan reads the registry through these modules and must not wait for Prefect.
    code = (
        "import sys, tasks.evaluation.metrics, tasks.promotion.registry; "
        "print(sorted(name for name in ('prefect', 'tensorflow') if name in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"
