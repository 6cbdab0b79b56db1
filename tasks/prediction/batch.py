"""Batch prediction: validate a CSV of days and predict their rentals with the champion model."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from schemas.errors import ArtifactError, DataValidationError, SourceError
from schemas.records import (
    DATE_COLUMN,
    FEATURE_COLUMNS,
    HOUR_COLUMN,
    HOUR_FEATURE_COLUMNS,
    STATION_COLUMN,
)
from schemas.report import ValidationReport
from schemas.sources import check_source
from schemas.validation import validate_prediction_csv
from tasks.logs import run_logger
from tasks.prepare.encode import fallback_message, previous_day_index
from tasks.prepare.normalise import Statistics
from tasks.prepare.validate import report_markdown
from tasks.promotion.registry import ModelVersion, Registry
from tasks.storage.publish import publish_file

PREDICTED_COLUMN = "predicted_cnt"


class PredictionInput(BaseModel):
    """A validated prediction input file: where it is, its digest and its days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    rows: int
    first_date: str
    last_date: str


class PredictionSummary(BaseModel):
    """What a batch prediction wrote, and with which model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    output_csv: str
    rows: int
    champion: str
    first_date: str
    last_date: str


def read_input(path_text: str) -> tuple[Path, bytes]:
    """Read the input CSV, or raise ``SourceError`` naming the missing file."""
    check_source(path_text)  # the deployment's allow-list, before the file is opened
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise SourceError(f"prediction input {path}: no such file")
    return path, path.read_bytes()


def is_hourly(statistics: Statistics) -> bool:
    """Whether a model reads hourly rows (its raw columns include ``hr``)."""
    return HOUR_COLUMN in (statistics.encoding.raw_names or statistics.feature_names)


def validate_input_csv(
    data: bytes, file: str, hourly: bool = False
) -> tuple[pd.DataFrame | None, ValidationReport]:
    """Validate prediction input bytes as days (or, for an hourly champion, hours)."""
    return validate_prediction_csv(data, file, "hour" if hourly else "day")


def parse_days(
    data: bytes, file: str, hourly: bool = False
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate prediction input bytes; raise ``DataValidationError`` listing every failure."""
    frame, report = validate_input_csv(data, file, hourly)
    if frame is None:
        raise DataValidationError.from_failures(file, report.failures)
    return frame, report


def check_station_column(
    statistics: Statistics, has_column: bool, file: str, champion: ModelVersion
) -> None:
    """Raise ``DataValidationError`` when the input's station column does not fit the champion."""
    if statistics.stations is not None and not has_column:
        raise DataValidationError(
            f"prediction input {file} has no '{STATION_COLUMN}' column, but champion "
            f"{champion.version} was trained with a station input: give every row its "
            "station id"
        )
    if statistics.stations is None and has_column:
        raise DataValidationError(
            f"prediction input {file} has a '{STATION_COLUMN}' column, but champion "
            f"{champion.version} was trained without stations and would predict the same "
            "count for every station: drop the column or promote a model trained per station"
        )


def header_columns(data: bytes) -> list[str] | None:
    """The column names of CSV bytes, or None when there is no readable header."""
    try:
        header = pd.read_csv(io.BytesIO(data), nrows=0, index_col=False, encoding="utf-8")
    except (ValueError, UnicodeDecodeError):  # pandas' parser errors are ValueErrors
        return None
    return [str(name).strip() for name in header.columns]


