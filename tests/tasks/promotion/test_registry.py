import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from schemas.config import PromotionConfig
from schemas.errors import ArtifactError, NoChampionError
from schemas.records import FEATURE_COLUMNS, TARGET_COLUMN
from schemas.synthetic import make_day_frame
from tasks.evaluation.evaluate import fit_linear
from tasks.prepare.normalise import fit_statistics
from tasks.promotion.policy import promote, score_version
from tasks.promotion.registry import MODEL_FILE, Registry
from tasks.promotion.report import decision_markdown
from tasks.storage.descriptors import Window
from tasks.storage.store import ArtifactStore, FileRef

TRAIN = Window(start=0, stop=150, days=150, first_date="2011-01-01", last_date="2011-05-30")
TEST = Window(start=170, stop=200, days=30, first_date="2011-06-19", last_date="2011-07-18")


@pytest.fixture
def days():
    frame = make_day_frame(200, seed=5)
    features = frame[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    target = frame[[TARGET_COLUMN]].to_numpy(dtype=np.float64)
    return features, target


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


def linear_model(weights: np.ndarray, bias: float) -> keras.Model:
    model = keras.Sequential([keras.Input(shape=(len(FEATURE_COLUMNS),)), layers.Dense(1)])
    model.layers[-1].set_weights([weights.reshape(-1, 1).astype("float32"), np.array([bias])])
    return model


def save(store: ArtifactStore, model: keras.Model) -> FileRef:
    temp = store.temp_path(".keras")
    model.save(temp)
    return store.adopt(temp, ".keras")


def candidates(store: ArtifactStore, days):
    """A good model (least squares on the training rows) and a bad one (a constant far off)."""
    features, target = days
    stats = fit_statistics(features, target, TRAIN, FEATURE_COLUMNS)
    x = stats.normalise_features(features[TRAIN.start : TRAIN.stop])
    y = stats.normalise_target(target[TRAIN.start : TRAIN.stop])
    fitted = fit_linear(x, y).ravel()
    good = save(store, linear_model(fitted[:-1], float(fitted[-1])))
    bad = save(store, linear_model(np.zeros(len(FEATURE_COLUMNS)), 3.0))
    stats_file = store.put_json(stats.model_dump(mode="json"))
    return good, bad, stats_file


def register(registry: Registry, model: FileRef, stats: FileRef, claimed_rmse: float = 1.0):
    return registry.register(model, stats, {"test_rmse": claimed_rmse}, "d" * 64, TEST)


def newest_window(days):
    features, target = days
    return features[TEST.start : TEST.stop], target[TEST.start : TEST.stop]


def test_first_model_becomes_champion(tmp_path: Path, store: ArtifactStore, days):
    registry = Registry(tmp_path / "models")
    assert registry.champion() is None
    good, _, stats = candidates(store, days)
    version = register(registry, good, stats)
    decision = promote(registry, version, *newest_window(days))
    assert decision.outcome == "first-champion"
    assert decision.champion_before is None and decision.champion_scores is None
    assert decision.evidence is None  # nothing to compare with
    assert registry.require_champion().version == version.version
    record = json.loads(Path(decision.record).read_text())
    assert record["outcome"] == "first-champion"
    assert record["challenger_scores"]["rmse"] == decision.challenger_scores.rmse


def test_worse_challenger_is_rejected_and_champion_unchanged(
    tmp_path: Path, store: ArtifactStore, days
):
    registry = Registry(tmp_path / "models")
    good, bad, stats = candidates(store, days)
    champion = register(registry, good, stats)
    promote(registry, champion, *newest_window(days))
    pointer_before = registry.pointer.read_bytes()

    # The bad model claims a perfect old score; the decision must not trust it.
    challenger = register(registry, bad, stats, claimed_rmse=0.0)
    decision = promote(registry, challenger, *newest_window(days))

    assert decision.outcome == "rejected"
    assert decision.champion_scores is not None
    assert decision.challenger_scores.rmse > decision.champion_scores.rmse
    assert decision.evidence is not None and decision.evidence.probability < 0.01
    assert decision.evidence.rmse_difference_high < 0
    assert registry.pointer.read_bytes() == pointer_before
    assert registry.require_champion().version == champion.version
    # Both versions are kept, and the decision is on record with both scores.
    assert registry.read_version(challenger.version).version == challenger.version
    record = json.loads(Path(decision.record).read_text())
    assert record["champion_scores"]["rmse"] == decision.champion_scores.rmse
    assert record["champion_after"] == champion.version


def test_better_challenger_is_promoted_on_the_rescored_window(
    tmp_path: Path, store: ArtifactStore, days
):
    registry = Registry(tmp_path / "models")
    good, bad, stats = candidates(store, days)
    # The old champion claims an excellent score from its own (older) test window.
    champion = register(registry, bad, stats, claimed_rmse=0.0)
    promote(registry, champion, *newest_window(days))

    challenger = register(registry, good, stats, claimed_rmse=500.0)
    decision = promote(registry, challenger, *newest_window(days))

    assert decision.outcome == "promoted"
    assert decision.champion_scores is not None
    assert decision.challenger_scores.rmse < decision.champion_scores.rmse
    # The bootstrap over the 30 newest days is sure of it, and the record keeps the evidence.
    evidence = decision.evidence
    assert evidence is not None and evidence.probability >= 0.9 and evidence.days == TEST.days
    assert evidence.rmse_difference == pytest.approx(
        decision.champion_scores.rmse - decision.challenger_scores.rmse
    )
    assert 0 < evidence.rmse_difference_low <= evidence.rmse_difference_high
    record = json.loads(Path(decision.record).read_text())
    assert record["evidence"]["probability"] == evidence.probability
    assert record["promotion"] == PromotionConfig().model_dump()
    assert registry.require_champion().version == challenger.version
    assert registry.read_version(champion.version).version == champion.version  # kept
    assert len(list(registry.decisions.glob("*.json"))) == 2


def shrunk_model(store: ArtifactStore, days, index: int) -> FileRef:
    """The least-squares fit with its weights shrunk and its bias moved (step ``index``)."""
    features, target = days
    stats = fit_statistics(features, target, TRAIN, FEATURE_COLUMNS)
    x = stats.normalise_features(features[TRAIN.start : TRAIN.stop])
    fitted = fit_linear(x, stats.normalise_target(target[TRAIN.start : TRAIN.stop])).ravel()
    bias = float(fitted[-1]) + 0.15 * index * (-1) ** index
    return save(store, linear_model(fitted[:-1] * (1.0 - 0.1 * index), bias))


def test_a_probably_better_challenger_needs_the_evidence_the_rule_asks_for(
    tmp_path: Path, store: ArtifactStore, days
):
    _, _, stats = candidates(store, days)
    # Two shrunk fits: the challenger's test RMSE is lower, but not on every resampled week.
    champion_model, challenger_model = shrunk_model(store, days, 5), shrunk_model(store, days, 3)
    decisions = {}
    for name, rule in (
        ("bootstrap", PromotionConfig()),
        ("point", PromotionConfig(rule="point")),
        ("lenient", PromotionConfig(min_probability=0.6)),
    ):
        registry = Registry(tmp_path / name)
        champion = register(registry, champion_model, stats)
        promote(registry, champion, *newest_window(days), rule=rule)
        challenger = register(registry, challenger_model, stats)
        decisions[name] = promote(registry, challenger, *newest_window(days), rule=rule)
        champion_after = registry.require_champion().version
        assert champion_after == decisions[name].champion_after
    strict = decisions["bootstrap"]
    evidence = strict.evidence
    assert evidence is not None and strict.champion_scores is not None
    assert strict.challenger_scores.rmse < strict.champion_scores.rmse
    assert 0.6 <= evidence.probability < 0.9
    assert evidence.rmse_difference_low < 0 < evidence.rmse_difference
    # The default rule keeps the champion; the point rule and a lower bar promote.
    assert strict.outcome == "rejected" and "below the required 0.9" in strict.reason
    assert decisions["point"].outcome == "promoted"
    assert decisions["lenient"].outcome == "promoted"
    # Every rule decides on the same evidence, recorded in each decision.
    assert decisions["point"].evidence == decisions["lenient"].evidence == evidence

    # The promotion artifact shows the estimate, the interval and the probability.
    markdown = decision_markdown(strict)
    assert f"P(challenger better) = **{evidence.probability:.3f}**" in markdown
    assert "90% interval" in markdown
    interval = f"{evidence.rmse_difference_low:+.1f} .. {evidence.rmse_difference_high:+.1f}"
    assert f"| RMSE difference (bikes) | {evidence.rmse_difference:+.1f} | {interval} |" in (
        markdown
    )
    assert "7-day blocks" in markdown and f"{PromotionConfig().resamples:,} resamples" in markdown


def test_point_rule_margin_keeps_a_champion_beaten_by_less(
    tmp_path: Path, store: ArtifactStore, days
):
    good, bad, stats = candidates(store, days)
    registry = Registry(tmp_path / "models")
    champion = register(registry, bad, stats)
    promote(registry, champion, *newest_window(days))
    challenger = register(registry, good, stats)
    gain = score_version(registry, champion, *newest_window(days)).rmse - (
        score_version(registry, challenger, *newest_window(days)).rmse
    )
    rule = PromotionConfig(rule="point", min_rmse_gain=gain + 1.0)
    decision = promote(registry, challenger, *newest_window(days), rule=rule)
    assert decision.outcome == "rejected" and "by more than" in decision.reason
    assert registry.require_champion().version == champion.version


def test_crash_between_model_and_pointer_keeps_old_champion_valid(
    tmp_path: Path, store: ArtifactStore, days, monkeypatch: pytest.MonkeyPatch
):
    registry = Registry(tmp_path / "models")
    good, bad, stats = candidates(store, days)
    champion = register(registry, bad, stats)
    promote(registry, champion, *newest_window(days))
    pointer_before = registry.pointer.read_bytes()

    def crash(self, pointer):
        # What a kill -9 in the middle of the swap leaves: a half-written temporary sibling.
        (self.root / ".champion.json.deadbeef.tmp").write_text('{"version": "2026')
        raise SystemExit("worker killed before the pointer moved")

    challenger = register(registry, good, stats)
    monkeypatch.setattr(Registry, "write_pointer", crash)
    with pytest.raises(SystemExit):
        promote(registry, challenger, *newest_window(days))
    monkeypatch.undo()

    # The old champion is still the champion, whole and usable.
    assert registry.pointer.read_bytes() == pointer_before
    after_crash = Registry(tmp_path / "models")
    assert after_crash.require_champion().version == champion.version
    features, target = newest_window(days)
    assert np.isfinite(
        score_version(after_crash, after_crash.require_champion(), features, target).rmse
    )
    # The next run promotes normally.
    assert promote(after_crash, challenger, features, target).outcome == "promoted"
    assert after_crash.require_champion().version == challenger.version


def test_failed_registration_leaves_no_version_and_no_pointer(
    tmp_path: Path, store: ArtifactStore, days
):
    registry = Registry(tmp_path / "models")
    good, _, stats = candidates(store, days)
    Path(good.path).write_bytes(b"not a keras file")  # altered after training
    with pytest.raises(ArtifactError, match="altered"):
        register(registry, good, stats)
    assert list(registry.versions.iterdir()) == []
    assert registry.champion() is None


def test_same_model_twice_is_one_version_and_rejected(tmp_path: Path, store: ArtifactStore, days):
    registry = Registry(tmp_path / "models")
    good, _, stats = candidates(store, days)
    first = register(registry, good, stats)
    promote(registry, first, *newest_window(days))
    again = register(registry, good, stats)
    assert again.version == first.version
    assert promote(registry, again, *newest_window(days)).outcome == "rejected"
    assert len(list(registry.versions.iterdir())) == 1


def test_altered_champion_model_is_reported_not_used(tmp_path: Path, store: ArtifactStore, days):
    registry = Registry(tmp_path / "models")
    good, _, stats = candidates(store, days)
    version = register(registry, good, stats)
    promote(registry, version, *newest_window(days))
    model = registry.version_dir(version.version) / MODEL_FILE
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match=str(model)):
        registry.require_champion()


