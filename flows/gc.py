"""The ``gc-weekly`` flow: one ``bikeflow gc --apply`` pass, on a schedule (prefect.yaml)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from schemas.gc_config import GcConfig
from tasks.gc_pass import gc_pass, records_folder


@flow(name="gc", result_serializer="json")
def collect_garbage(config: GcConfig = GcConfig()) -> int:  # noqa: B008
    """Delete what no kept run, version or running flow needs; return the bytes freed."""
    report = gc_pass(config, records_folder(), apply=True)
    logger = get_run_logger()
    for line in report.lines():
        logger.info(line)
    return report.freed
