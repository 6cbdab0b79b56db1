"""Evaluate: score the chosen model once on the test window, beside two naive baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import task

from tasks.evaluation.figures import figure_png, new_figure
from tasks.evaluation.metrics import regression_scores
from tasks.models.bundle import ModelBundle
from tasks.prepare.normalise import NormalisedData
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import BestEpoch, Evaluation, SplitPlan, Window
from tasks.storage.store import ArtifactStore, FileRef, load_array, verify
from tasks.storage.table import TableData
from tasks.training.keras_work import predict_counts

LINEAR_CHUNK_ROWS = 1 << 18


def fit_linear(x: np.ndarray, y: np.ndarray, chunk_rows: int = LINEAR_CHUNK_ROWS) -> np.ndarray:
    """Least-squares weights (with intercept, last) of y on x, reading rows in chunks.

    Each chunk is folded into the R factor of a QR decomposition (TSQR), so memory stays at
    one chunk plus a (columns + 1)-square matrix however many rows a memory-mapped ``x`` has,
    and the solution is lstsq's (the minimum-norm one when one-hot columns are collinear).
    """
    rows = len(x)
    if rows == 0:
        raise ValueError("a linear fit needs at least one training row")
    r_factor: np.ndarray | None = None
    q_target: np.ndarray | None = None
    for begin in range(0, rows, chunk_rows):
        end = min(begin + chunk_rows, rows)
        design = np.hstack([np.asarray(x[begin:end], dtype=np.float64), np.ones((end - begin, 1))])
        target = np.asarray(y[begin:end], dtype=np.float64).reshape(end - begin, -1)
        if r_factor is not None and q_target is not None:
            design = np.vstack([r_factor, design])
            target = np.vstack([q_target, target])
        q, r_factor = np.linalg.qr(design)
        q_target = q.T @ target
    assert r_factor is not None and q_target is not None  # rows > 0: the loop ran
    weights, *_ = np.linalg.lstsq(r_factor, q_target, rcond=None)
    return weights if np.ndim(y) > 1 else weights.ravel()


def predict_linear(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Apply weights from ``fit_linear``."""
    return np.hstack([np.asarray(x, dtype=np.float64), np.ones((len(x), 1))]) @ weights


def plot_predictions(
    dates: np.ndarray, actual: np.ndarray, predicted: np.ndarray, by_date: bool = False
) -> bytes:
    """The seed's picture: predicted and actual counts per test day, as PNG bytes.

    ``by_date`` sums the rows of each date first (one row per station and date: the line
    shows the whole system's day instead of a zigzag through the stations).
    """
    if by_date:
        frame = pd.DataFrame({"date": dates, "actual": actual, "predicted": predicted})
        totals = frame.groupby("date", sort=True).sum()
        dates = totals.index.to_numpy()
        actual, predicted = totals["actual"].to_numpy(), totals["predicted"].to_numpy()

    figure, axes = new_figure((10, 4.5), 100)
    axes.plot(dates, actual, label="actual", color="#1f77b4")
    axes.plot(dates, predicted, label="predicted", color="#ff7f0e")
    axes.set_xlabel("day")
    axes.set_ylabel("bike rentals (cnt)")
    axes.set_title("Test window: predicted vs actual daily rentals")
    axes.legend()
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure_png(figure)


def raw_predictions(
    bundle: ModelBundle, table: TableData, window: Window, backend: str | None = None
) -> np.ndarray:
    """The bundle's counts for one window of the table's raw rows (dates, features, stations),
    predicted where ``backend``'s Keras work runs (``tasks.training.keras_work``; None: here)."""
    return window_predictions(bundle, table, (window,), backend)[0]


