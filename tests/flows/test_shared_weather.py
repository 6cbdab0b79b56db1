"""shared-weather end to end: retrain, then predict new days from their own previous days."""

import logging

import pytest

from flows.retrain import retrain
from schemas.config import RetrainConfig
from schemas.records import COUNT_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.prediction.batch import PREDICTED_COLUMN, parse_days, predict_frame
from tasks.promotion.registry import Registry

pytestmark = pytest.mark.slow


def test_shared_weather_retrains_and_predicts_with_the_day_before_from_the_input(
    small_config: RetrainConfig, caplog: pytest.LogCaptureFixture
):
    config = RetrainConfig.model_validate(
        {**small_config.model_dump(exclude_unset=True), "model": {"architecture": "shared-weather"}}
    )
    assert config.features.previous_weather
    with caplog.at_level(logging.WARNING):
        assert retrain(config, return_state=True).is_completed()
    # Only the file's first day has no day before.
    assert "1 of 200 rows have no row for the day before" in caplog.text
    registry = Registry(config.registry_root)
    champion = registry.require_champion()
    assert registry.statistics(champion).encoding.previous_day == (
        "temp",
        "atemp",
        "hum",
        "windspeed",
    )

    later = make_day_frame(220, seed=9).iloc[200:].drop(columns=list(COUNT_COLUMNS))
    days, _ = parse_days(to_csv_bytes(later), "days.csv")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        first = predict_frame(registry, champion, days, "days.csv")
    assert "days.csv: previous-day weather: 1 of 20 rows" in caplog.text
    assert len(first) == 20 and (first[PREDICTED_COLUMN] >= 0).all()

    # Day 5's weather is day 6's "yesterday": changing it changes days 5 and 6 only.
    changed = later.copy()
    changed.iloc[5, [changed.columns.get_loc(c) for c in ("temp", "atemp", "hum")]] = 0.05
    days, _ = parse_days(to_csv_bytes(changed), "days.csv")
    second = predict_frame(registry, champion, days, "days.csv")
    moved = first[PREDICTED_COLUMN] != second[PREDICTED_COLUMN]
    assert moved.iloc[6]
    assert not moved.drop(index=[5, 6]).any()