def test_empty_registry_has_no_champion(tmp_path: Path):
    with pytest.raises(NoChampionError, match="no champion yet"):
        Registry(tmp_path / "nothing").require_champion()


def test_registry_root_that_is_a_file_is_refused(tmp_path: Path, store: ArtifactStore, days):
    root = tmp_path / "models"
    root.write_text("oops")
    good, _, stats = candidates(store, days)
    with pytest.raises(ArtifactError, match="not a folder"):
        register(Registry(root), good, stats)


def test_cached_rerun_of_the_champion_reuses_its_recorded_scores(
    tmp_path: Path, store: ArtifactStore, days
):
    registry = Registry(tmp_path / "models")
    good, _, stats = candidates(store, days)
    first = register(registry, good, stats)
    scores = promote(registry, first, *newest_window(days)).challenger_scores
    # What publish records for a run: the test scores of this very window.
    metrics = {f"test_{name}": value for name, value in scores.model_dump().items()}
    registry = Registry(tmp_path / "again")
    version = registry.register(good, stats, metrics, "d" * 64, TEST)
    promote(registry, version, *newest_window(days))
    rerun = registry.register(good, stats, metrics, "d" * 64, TEST)
    # No rows to score: the decision comes from the recorded scores alone.
    decision = promote(registry, rerun, np.empty((0, 11)), np.empty((0, 1)))
    assert decision.outcome == "rejected"
    assert decision.challenger_scores == decision.champion_scores == scores


