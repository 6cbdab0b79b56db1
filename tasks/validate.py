"""Validate: check the raw table against the pandera schema and store it as typed arrays."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from schemas.records import (
    DATE_COLUMN,
    FEATURE_COLUMNS,
    TARGET_COLUMN,
    ValidationReport,
    validate_day_csv,
)
from tasks.caching import ArtifactCache
from tasks.errors import DataValidationError
from tasks.ingest import RawData
from tasks.store import ArrayRef, ArtifactStore, FileRef, read_bytes


class TableData(BaseModel):
    """A validated table as arrays: dates, the 11 features (float32) and the count (float32)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    source_sha256: str
    rows: int
    first_date: str
    last_date: str
    feature_names: tuple[str, ...]
    dates: ArrayRef
    features: ArrayRef
    target: ArrayRef
    report: FileRef


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
    from tasks.split import MIN_TRAIN_DAYS, MIN_VALIDATION_DAYS

    return test_days + MIN_TRAIN_DAYS + MIN_VALIDATION_DAYS


@task(
    name="validate_records",
    cache_policy=ArtifactCache(modules=("schemas.records", "tasks.split")),
    persist_result=True,
    result_serializer="json",
)
def validate_records(raw: RawData, test_days: int, store_root: str) -> TableData:
    """Validate the daily records lazily and store dates, features and target as .npy."""
    logger = get_run_logger()
    store = ArtifactStore(store_root)
    label = raw.source if raw.member is None else f"{raw.source}!{raw.member}"
    frame, report = validate_day_csv(read_bytes(raw.table), label, minimum_rows(test_days))
    report_ref = store.put_json(report.to_json())
    if frame is None:
        create_markdown_artifact(
            key="validation-report",
            markdown=report_markdown(report),
            description="Failed validation",
        )
        raise DataValidationError.from_failures(label, report.failures)
    for warning in report.warnings:
        logger.warning("suspicious value in %s: %s", label, warning.describe())
    features = frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float32)
    target = frame[[TARGET_COLUMN]].to_numpy(dtype=np.float32)
    dates = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    return TableData(
        source=label,
        source_sha256=raw.table.sha256,
        rows=len(frame),
        first_date=str(dates[0]),
        last_date=str(dates[-1]),
        feature_names=FEATURE_COLUMNS,
        dates=store.put_array(dates),
        features=store.put_array(features),
        target=store.put_array(target),
        report=report_ref,
    )
