import csv
from pathlib import Path

import pytest

from flows.cli.main import main
from flows.retrain import retrain
from flows.sweep import sweep
from schemas.config import RetrainConfig, TrainingConfig
from schemas.flow_configs import SweepConfig
from tasks.sweep.trials import expand_trials, trials_for_stations

pytestmark = pytest.mark.slow

UPSTREAM = ("ingest_source", "validate_records", "split_by_date", "normalise_features")


def test_sweep_ranks_on_validation_and_reuses_the_cached_upstream_steps(
    small_config: RetrainConfig, tmp_path: Path
):
    from tests.flows.test_retrain import task_states

    assert retrain(small_config, return_state=True).is_completed()  # fills the cache
    base = small_config.model_copy(
        update={"training": TrainingConfig(epochs=2, batch_size=16, learning_rate=0.05)}
    )
    config = SweepConfig(
        base=base,
        trials=(
            {"name": "seed-mlp", "model": {"architecture": "seed-mlp"}},
            {"name": "tiny", "model": {"hidden_units": 2, "hidden_layers": 1}},
        ),
        seeds=(0, 1),
        leaderboard_dir=str(tmp_path / "board"),
    )
    state = sweep(config, return_state=True)
    assert state.is_completed()
    states = task_states(state)
    assert {step: states[step] for step in UPSTREAM} == dict.fromkeys(UPSTREAM, "Cached")

    board = state.result()
    assert len(board.trials) == 4 and {row.seeds for row in board.rows} == {2}
    means = [row.val_rmse_mean for row in board.rows]
    assert means == sorted(means) and board.winner == board.rows[0].label
    for row in board.rows:
        mine = [t.val_rmse for t in board.trials if t.label == row.label]
        assert row.val_rmse_mean == pytest.approx(sum(mine) / len(mine))
    # Two seeds of one config really are two different trainings.
    seeds = [t for t in board.trials if t.label == "seed-mlp"]
    assert seeds[0].val_curve != seeds[1].val_curve

    folder = Path(board.output_dir)
    rows = list(csv.DictReader((folder / "leaderboard.csv").open()))
    assert [r["label"] for r in rows] == [row.label for row in board.rows]
    assert len(list(csv.DictReader((folder / "trials.csv").open()))) == 4
    assert (folder / "validation_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_expand_trials_crosses_grid_and_seeds_and_applies_zoo_entries():
    config = SweepConfig(
        trials=({"model": {"architecture": "dropout"}}, {"model": {"architecture": "adam"}}),
        grid={"features.encoding": ("ordinal", "one-hot")},
        seeds=(3, 4, 5),
    )
    trials = expand_trials(config)
    assert len(trials) == 2 * 2 * 3
    assert {t.seed for t in trials} == {3, 4, 5}
    dropout = [t for t in trials if t.config.model.architecture == "dropout"]
    assert all(t.config.model.dropout == 0.2 and t.config.training.epochs == 50 for t in dropout)
    assert {t.config.features.encoding for t in dropout} == {"ordinal", "one-hot"}
    assert len({t.label for t in trials}) == 4
    everything = expand_trials(SweepConfig(seeds=(0,)))
    assert [t.config.model.architecture for t in everything] == [
        "seed-mlp",
        "adam",
        "dropout",
        "leaky-relu",
        "two-input",
        "shared-weather",
        "tf-core",
    ]
    shared = everything[5].config
    assert shared.features.previous_weather and shared.features != everything[0].config.features
    # Hourly rows have no single "day before": the default list leaves shared-weather out.
    hourly = SweepConfig(seeds=(0,), base=RetrainConfig(granularity="hour"))
    assert "shared-weather" not in [t.config.model.architecture for t in expand_trials(hourly)]


def test_on_station_data_the_default_trials_leave_out_tf_core_and_listed_ones_stay():
    everything = expand_trials(SweepConfig(seeds=(0, 1)))
    kept = trials_for_stations(everything, defaulted=True)
    assert [t.config.model.architecture for t in kept] == [
        t.config.model.architecture for t in everything if t.config.model.architecture != "tf-core"
    ]
    assert len(kept) == len(everything) - 2
    # Asked for by name, tf-core stays and fails with its own clear error.
    listed = expand_trials(SweepConfig(trials=({"model": {"architecture": "tf-core"}},)))
    assert trials_for_stations(listed, defaulted=False) == listed


def test_sweep_cli_refuses_a_bad_sweep_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    bad = tmp_path / "sweep.yaml"
    bad.write_text("seeds: []\n")
    assert main(["sweep", "--sweep-file", str(bad)]) == 1
    assert "seeds" in capsys.readouterr().err
    assert main(["sweep", "--architectures", "seed-mlp,nope"]) == 1
