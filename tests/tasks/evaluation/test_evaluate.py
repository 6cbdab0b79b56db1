import numpy as np
import pytest

from tasks.evaluation.evaluate import fit_linear, plot_predictions, predict_linear


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


def test_linear_baseline_streamed_in_chunks_equals_one_lstsq_even_with_collinear_columns(
    tmp_path,
):
    rng = np.random.default_rng(3)
    rows = 5_000
    numeric = rng.normal(size=(rows, 3))
    # Two one-hot blocks: each sums to 1, so with the intercept the design is rank-deficient.
    season = np.eye(4)[rng.integers(0, 4, rows)]
    weekday = np.eye(7)[rng.integers(0, 7, rows)]
    x = np.hstack([numeric, season, weekday]).astype(np.float32)
    y = (x @ rng.normal(size=(x.shape[1], 1)) + rng.normal(0, 0.1, (rows, 1))).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)

    whole = np.hstack([x.astype(np.float64), np.ones((rows, 1))])
    expected, *_ = np.linalg.lstsq(whole, y.astype(np.float64), rcond=None)
    streamed = fit_linear(mapped, y, chunk_rows=777)
    assert streamed.shape == expected.shape == (x.shape[1] + 1, 1)
    # The minimum-norm solution, so the weights themselves agree, not only the predictions.
    np.testing.assert_allclose(streamed, expected, atol=1e-8)
    np.testing.assert_allclose(predict_linear(streamed, x), predict_linear(expected, x), atol=1e-8)
    with pytest.raises(ValueError, match="at least one training row"):
        fit_linear(x[:0], y[:0])
