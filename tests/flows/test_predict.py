import pytest

from flows.predict import predict_batch
from flows.retrain import retrain
from schemas.config import FeatureConfig, PredictConfig, RetrainConfig
from schemas.errors import DataValidationError, NoChampionError
from schemas.records import COUNT_COLUMNS, PREDICTION_COLUMNS
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.promotion.registry import Registry

pytestmark = pytest.mark.slow


def test_no_champion_fails_the_run_with_a_clear_error(tmp_path):
    days = tmp_path / "days.csv"
    days.write_bytes(to_csv_bytes(make_day_frame(10)[list(PREDICTION_COLUMNS)]))
    config = PredictConfig(
        input_csv=str(days),
        registry_root=str(tmp_path / "empty"),
        output_csv=str(tmp_path / "out.csv"),
    )
    state = predict_batch(config, return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, NoChampionError)
    assert "no champion yet" in str(error)
    assert not (tmp_path / "out.csv").exists()


def test_predicts_new_days_with_the_champion_after_retraining(
    tmp_path, small_config: RetrainConfig
):
    assert retrain(small_config, return_state=True).is_completed()
    champion = Registry(small_config.registry_root).require_champion()

    # 40 days after the training data, with instant kept and counts removed.
    later = make_day_frame(240, seed=9).iloc[200:].drop(columns=list(COUNT_COLUMNS))
    days = tmp_path / "days.csv"
    days.write_bytes(to_csv_bytes(later))
    output = tmp_path / "predictions" / "out.csv"
    config = PredictConfig(
        input_csv=str(days), registry_root=small_config.registry_root, output_csv=str(output)
    )
    state = predict_batch(config, return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert summary.champion == champion.version and summary.rows == 40
    lines = output.read_text().splitlines()
    assert lines[0] == "dteday,predicted_cnt"
    assert [line.split(",")[0] for line in lines[1:]] == list(later["dteday"])
    predicted = [int(line.split(",")[1]) for line in lines[1:]]
    assert all(count >= 0 for count in predicted) and len(set(predicted)) > 1

    # Bad input: the run fails naming row and column, and the earlier output is untouched.
    before = output.read_bytes()
    broken = later.copy()
    broken.iloc[3, broken.columns.get_loc("hum")] = 2.0
    days.write_bytes(to_csv_bytes(broken))
    failed = predict_batch(config, return_state=True)
    assert failed.is_failed()
    error = failed.result(raise_on_failure=False)
    assert isinstance(error, DataValidationError)
    assert "row 4" in str(error) and "column hum" in str(error)
    assert output.read_bytes() == before


def test_a_station_champion_predicts_per_station_and_needs_the_station_column(
    tmp_path, small_config: RetrainConfig
):
    from schemas.synthetic import make_records

    source = tmp_path / "stations.csv"
    source.write_bytes(to_csv_bytes(make_records(200, stations=3, seed=1)))
    trained = retrain(small_config.model_copy(update={"source": str(source)}), return_state=True)
    assert trained.is_completed()

    # Ten days after the training data; station 31002 is replaced by one the model never saw.
    later = make_records(210, stations=3, seed=9).iloc[200 * 3 :].drop(columns=list(COUNT_COLUMNS))
    later["station"] = later["station"].replace(31002, 31999)
    days = tmp_path / "station-days.csv"
    days.write_bytes(to_csv_bytes(later))
    output = tmp_path / "predictions" / "stations.csv"
    config = PredictConfig(
        input_csv=str(days), registry_root=small_config.registry_root, output_csv=str(output)
    )
    state = predict_batch(config, return_state=True)
    assert state.is_completed()
    lines = output.read_text().splitlines()
    assert lines[0] == "dteday,station,predicted_cnt" and len(lines) == 1 + 10 * 3
    rows = [line.split(",") for line in lines[1:]]
    assert [int(row[1]) for row in rows] == later["station"].tolist()
    assert all(int(row[2]) >= 0 for row in rows)

    # Without the station column the champion cannot predict: the error names file and column.
    days.write_bytes(to_csv_bytes(later.drop(columns="station")))
    failed = predict_batch(config, return_state=True)
    assert failed.is_failed()
    error = failed.result(raise_on_failure=False)
    assert isinstance(error, DataValidationError)
    assert str(days) in str(error) and "no 'station' column" in str(error)


def test_holiday_window_champion_predicts_from_the_dates_of_new_days(
    tmp_path, small_config: RetrainConfig
):
    config = small_config.model_copy(
        update={"features": FeatureConfig(holidays="us-federal", holiday_window_days=3)}
    )
    assert retrain(config, return_state=True).is_completed()
    champion = Registry(config.registry_root).require_champion()
    assert any(name.startswith("near:") for name in champion_feature_names(config))

    # Thanksgiving week and a week in December, dates the training rows never had.
    later = make_day_frame(400, seed=9).iloc[320:].drop(columns=list(COUNT_COLUMNS))
    days = tmp_path / "days.csv"
    days.write_bytes(to_csv_bytes(later))
    output = tmp_path / "out.csv"
    predict_config = PredictConfig(
        input_csv=str(days), registry_root=config.registry_root, output_csv=str(output)
    )
    summary = predict_batch(predict_config)
    assert summary.champion == champion.version and summary.rows == 80
    lines = output.read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == list(later["dteday"])


def champion_feature_names(config: RetrainConfig) -> tuple[str, ...]:
    registry = Registry(config.registry_root)
    return registry.statistics(registry.require_champion()).feature_names
