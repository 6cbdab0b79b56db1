"""The batch prediction flow: champion -> validated days -> predicted counts CSV."""

from __future__ import annotations

from prefect import flow

from schemas.config import PredictConfig
from tasks.error_logs import install_user_error_filter
from tasks.prediction.batch import (
    PredictionSummary,
    find_champion,
    predict_days,
    validate_prediction_input,
)
from tasks.preflight import check_paths

# A user error is logged by Prefect with its message and no traceback (tasks/error_logs.py);
# installed on import so that it holds wherever this flow runs (CLI, Python, a worker).
install_user_error_filter()


@flow(name="predict-batch", result_serializer="json")
def predict_batch(config: PredictConfig = PredictConfig()) -> PredictionSummary:  # noqa: B008
    """Predict daily rentals for a CSV of days with the model registry's champion."""
    check_paths(config)
    champion = find_champion(config.registry_root)
    # The champion is checked against the file's columns (a station column) before its rows.
    days = validate_prediction_input(config.input_csv, champion, config.registry_root)
    return predict_days(champion, days, config.registry_root, config.output_csv)
