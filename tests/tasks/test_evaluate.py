import numpy as np
import pytest

from tasks.evaluate import fit_linear, plot_predictions, predict_linear, regression_scores


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


def test_linear_baseline_recovers_a_linear_relation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 7.0).reshape(-1, 1)
    weights = fit_linear(x, y)
    np.testing.assert_allclose(predict_linear(weights, x), y, atol=1e-9)


def test_plot_is_a_png():
    dates = np.datetime64("2012-09-23") + np.arange(10)
    png = plot_predictions(dates, np.arange(10.0), np.arange(10.0) + 1)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_plot_of_station_rows_is_drawn_per_date():
    dates = np.repeat(np.datetime64("2012-09-23") + np.arange(10), 3)  # three stations a day
    png = plot_predictions(dates, np.arange(30.0), np.arange(30.0) + 1, by_date=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