def predict_frame(
    registry: Registry, champion: ModelVersion, days: pd.DataFrame, file: str = "the input"
) -> pd.DataFrame:
    """Normalise the days with the champion's statistics and predict their counts.

    A champion with a station input needs the ``station`` column (ids it never saw are its
    unknown station); one without refuses it. ``file`` names the input in those errors.
    """
    bundle = registry.bundle(champion)
    if tuple(bundle.raw_columns) not in (FEATURE_COLUMNS, HOUR_FEATURE_COLUMNS):
        raise ArtifactError(
            f"champion {champion.version} was trained on features {bundle.raw_columns}, "
            f"neither day.csv's {FEATURE_COLUMNS} nor hour.csv's"
        )
    has_column = STATION_COLUMN in days.columns
    check_station_column(bundle.statistics, has_column, file, champion)
    if bundle.statistics.encoding.previous_day:
        # The day before comes from the input's own rows (include it to have it used).
        dates = days[DATE_COLUMN].to_numpy().astype("datetime64[D]")
        ids = days[STATION_COLUMN].to_numpy(dtype=np.int64) if has_column else None
        message = fallback_message(previous_day_index(dates, ids), dates)
        if message:
            run_logger().warning("%s: %s", file, message)
    predicted = bundle.predict(days)
    columns = {DATE_COLUMN: days[DATE_COLUMN].dt.strftime("%Y-%m-%d").to_numpy()}
    if HOUR_COLUMN in bundle.raw_columns:
        columns[HOUR_COLUMN] = days[HOUR_COLUMN].to_numpy(dtype=np.int64)
    if has_column:
        columns[STATION_COLUMN] = days[STATION_COLUMN].to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            **columns,
            # A day cannot have fewer than 0 rentals; the network's output is unbounded.
            PREDICTED_COLUMN: np.rint(np.clip(predicted, 0.0, None)).astype(np.int64),
        }
    )


@task(name="find_champion", cache_policy=NO_CACHE, persist_result=False)
def find_champion(registry_root: str) -> ModelVersion:
    """Return the registry's champion (its files verified), or raise ``NoChampionError``."""
    return Registry(registry_root).require_champion()


@task(name="validate_prediction_input", cache_policy=NO_CACHE, persist_result=False)
def validate_prediction_input(
    input_csv: str, champion: ModelVersion | None = None, registry_root: str | None = None
) -> PredictionInput:
    """Validate the days to predict (date, station if any, 11 features, no counts) lazily.

    Given the champion (and its ``registry_root``), a station column that does not fit it is
    refused first: without it a station file would only fail as "repeated dates".
    """
    path, data = read_input(input_csv)
    columns = header_columns(data)
    hourly = False
    if champion is not None:
        if registry_root is None:
            raise ValueError("validate_prediction_input needs the champion's registry_root")
        statistics = Registry(registry_root).statistics(champion)
        # An hourly champion reads hours (hr column); a daily one, days.
        hourly = is_hourly(statistics)
        if columns is not None:
            check_station_column(statistics, STATION_COLUMN in columns, str(path), champion)
    frame, report = validate_input_csv(data, str(path), hourly)
    if frame is None:
        create_markdown_artifact(
            key="prediction-input-report",
            markdown=report_markdown(report),
            description="Prediction input validation failed",
        )
        raise DataValidationError.from_failures(str(path), report.failures)
    dates = frame[DATE_COLUMN]
    return PredictionInput(
        path=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        rows=len(frame),
        first_date=dates.min().strftime("%Y-%m-%d"),
        last_date=dates.max().strftime("%Y-%m-%d"),
    )


@task(name="predict_days", cache_policy=NO_CACHE, persist_result=False)
def predict_days(
    champion: ModelVersion, days: PredictionInput, registry_root: str, output_csv: str
) -> PredictionSummary:
    """Predict counts for the validated days and write the CSV whole (temp file + rename)."""
    _, data = read_input(days.path)
    if hashlib.sha256(data).hexdigest() != days.sha256:
        raise SourceError(f"prediction input {days.path} changed after it was validated")
    registry = Registry(registry_root)
    frame, _ = parse_days(data, days.path, is_hourly(registry.statistics(champion)))
    predictions = predict_frame(registry, champion, frame, days.path)
    output = Path(output_csv).expanduser().resolve()
    csv = predictions.to_csv(index=False, lineterminator="\n").encode()
    publish_file(output, csv, "output_csv")
    mean = float(predictions[PREDICTED_COLUMN].mean())
    unit = "hour" if HOUR_COLUMN in predictions.columns else "day"
    create_markdown_artifact(
        key="batch-predictions",
        markdown=(
            f"# Batch prediction\n\n{days.rows} {unit}s ({days.first_date} .. "
            f"{days.last_date}) predicted by champion `{champion.version}`; mean {mean:.0f} "
            f"rentals a{'n' if unit == 'hour' else ''} {unit}."
            f"\n\nWritten to `{output}`."
        ),
        description="Batch prediction",
    )
    return PredictionSummary(
        output_csv=str(output),
        rows=len(predictions),
        champion=champion.version,
        first_date=days.first_date,
        last_date=days.last_date,
    )
