"""Normalise: mean/variance statistics from the training rows only, applied to every split."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from prefect import task

from schemas.config import FeatureConfig
from tasks.logs import run_logger
from tasks.prepare.encode import (
    FeatureEncoding,
    StationVocabulary,
    TargetTransform,
    fallback_message,
    fit_encoding,
    fit_station_vocabulary,
    previous_day_index,
    transform_target,
)
from tasks.prepare.statistics import NormalisedData, Statistics
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import SplitPlan, Window
from tasks.storage.store import ArrayRef, ArtifactStore, load_array
from tasks.storage.table import TableData

__all__ = ["CHUNK_ROWS", "NormalisedData", "Statistics", "fit_statistics", "normalise_features"]

CHUNK_ROWS = 1 << 18


def _moments(array: np.ndarray, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of rows start..stop-1, in one streaming pass of chunks."""
    count = 0
    mean = np.zeros(array.shape[1], dtype=np.float64)
    m2 = np.zeros(array.shape[1], dtype=np.float64)
    for begin in range(start, stop, CHUNK_ROWS):
        chunk = np.asarray(array[begin : min(begin + CHUNK_ROWS, stop)], dtype=np.float64)
        n = len(chunk)
        chunk_mean = chunk.mean(axis=0)
        chunk_m2 = ((chunk - chunk_mean) ** 2).sum(axis=0)
        # Chan et al.'s merge of two partial (count, mean, M2) summaries.
        delta = chunk_mean - mean
        total = count + n
        mean = mean + delta * n / total
        m2 = m2 + chunk_m2 + delta**2 * count * n / total
        count = total
    std = np.sqrt(m2 / count)
    return mean, std


def fit_statistics(
    features: np.ndarray,
    target: np.ndarray,
    train: Window,
    feature_names: tuple[str, ...],
    encoding: FeatureEncoding | None = None,
    target_transform: TargetTransform = "none",
) -> Statistics:
    """Compute the statistics from the training window only (never validation or test).

    ``features`` are already encoded with ``encoding`` (if given); ``target`` is raw counts.
    """
    feature_mean, feature_std = _moments(features, train.start, train.stop)
    if target_transform != "none":
        target = transform_target(target[train.start : train.stop], target_transform)
        train = train.model_copy(update={"start": 0, "stop": train.stop - train.start})
    target_mean, target_std = _moments(target, train.start, train.stop)
    # A column constant over the training rows carries no information; dividing by 1 keeps
    # it finite (it becomes 0 for training rows) instead of dividing by zero.
    feature_std = np.where(feature_std > 0, feature_std, 1.0)
    target_scale = float(target_std[0]) if target_std[0] > 0 else 1.0
    encoding = encoding or FeatureEncoding(raw_names=feature_names)
    return Statistics(
        encoding=encoding,
        target_transform=target_transform,
        feature_names=encoding.encoded_names() if encoding.adds_columns else feature_names,
        feature_mean=tuple(float(v) for v in feature_mean),
        feature_std=tuple(float(v) for v in feature_std),
        target_mean=float(target_mean[0]),
        target_std=target_scale,
        train_rows=train.stop - train.start,
    )


def _write_normalised(
    store: ArtifactStore,
    source: np.ndarray,
    window: Window,
    scale: Callable[[np.ndarray], np.ndarray],
) -> ArrayRef:
    rows = window.stop - window.start

    def fill(out: np.ndarray) -> None:
        for begin in range(0, rows, CHUNK_ROWS):
            end = min(begin + CHUNK_ROWS, rows)
            out[begin:end] = scale(source[window.start + begin : window.start + end])

    return store.write_array((rows, source.shape[1]), "float32", fill)


