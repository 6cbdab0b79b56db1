"""Export a registry version as a SavedModel; plain TensorFlow serves what bikeflow predicts.

Each model is registered the way a run registers it (its ``.keras`` file and its statistics),
exported with ``export_version``, loaded with ``tf.saved_model.load`` in a process that never
imports bikeflow (``export_support``) and compared with ``predict_frame``, the function the
``bikeflow predict`` flow runs, on the same CSV rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from flows.cli.models import EXPORT_FORMATS
from flows.retrain import retrain
from schemas.config import ModelConfig, RetrainConfig
from schemas.errors import ArtifactError, PathRefusedError
from schemas.ownership import MARKER
from schemas.records import (
    COUNT_COLUMNS,
    DATE_COLUMN,
    FEATURE_COLUMNS,
    HOUR_FEATURE_COLUMNS,
    STATION_COLUMN,
    TARGET_COLUMN,
)
from schemas.synthetic import make_day_frame, make_records, to_csv_bytes
from tasks.models.bundle import ModelBundle
from tasks.models.export import EXPORT_RECORD, FORMATS
from tasks.models.zoo import build_model, model_inputs
from tasks.prediction.batch import parse_days, predict_frame
from tasks.prediction.export import export_version
from tasks.prepare.encode import fit_encoding, fit_station_vocabulary
from tasks.prepare.normalise import fit_statistics
from tasks.prepare.statistics import Statistics
from tasks.promotion.registry import ModelVersion, Registry
from tasks.storage.descriptors import Window
from tasks.storage.store import ArtifactStore
from tests.tasks.models.export_support import (
    export_command,
    predict_and_serve,
    serve_frame,
    serve_requests,
)

TRAIN_DAYS = 200
# The bundle and the graph compute in the same dtypes; what is left is float32 summation order.
FLOAT_TOLERANCE = 0.01


def window(dates: np.ndarray, stop: int) -> Window:
    return Window(
        start=0, stop=stop, days=stop, first_date=str(dates[0]), last_date=str(dates[stop - 1])
    )


def fit_briefly(model: keras.Model, statistics: Statistics, frame: pd.DataFrame) -> None:
    """A few epochs on the rows, so that the network's output depends on its inputs."""
    raw = frame[list(statistics.encoding.raw_names or FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    x = statistics.prepare_features(raw, dates)
    y = statistics.normalise_target(frame[[TARGET_COLUMN]].to_numpy(np.float64))
    stations = None
    if statistics.stations is not None:
        stations = statistics.station_indices(frame[STATION_COLUMN].to_numpy(np.int64))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(model_inputs(model, x, stations), y, epochs=3, batch_size=32, verbose=0)


def register(tmp_path: Path, model: keras.Model, statistics: Statistics) -> tuple[Registry, str]:
    """Register a model and its statistics as a run does; return the registry and the version."""
    store = ArtifactStore(tmp_path / "store")
    temp = store.temp_path(".keras")
    model.save(temp)
    model_file = store.adopt(temp, ".keras")
    statistics_file = store.put_json(statistics.model_dump(mode="json"))
    registry = Registry(tmp_path / "models")
    dates = ["2011-01-01", "2011-01-30"]
    test = Window(start=0, stop=30, days=30, first_date=dates[0], last_date=dates[1])
    version = registry.register(model_file, statistics_file, {"test_rmse": 1.0}, "d" * 64, test)
    return registry, version.version


def days_to_predict(frame: pd.DataFrame, tmp_path: Path, hourly: bool = False) -> pd.DataFrame:
    """Rows as ``bikeflow predict`` reads them: the CSV without counts, validated and parsed."""
    data = to_csv_bytes(frame.drop(columns=list(COUNT_COLUMNS)))
    (tmp_path / "days.csv").write_bytes(data)
    parsed, _ = parse_days(data, str(tmp_path / "days.csv"), hourly)
    return parsed


def compare(
    registry: Registry, version: str, days: pd.DataFrame, tmp_path: Path
) -> dict[str, np.ndarray]:
    """Export ``version``, serve ``days`` with plain TensorFlow; check it agrees with bikeflow's."""
    record: ModelVersion = registry.read_version(version)
    folder = export_version(registry.root, version, tmp_path / "export" / "bikeflow" / "1")
    served = serve_frame(folder, days, tmp_path / "serving")
    bikes = registry.bundle(record).predict(days)
    counts = predict_frame(registry, record, days)["predicted_cnt"].to_numpy()
    assert served["bikes"].shape == (len(days),)
    assert np.max(np.abs(served["bikes"] - bikes)) <= FLOAT_TOLERANCE
    # bikeflow predict's counts are rounded: within half a bike (and the float tolerance).
    assert np.all(np.abs(np.clip(served["bikes"], 0, None) - counts) <= 0.5 + FLOAT_TOLERANCE)
    assert np.all(np.abs(served["predicted_cnt"] - counts) <= 1)
    assert np.mean(served["predicted_cnt"] == counts) >= 0.99
    # Predictions that differ from day to day: the comparison says something.
    assert np.std(bikes) > 1.0
    return served


def test_the_seed_recipe_served_by_plain_tensorflow_predicts_what_bikeflow_predicts(
    tmp_path: Path,
):
    keras.utils.set_random_seed(3)
    frame = make_day_frame(260, seed=2)
    features = frame[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    target = frame[[TARGET_COLUMN]].to_numpy(np.float64)
    statistics = fit_statistics(features, target, window(dates, TRAIN_DAYS), FEATURE_COLUMNS)
    model = build_model(ModelConfig(), len(FEATURE_COLUMNS))
    fit_briefly(model, statistics, frame.iloc[:TRAIN_DAYS])
    registry, version = register(tmp_path, model, statistics)

    compare(registry, version, days_to_predict(frame.iloc[TRAIN_DAYS:], tmp_path), tmp_path)
    folder = tmp_path / "export" / "bikeflow" / "1"
    record = json.loads((folder / EXPORT_RECORD).read_text())
    assert record["version"] == version
    assert record["inputs"] == {
        DATE_COLUMN: "string",
        **{
            name: "float64" if name in ("temp", "atemp", "hum", "windspeed") else "int64"
            for name in FEATURE_COLUMNS
        },
    }
    assert (folder / "saved_model.pb").is_file() and (folder / MARKER).is_file()


def forecaster_bundle(
    frame: pd.DataFrame, train_days: int, members: int = 2
) -> tuple[keras.Model, Statistics]:
    """The forecaster preset's recipe: one-hot, US holiday windows, log target, two-input
    members averaged in the normalised space (``average_models``, as a run publishes them)."""
    from tasks.training.keras_calls import average_models

    raw = frame[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    encoding = fit_encoding("one-hot", FEATURE_COLUMNS, "us-federal", 3, dates[:train_days])
    target = frame[[TARGET_COLUMN]].to_numpy(np.float64)
    statistics = fit_statistics(
        encoding.encode(raw, dates),
        target,
        window(dates, train_days),
        FEATURE_COLUMNS,
        encoding,
        "log",
    )
    config = ModelConfig(architecture="two-input")
    trained = []
    for _ in range(members):
        member = build_model(config, len(statistics.feature_names))
        fit_briefly(member, statistics, frame.iloc[:train_days])
        trained.append(member)
    return average_models(trained), statistics


def test_the_forecaster_ensemble_served_by_plain_tensorflow_predicts_what_bikeflow_predicts(
    tmp_path: Path,
):
    keras.utils.set_random_seed(4)
    # Two years from 2011-01-01, the first 400 days to train on: every holiday but Juneteenth
    # (from 2021) has a column, and the days predicted, October to December 2012, pass
    # Columbus Day, Veterans Day, Thanksgiving and Christmas, each with its holiday window.
    frame = make_day_frame(731, seed=6)
    model, statistics = forecaster_bundle(frame, 400)
    holidays = [name for name in statistics.feature_names if name.startswith("near:")]
    assert "near:Thanksgiving Day" in holidays and "near:Christmas Day" in holidays
    registry, version = register(tmp_path, model, statistics)
    compare(registry, version, days_to_predict(frame.iloc[640:], tmp_path), tmp_path)


def test_an_hourly_station_model_looks_up_each_station_in_the_graph(tmp_path: Path):
    keras.utils.set_random_seed(5)
    frame = make_records(40, stations=3, granularity="hour", seed=1)
    train = frame.iloc[: 30 * 24 * 3]
    raw = frame[list(HOUR_FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    encoding = fit_encoding("one-hot", HOUR_FEATURE_COLUMNS)
    statistics = fit_statistics(
        encoding.encode(raw),
        frame[[TARGET_COLUMN]].to_numpy(np.float64),
        window(dates, len(train)),
        HOUR_FEATURE_COLUMNS,
        encoding,
        "sqrt",
    ).model_copy(update={"stations": fit_station_vocabulary(train[STATION_COLUMN].to_numpy())})
    assert statistics.stations is not None
    model = build_model(ModelConfig(), len(statistics.feature_names), statistics.stations.size)
    fit_briefly(model, statistics, train)
    # Far-apart station vectors: a station mapped to the wrong row moves the count a lot.
    embedding = model.get_layer("station_embedding")
    rows, width = embedding.get_weights()[0].shape
    embedding.set_weights([np.arange(rows * width, dtype="float32").reshape(rows, width) / 4])
    registry, version = register(tmp_path, model, statistics)

    later = frame.iloc[30 * 24 * 3 :].copy()
    # Station 31002 becomes two stations the training rows never had: the unknown station.
    later[STATION_COLUMN] = later[STATION_COLUMN].replace(31002, 31999)
    later.iloc[1::6, later.columns.get_loc(STATION_COLUMN)] = 31998
    days = days_to_predict(later, tmp_path, hourly=True)
    served = compare(registry, version, days, tmp_path)

    by_station = pd.DataFrame(
        {"key": days[DATE_COLUMN].astype(str) + days["hr"].astype(str), "bikes": served["bikes"]}
    )
    by_station["station"] = days[STATION_COLUMN].to_numpy()
    table = by_station.pivot_table(index="key", columns="station", values="bikes")
    # Known stations differ from each other; the two unknown ones are the same station.
    known = table[[31000, 31001]].dropna()
    assert len(known) and (np.abs(known[31000] - known[31001]) > 1.0).mean() > 0.9
    unknown = table[[31998, 31999]].dropna()
    assert len(unknown) and np.allclose(unknown[31998], unknown[31999])


def test_a_bad_date_is_refused_by_the_graph_with_the_value(tmp_path: Path):
    keras.utils.set_random_seed(6)
    frame = make_day_frame(400, seed=6)
    model, statistics = forecaster_bundle(frame, 300, members=1)
    registry, version = register(tmp_path, model, statistics)
    folder = export_version(registry.root, version, tmp_path / "export")
    row = {name: [1] for name in FEATURE_COLUMNS} | {"temp": [0.5], "atemp": [0.5]}
    row |= {"hum": [0.5], "windspeed": [0.5]}
    refused = {
        "2012/03/01": "dteday must be a date YYYY-MM-DD",
        "2012-02-30": "dteday is not a calendar date",
        "1850-06-01": "dteday must be between",
    }
    requests = [{DATE_COLUMN: [bad], **row} for bad in refused]
    responses = serve_requests(folder, requests, tmp_path / "serving")
    for (bad, says), response in zip(refused.items(), responses, strict=True):
        assert says in response["error"] and bad in response["error"]


def test_previous_day_weather_is_refused_naming_it(tmp_path: Path):
    frame = make_day_frame(260, seed=2)
    raw = frame[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    encoding = fit_encoding("ordinal", FEATURE_COLUMNS, previous_weather=True)
    statistics = fit_statistics(
        encoding.encode(raw, dates),
        frame[[TARGET_COLUMN]].to_numpy(np.float64),
        window(dates, TRAIN_DAYS),
        FEATURE_COLUMNS,
        encoding,
    )
    model = build_model(ModelConfig(architecture="shared-weather"), len(statistics.feature_names))
    registry, version = register(tmp_path, model, statistics)
    with pytest.raises(ArtifactError, match="previous day's weather") as refused:
        export_version(registry.root, version, tmp_path / "export")
    assert "shared-weather" in str(refused.value) and version in str(refused.value)
    assert not (tmp_path / "export").exists()


@pytest.fixture
def seed_version(tmp_path: Path) -> tuple[Registry, str]:
    frame = make_day_frame(220, seed=2)
    features = frame[list(FEATURE_COLUMNS)].to_numpy(np.float64)
    dates = frame[DATE_COLUMN].to_numpy().astype("datetime64[D]")
    target = frame[[TARGET_COLUMN]].to_numpy(np.float64)
    statistics = fit_statistics(features, target, window(dates, TRAIN_DAYS), FEATURE_COLUMNS)
    return register(tmp_path, build_model(ModelConfig(), len(FEATURE_COLUMNS)), statistics)


def test_a_folder_bikeflow_did_not_make_is_refused_and_its_own_is_replaced(
    tmp_path: Path, seed_version: tuple[Registry, str]
):
    registry, version = seed_version
    users = tmp_path / "users-folder"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    with pytest.raises(PathRefusedError, match="bikeflow did not make it"):
        export_version(registry.root, version, users)
    assert [path.name for path in users.iterdir()] == ["notes.txt"]
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []

    ours = tmp_path / "exported"
    export_version(registry.root, version, ours)
    (ours / "left-over.txt").write_text("from the export before")
    export_version(registry.root, version, ours)
    assert not (ours / "left-over.txt").exists() and (ours / "saved_model.pb").is_file()


def test_a_missing_version_is_a_user_error(tmp_path: Path, seed_version: tuple[Registry, str]):
    registry, _ = seed_version
    with pytest.raises(ArtifactError, match="model version 20990101-nothing is missing"):
        export_version(registry.root, "20990101-nothing", tmp_path / "export")


def test_the_export_command_writes_the_folder_and_says_where(
    tmp_path: Path, seed_version: tuple[Registry, str], capsys: pytest.CaptureFixture[str]
):
    registry, version = seed_version
    assert EXPORT_FORMATS == FORMATS
    folder = tmp_path / "serving" / "bikeflow" / "1"
    flags = ["--output-dir", str(folder), "--registry-root", str(registry.root)]
    assert export_command(["export", version, *flags, "--format", "saved-model"]) == 0
    out = capsys.readouterr().out
    assert "export completed" in out and version in out and str(folder) in out
    assert ModelBundle.from_directory(registry.version_dir(version)).raw_columns == FEATURE_COLUMNS

    users = tmp_path / "users-folder"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    flags = ["--output-dir", str(users), "--registry-root", str(registry.root)]
    assert export_command(["export", version, *flags]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bikeflow: export failed: output_dir: refusing to replace")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as usage:
        export_command(["export", version, *flags, "--format", "onnx"])
    assert usage.value.code == 2


@pytest.mark.slow
def test_a_retrained_champion_exported_by_the_command_serves_the_counts_predict_writes(
    tmp_path: Path, small_config: RetrainConfig
):
    assert retrain(small_config, return_state=True).is_completed()
    # 40 days after the training data, as a user hands them to bikeflow predict.
    later = make_day_frame(240, seed=9).iloc[200:].drop(columns=list(COUNT_COLUMNS))
    result = predict_and_serve(Path(small_config.registry_root), later, tmp_path / "check")
    assert result["largest_distance"] <= 0.5 + FLOAT_TOLERANCE
    assert np.mean(result["predicted_cnt"] == result["counts"]) >= 0.95
    assert len(set(result["counts"])) > 1
