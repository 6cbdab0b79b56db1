"""Batch prediction: validate a CSV of days and predict their rentals with the champion model."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from schemas.records import (
    DATE_COLUMN,
    FEATURE_COLUMNS,
    ValidationReport,
    validate_prediction_csv,
)
from tasks.errors import ArtifactError, DataValidationError, SourceError
from tasks.evaluate import predict_counts
from tasks.registry import MODEL_FILE, ModelVersion, Registry
from tasks.store import write_file_atomic
from tasks.validate import report_markdown

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
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise SourceError(f"prediction input {path}: no such file")
    return path, path.read_bytes()


def parse_days(data: bytes, file: str) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate prediction input bytes; raise ``DataValidationError`` listing every failure."""
    frame, report = validate_prediction_csv(data, file)
    if frame is None:
        raise DataValidationError.from_failures(file, report.failures)
    return frame, report


def predict_frame(registry: Registry, champion: ModelVersion, days: pd.DataFrame) -> pd.DataFrame:
    """Normalise the days with the champion's statistics and predict their counts."""
    statistics = registry.statistics(champion)
    # A one-hot champion's feature_names are its encoded columns; its raw columns are these.
    raw_names = statistics.encoding.raw_names or statistics.feature_names
    if tuple(raw_names) != FEATURE_COLUMNS:
        raise ArtifactError(
            f"champion {champion.version} was trained on features {raw_names}, "
            f"not {FEATURE_COLUMNS}"
        )
    x = statistics.prepare_features(
        days[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64),
        days[DATE_COLUMN].to_numpy().astype("datetime64[D]"),
    )
    predicted = predict_counts(registry.file_ref(champion, MODEL_FILE), x, statistics)
    return pd.DataFrame(
        {
            DATE_COLUMN: days[DATE_COLUMN].dt.strftime("%Y-%m-%d").to_numpy(),
            # A day cannot have fewer than 0 rentals; the network's output is unbounded.
            PREDICTED_COLUMN: np.rint(np.clip(predicted, 0.0, None)).astype(np.int64),
        }
    )


@task(name="find_champion", cache_policy=NO_CACHE, persist_result=False)
def find_champion(registry_root: str) -> ModelVersion:
    """Return the registry's champion (its files verified), or raise ``NoChampionError``."""
    return Registry(registry_root).require_champion()


@task(name="validate_prediction_input", cache_policy=NO_CACHE, persist_result=False)
def validate_prediction_input(input_csv: str) -> PredictionInput:
    """Validate the days to predict (date and 11 features, no counts) lazily."""
    path, data = read_input(input_csv)
    frame, report = validate_prediction_csv(data, str(path))
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
    frame, _ = parse_days(data, days.path)
    predictions = predict_frame(Registry(registry_root), champion, frame)
    output = Path(output_csv).expanduser().resolve()
    write_file_atomic(output, predictions.to_csv(index=False, lineterminator="\n").encode())
    mean = float(predictions[PREDICTED_COLUMN].mean())
    create_markdown_artifact(
        key="batch-predictions",
        markdown=(
            f"# Batch prediction\n\n{days.rows} days ({days.first_date} .. {days.last_date}) "
            f"predicted by champion `{champion.version}`; mean {mean:.0f} rentals a day."
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