def _write_station_indices(
    store: ArtifactStore, stations: np.ndarray, window: Window, vocabulary: StationVocabulary
) -> ArrayRef:
    """Store the station index of every row of a window (int32, one column), in chunks."""
    rows = window.stop - window.start

    def fill(out: np.ndarray) -> None:
        for begin in range(0, rows, CHUNK_ROWS):
            end = min(begin + CHUNK_ROWS, rows)
            ids = stations[window.start + begin : window.start + end]
            out[begin:end, 0] = vocabulary.index(ids)

    return store.write_array((rows, 1), "int32", fill)


def _write_encoded(
    store: ArtifactStore,
    raw: np.ndarray,
    dates: np.ndarray,
    encoding: FeatureEncoding,
    previous: np.ndarray | None = None,
) -> ArrayRef:
    """Store the encoded feature matrix of every row, written in chunks.

    ``previous`` is each row's previous-day row index over the whole table (a chunk's first
    day looks back into the chunk before), when the encoding has previous-day columns.
    """
    width = len(encoding.encoded_names())

    def fill(out: np.ndarray) -> None:
        for begin in range(0, len(raw), CHUNK_ROWS):
            end = min(begin + CHUNK_ROWS, len(raw))
            before = (
                None
                if previous is None
                else encoding.previous_day_rows(raw, previous[begin:end], begin)
            )
            out[begin:end] = encoding.encode(np.asarray(raw[begin:end]), dates[begin:end], before)

    return store.write_array((len(raw), width), "float32", fill)


@task(
    name="normalise_features",
    cache_policy=ArtifactCache(libraries=("numpy", "pandas")),
    persist_result=True,
    result_serializer="json",
)
def normalise_features(
    table: TableData,
    plan: SplitPlan,
    store_root: str,
    features_config: FeatureConfig = FeatureConfig(),  # noqa: B008 (frozen, never mutated)
) -> NormalisedData:
    """Encode, fit mean/std on the training rows and write float32 x_*/y_*.npy for every split.

    With a station column, the station vocabulary is fitted on the training rows too, and
    each split gets its int32 ``station_*`` index array.
    """
    store = ArtifactStore(store_root)
    features = load_array(table.features, mmap=True)
    target = load_array(table.target, mmap=True)
    dates = load_array(table.dates, mmap=True)
    encoding = fit_encoding(
        features_config.encoding,
        table.feature_names,
        features_config.holidays,
        features_config.holiday_window_days,
        dates[plan.train.start : plan.train.stop],
        features_config.previous_weather,
    )
    stations = None if table.stations is None else load_array(table.stations, mmap=True)
    previous = None
    if encoding.previous_day:
        # Yesterday's weather is known when today is predicted: every row may look back, a
        # validation day into training, a test day into validation.
        previous = previous_day_index(dates, stations)
        message = fallback_message(previous, dates)
        if message:
            run_logger().warning(message)
    if encoding.adds_columns:
        features = load_array(_write_encoded(store, features, dates, encoding, previous), mmap=True)
    stats = fit_statistics(
        features,
        target,
        plan.train,
        table.feature_names,
        encoding,
        features_config.target_transform,
    )
    if stations is not None:
        # Only the training rows name the known stations: a station first seen in validation
        # or test maps to the unknown index, as it would in production.
        vocabulary = fit_station_vocabulary(stations[plan.train.start : plan.train.stop])
        stats = stats.model_copy(update={"stations": vocabulary})
    arrays: dict[str, ArrayRef] = {}
    for name, window in (
        ("train", plan.train),
        ("validation", plan.validation),
        ("test", plan.test),
    ):
        arrays[f"x_{name}"] = _write_normalised(store, features, window, stats.normalise_features)
        arrays[f"y_{name}"] = _write_normalised(store, target, window, stats.normalise_target)
        if stations is not None and stats.stations is not None:
            arrays[f"station_{name}"] = _write_station_indices(
                store, stations, window, stats.stations
            )
    return NormalisedData(
        statistics=stats,
        # Without stations the file stays as it was before stations existed (same digest).
        statistics_file=store.put_json(stats.model_dump(mode="json", exclude_none=True)),
        **arrays,
    )