def window_predictions(
    bundle: ModelBundle, table: TableData, windows: tuple[Window, ...], backend: str | None
) -> list[np.ndarray]:
    """``raw_predictions`` of several windows in one prediction (one model load, one compile)."""
    features = load_array(table.features, mmap=True)
    dates = load_array(table.dates, mmap=True)
    stations = None
    if bundle.has_stations and table.stations is not None:
        stations = load_array(table.stations, mmap=True)
    rows = [slice(w.start, w.stop) for w in windows]
    counts = predict_counts(
        bundle,
        np.concatenate([features[r] for r in rows]),
        np.concatenate([dates[r] for r in rows]),
        None if stations is None else np.concatenate([stations[r] for r in rows]),
        backend,
    )
    ends = np.cumsum([w.stop - w.start for w in windows])[:-1]
    return np.split(counts, ends)


@task(
    name="evaluate_model",
    cache_policy=ArtifactCache(libraries=("tensorflow", "keras", "numpy", "pandas")),
    persist_result=True,
    result_serializer="json",
)
def evaluate_model(
    best: BestEpoch,
    data: NormalisedData,
    table: TableData,
    plan: SplitPlan,
    store_root: str,
    final: FileRef | None = None,
    backend: str | None = None,
) -> Evaluation:
    """Score the final model on the test window, once, and write predictions and the plot.

    ``best`` (the model chosen on validation) gets the validation scores; ``final`` (the
    published model, e.g. refitted members averaged; default ``best.model``) the test scores.
    Both predict raw table rows through ``ModelBundle``, as every user of the model does.
    Every row is scored on its own (one per station and date when there are stations).
    ``backend``: the run's Keras backend; on JAX the run's child predicts (None: this process).
    """
    store = ArtifactStore(store_root)
    stats = data.statistics
    # Memory-mapped: the linear baseline streams the training rows instead of loading them.
    x_train = load_array(data.x_train, mmap=True)
    x_test = load_array(data.x_test)
    has_stations = data.station_test is not None and data.station_validation is not None
    # Metrics and baselines use the raw counts of the table, so a target transform (log) is
    # undone before anything is scored and the baselines stay the same for every transform.
    counts = load_array(table.target, mmap=True)
    train_counts = counts[plan.train.start : plan.train.stop]
    actual = np.asarray(counts[plan.test.start : plan.test.stop], dtype=np.float64).ravel()
    actual_validation = np.asarray(
        counts[plan.validation.start : plan.validation.stop], dtype=np.float64
    ).ravel()

    chosen = ModelBundle(verify(best.model), stats)
    same = final is None or final.sha256 == best.model.sha256
    published = chosen if same or final is None else ModelBundle(verify(final), stats)
    if same:
        predicted_validation, predicted = window_predictions(
            chosen, table, (plan.validation, plan.test), backend
        )
    else:
        predicted_validation = raw_predictions(chosen, table, plan.validation, backend)
        predicted = raw_predictions(published, table, plan.test, backend)
    weights = fit_linear(x_train, train_counts)
    baselines = {
        "training_mean": regression_scores(
            actual, np.full_like(actual, train_counts.mean(dtype=np.float64))
        ),
        "linear_regression": regression_scores(actual, predict_linear(weights, x_test).ravel()),
    }
    dates = load_array(table.dates, mmap=True)[plan.test.start : plan.test.stop]
    columns: dict[str, np.ndarray] = {"date": pd.to_datetime(dates).strftime("%Y-%m-%d")}
    if has_stations and table.stations is not None:
        # The raw id, not the model's index: the CSV is read by people.
        columns["station"] = load_array(table.stations, mmap=True)[plan.test.start : plan.test.stop]
    predictions = pd.DataFrame(
        {
            **columns,
            "actual": np.rint(actual).astype(np.int64),
            "predicted": np.round(predicted, 1),
        }
    )
    plot = plot_predictions(dates, actual, predicted, by_date=has_stations)
    return Evaluation(
        test=regression_scores(actual, predicted),
        validation=regression_scores(actual_validation, predicted_validation),
        baselines=baselines,
        predictions=store.put_bytes(predictions.to_csv(index=False).encode(), ".csv"),
        plot=store.put_bytes(plot, ".png"),
    )