def test_model_with_other_inputs_never_replaces_the_champion(
    tmp_path: Path, store: ArtifactStore, days
):
    registry = Registry(tmp_path / "models")
    good, _, stats = candidates(store, days)
    champion = register(registry, good, stats)
    promote(registry, champion, *newest_window(days))
    # An hourly-style model: one more input column (hr) than the daily champion.
    features, target = days
    wider = np.hstack([features, np.arange(len(features)).reshape(-1, 1) % 24])
    names = (*FEATURE_COLUMNS, "hr")
    hourly_stats = fit_statistics(wider, target, TRAIN, names)
    model = keras.Sequential([keras.Input(shape=(len(names),)), layers.Dense(1)])
    challenger = register(
        registry, save(store, model), store.put_json(hourly_stats.model_dump(mode="json"))
    )
    decision = promote(
        registry, challenger, wider[TEST.start : TEST.stop], target[TEST.start : TEST.stop]
    )
    assert decision.outcome == "rejected" and "other input columns" in decision.reason
    assert registry.require_champion().version == champion.version


def test_station_model_is_scored_with_station_ids_and_never_replaces_one_without(
    tmp_path: Path, store: ArtifactStore, days
):
    from schemas.config import ModelConfig
    from tasks.models.zoo import build_model
    from tasks.prepare.encode import StationVocabulary

    features, target = days
    stats = fit_statistics(features, target, TRAIN, FEATURE_COLUMNS).model_copy(
        update={"stations": StationVocabulary(ids=(31000, 31001))}
    )
    station_model = save(store, build_model(ModelConfig(), len(FEATURE_COLUMNS), station_rows=3))
    station_stats = store.put_json(stats.model_dump(mode="json"))
    ids = np.where(np.arange(TEST.days) % 2, 31001, 31005)  # 31005: a station it never saw

    alone = Registry(tmp_path / "alone")
    version = register(alone, station_model, station_stats)
    with pytest.raises(ValueError, match="takes a station input"):
        score_version(alone, version, *newest_window(days))
    decision = promote(alone, version, *newest_window(days), ids)
    assert decision.outcome == "first-champion"
    assert np.isfinite(decision.challenger_scores.rmse)

    # Batch prediction would suddenly need a station column: the champion stays.
    registry = Registry(tmp_path / "models")
    good, _, plain_stats = candidates(store, days)
    champion = register(registry, good, plain_stats)
    promote(registry, champion, *newest_window(days))
    challenger = register(registry, station_model, station_stats)
    decision = promote(registry, challenger, *newest_window(days), ids)
    assert decision.outcome == "rejected" and "(11 + station vs 11)" in decision.reason
    assert registry.require_champion().version == champion.version


