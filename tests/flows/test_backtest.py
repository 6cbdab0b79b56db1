"""The backtest replays retraining over history: on data whose regime changes halfway,
replacing the model every origin must beat keeping the first model forever."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.backtest import backtest
from schemas.config import PromotionConfig, RetrainConfig, SplitConfig, TrainingConfig
from schemas.flow_configs import BacktestConfig
from schemas.synthetic import make_day_frame, to_csv_bytes
from tasks.backtest.steps import POLICIES
from tasks.promotion.registry import Registry
from tests.flows.project_copy import task_run_states, task_states
from tests.flows.test_ensemble_jax import training_children

pytestmark = [pytest.mark.slow, pytest.mark.minutes(4)]


def regime_change(days: int, change: int):
    """Generated days whose demand falls to a fifth from day ``change`` on, whatever the weather."""
    frame = make_day_frame(days, seed=3)
    for column in ("casual", "registered"):
        frame.loc[change:, column] = frame.loc[change:, column] // 5
    frame["cnt"] = frame["casual"] + frame["registered"]
    return frame


def backtest_config(
    tmp_path: Path,
    frame,
    training: TrainingConfig,
    promotion: PromotionConfig = PromotionConfig(),  # noqa: B008
    **backtest: object,
) -> BacktestConfig:
    """A backtest of ``frame`` (written as the source) with every folder under ``tmp_path``."""
    source = tmp_path / "day.csv"
    source.write_bytes(to_csv_bytes(frame))
    base = RetrainConfig(
        source=str(source),
        store_root=str(tmp_path / "store"),
        output_dir=str(tmp_path / "out"),
        registry_root=str(tmp_path / "models"),
        split=SplitConfig(test_days=10),
        training=training,
        promotion=promotion,
    )
    return BacktestConfig.model_validate(
        {"base": base, "backtest_dir": str(tmp_path / "backtest"), **backtest}
    )


def test_always_replacing_beats_never_retraining_after_a_regime_change(tmp_path: Path):
    config = backtest_config(
        tmp_path,
        regime_change(250, 130),
        TrainingConfig(epochs=8, batch_size=16, learning_rate=0.05),
        start_date="2011-06-09",  # day 160: 30 days after the change
        every_days=30,
    )
    state = backtest(config, return_state=True)
    report = state.result()
    assert [r.origin.date for r in report.origins] == ["2011-06-09", "2011-07-09", "2011-08-08"]
    assert all(r.origin.stop - r.origin.start == 30 for r in report.origins)
    assert report.overall["never"].rmse > report.overall["always"].rmse
    assert report.changes["always"] == 2 and report.changes["never"] == 0
    assert report.changes["linear"] == 2
    assert report.origins[0].outcome == "first-champion"
    assert set(report.overall) == set(POLICIES)
    report_dir = Path(report.report_dir)
    assert sorted(p.name for p in report_dir.iterdir()) == [
        ".bikeflow-output",  # the ownership marker: a rerun may replace this folder
        "backtest.csv",
        "backtest.json",
        "backtest.png",
    ]
    assert len((report_dir / "backtest.csv").read_text().splitlines()) == 4
    assert Path(report.registry_root).is_relative_to(tmp_path / "backtest")
    assert not (tmp_path / "models").exists()  # the real registry is never touched

    rerun = backtest(config, return_state=True)
    states = task_states(str(rerun.state_details.flow_run_id))
    trainings = {name: s for name, s in states.items() if name.startswith("train_model")}
    assert trainings and set(trainings.values()) == {"Cached"}
    again = rerun.result()
    assert again.registry_root != report.registry_root  # a fresh registry per run
    assert [r.scores["always"].rmse for r in again.origins] == pytest.approx(
        [r.scores["always"].rmse for r in report.origins]
    )


def test_backtest_command_refuses_a_bad_flag(capsys: pytest.CaptureFixture[str]):
    from flows.cli.main import main

    assert main(["backtest", "--every-days", "0"]) == 1
    assert "every_days" in capsys.readouterr().err


def test_every_origin_trains_the_configured_ensemble_and_promotes_by_its_rule(tmp_path: Path):
    config = backtest_config(
        tmp_path,
        regime_change(160, 400),  # no change inside the data: the rule alone decides
        # TensorFlow's shape, a child per member (the JAX test below: a group per origin).
        TrainingConfig(
            epochs=3,
            batch_size=32,
            learning_rate=0.05,
            ensemble_size=2,
            refit=True,
            backend="tensorflow",
        ),
        promotion=PromotionConfig(rule="point", min_rmse_gain=5.0),
        start_date="2011-05-01",
        every_days=20,
        end_date="2011-06-09",
    )
    state = backtest(config, return_state=True)
    report = state.result()
    assert [r.origin.date for r in report.origins] == ["2011-05-01", "2011-05-21"]
    runs = task_run_states(str(state.state_details.flow_run_id), ["assemble_forecaster"])
    # Two origins x two members, each trained and then refitted: eight trainings, two models.
    assert runs["train_model"] == ["Completed"] * 8
    assert runs["refit_data"] == ["Completed"] * 2
    assert runs["assemble_forecaster"] == ["Completed"] * 2
    registry = Registry(report.registry_root)
    for result in report.origins:
        version = registry.read_version(result.challenger)
        assert version.metrics["members"] == 2 and version.metrics["refit"] is True
    decisions = sorted((Path(report.registry_root) / "decisions").glob("*.json"))
    assert len(decisions) == 2
    rules = {json.loads(p.read_text())["promotion"]["rule"] for p in decisions}
    assert rules == {"point"}  # the base config's rule, not the registry's default


def test_on_jax_each_origins_members_and_refits_train_as_one_group(tmp_path: Path):
    training = TrainingConfig(
        epochs=3, batch_size=32, learning_rate=0.05, ensemble_size=2, refit=True, backend="jax"
    )
    config = backtest_config(
        tmp_path,
        regime_change(160, 400),
        training,
        start_date="2011-05-01",
        every_days=20,
        end_date="2011-06-09",
    )
    with training_children() as children:
        state = backtest(config, return_state=True)
    report = state.result()
    assert len(report.origins) == 2
    runs = task_run_states(str(state.state_details.flow_run_id), ["assemble_forecaster"])
    # Two origins, each one group for its members and one for their refits: four trainings,
    # in as many children as train at once (max_parallel), each kept for the next group.
    assert runs["train_member_group"] == ["Completed"] * 4
    assert 1 <= len(children) <= config.max_parallel
    assert "train_model" not in runs
    registry = Registry(report.registry_root)
    for result in report.origins:
        version = registry.read_version(result.challenger)
        assert version.metrics["members"] == 2 and version.metrics["refit"] is True
