"""Validate: check the raw table against the pandera schema and store it as typed arrays."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from schemas.config import WeatherScale
from schemas.errors import DataValidationError
from schemas.records import (
    DATE_COLUMN,
    STATION_COLUMN,
    TARGET_COLUMN,
    Granularity,
    feature_columns,
)
from schemas.report import ValidationReport
from schemas.validation import RecordValidator
from tasks.prepare.split import MIN_TRAIN_DAYS, MIN_VALIDATION_DAYS
from tasks.storage.appender import ArrayAppender
from tasks.storage.cache_policy import ArtifactCache
from tasks.storage.descriptors import RawData
from tasks.storage.store import ArrayRef, ArtifactStore, load_array, verify
from tasks.storage.table import TableData


def report_markdown(report: ValidationReport, shown: int = 50) -> str:
    """Render a validation report as a markdown table for the Prefect UI."""
    status = "passed" if report.ok else f"failed with {len(report.failures)} problem(s)"
    lines = [f"# Validation of `{report.file}`: {status}", "", f"Rows read: {report.rows}", ""]
    for title, items in (("Failures", report.failures), ("Warnings", report.warnings)):
        if not items:
            continue
        lines += [f"## {title}", "", "| row | column | rule | value |", "|---|---|---|---|"]
        for item in items[:shown]:
            value = item.value.replace("|", "\\|")
            lines.append(f"| {item.row or ''} | {item.column or ''} | {item.rule} | {value} |")
        if len(items) > shown:
            lines.append(f"\n... and {len(items) - shown} more")
        lines.append("")
    return "\n".join(lines)


def minimum_rows(test_days: int) -> int:
    """The fewest rows a split with ``test_days`` can work with (train and validation need some)."""
    return test_days + MIN_TRAIN_DAYS + MIN_VALIDATION_DAYS


PROGRESS_SECONDS = 10.0  # a progress line at most this often: long files, quiet logs


def validate_table(
    path: Path,
    label: str,
    min_days: int,
    granularity: Granularity,
    store: ArtifactStore,
    log: Callable[[str], None] = lambda message: None,
    weather_scale: WeatherScale = "uci",
) -> tuple[dict[str, ArrayRef] | None, RecordValidator]:
    """Validate a CSV file chunk by chunk, writing its arrays as it goes (kept only if valid)."""
    validator = RecordValidator(label, granularity, min_days, weather_scale=weather_scale)
    columns = list(feature_columns(granularity))
    appenders: dict[str, ArrayAppender] = {
        "dates": ArrayAppender(store, "datetime64[D]", ()),
        "features": ArrayAppender(store, "float32", (len(columns),)),
        "target": ArrayAppender(store, "float32", (1,)),
    }
    size = max(path.stat().st_size, 1)
    last_report = time.monotonic()
    try:
        with open(path, "rb") as handle:
            for chunk in validator.chunks(handle):
                if validator.has_station and "stations" not in appenders:
                    appenders["stations"] = ArrayAppender(store, "int64", ())
                if validator.report.ok:
                    _append(appenders, chunk, columns)
                if time.monotonic() - last_report > PROGRESS_SECONDS:
                    last_report = time.monotonic()
                    log(
                        f"validated {validator.report.rows:,} rows "
                        f"({100 * handle.tell() / size:.0f}% of {label})"
                    )
        validator.finish()
        if not validator.report.ok:
            for appender in appenders.values():
                appender.abort()
            return None, validator
        return {name: appender.finish() for name, appender in appenders.items()}, validator
    except BaseException:
        for appender in appenders.values():
            appender.abort()
        raise


def _append(appenders: dict[str, ArrayAppender], chunk: pd.DataFrame, columns: list[str]) -> None:
    appenders["dates"].append(chunk[DATE_COLUMN].to_numpy().astype("datetime64[D]"))
    appenders["features"].append(chunk[columns].to_numpy(dtype=np.float32))
    appenders["target"].append(chunk[[TARGET_COLUMN]].to_numpy(dtype=np.float32))
    if "stations" in appenders:
        appenders["stations"].append(chunk[STATION_COLUMN].to_numpy(dtype=np.int64))


@task(
    name="validate_records",
    cache_policy=ArtifactCache(libraries=("pandas", "pandera", "numpy")),
    persist_result=True,
    result_serializer="json",
)
def validate_records(
    raw: RawData, test_days: int, store_root: str, granularity: Granularity = "day"
) -> TableData:
    """Validate the records lazily, chunk by chunk, and store dates, features and target."""
    logger = get_run_logger()
    store = ArtifactStore(store_root)
    label = raw.source if raw.member is None else f"{raw.source}!{raw.member}"
    started = time.perf_counter()
    arrays, validator = validate_table(
        verify(raw.table),
        label,
        minimum_rows(test_days),
        granularity,
        store,
        logger.info,
        raw.weather_scale,  # rows built from trips: raw weather, wider bounds than day.csv's
    )
    report = validator.report
    report_ref = store.put_json(report.to_json())
    logger.info(
        "validated %d rows of %s in %.1f s (parse %.1f s, schema %.1f s, row order %.1f s)",
        report.rows,
        label,
        time.perf_counter() - started,
        validator.seconds["parse"],
        validator.seconds["schema"],
        validator.seconds["sequence"],
    )
    if arrays is None:
        create_markdown_artifact(
            key="validation-report",
            markdown=report_markdown(report),
            description="Failed validation",
        )
        raise DataValidationError.from_failures(label, report.failures)
    shown = 10
    for warning in report.warnings[:shown]:
        logger.warning("warning in %s: %s", label, warning.describe())
    if len(report.warnings) > shown:
        logger.warning(
            "... and %d more warnings in %s (see validation.json)",
            sum(report.warning_counts.values()) - shown,
            label,
        )
    dates = load_array(arrays["dates"], mmap=True)
    return TableData(
        source=label,
        source_sha256=raw.table.sha256,
        rows=len(dates),
        first_date=str(dates[0]),
        last_date=str(dates[-1]),
        feature_names=feature_columns(granularity),
        dates=arrays["dates"],
        features=arrays["features"],
        target=arrays["target"],
        report=report_ref,
        granularity=granularity,
        stations=arrays.get("stations"),
    )