def test_challenger_with_holiday_windows_competes_on_the_same_raw_rows(
    tmp_path: Path, store: ArtifactStore, days
):
    from tasks.prepare.encode import fit_encoding

    registry = Registry(tmp_path / "models")
    _, bad, stats = candidates(store, days)
    champion = register(registry, bad, stats)
    features, target = days
    dates = make_day_frame(200, seed=5)["dteday"].to_numpy().astype("datetime64[D]")
    promote_rows = (
        features[TEST.start : TEST.stop],
        target[TEST.start : TEST.stop],
        None,
        dates[TEST.start : TEST.stop],
    )
    promote(registry, champion, *promote_rows)
    # Same raw columns, another encoding: the challenger adds holiday-window columns.
    encoding = fit_encoding("ordinal", FEATURE_COLUMNS, "us-federal", 3, dates[:150])
    encoded = encoding.encode(features, dates)
    holiday_stats = fit_statistics(encoded, target, TRAIN, FEATURE_COLUMNS, encoding)
    x = holiday_stats.normalise_features(encoded[TRAIN.start : TRAIN.stop])
    y = holiday_stats.normalise_target(target[TRAIN.start : TRAIN.stop])
    fitted = fit_linear(x, y).ravel()
    model = keras.Sequential([keras.Input(shape=(encoded.shape[1],)), layers.Dense(1)])
    model.layers[-1].set_weights([fitted[:-1].reshape(-1, 1).astype("float32"), fitted[-1:]])
    challenger = register(
        registry, save(store, model), store.put_json(holiday_stats.model_dump(mode="json"))
    )
    decision = promote(registry, challenger, *promote_rows)
    assert decision.champion_scores is not None, decision.reason
    assert decision.outcome == "promoted", decision.reason
    # Scoring it without the dates its encoding needs is refused, not guessed.
    with pytest.raises(ValueError, match="one date per row"):
        score_version(
            registry, challenger, features[TEST.start : TEST.stop], target[TEST.start : TEST.stop]
        )
