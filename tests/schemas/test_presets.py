"""Presets and zoo entries fill only the fields not given; a given value always wins."""

import typing

import pytest

from flows.cli.common import build_config
from flows.cli.main import make_parser
from schemas.config import RetrainConfig, TrainingConfig
from schemas.config_presets import PRESETS_DIR, PresetName, preset_values


def cli_config(*flags: str) -> RetrainConfig:
    args = make_parser().parse_args(["run", *flags])
    return build_config(RetrainConfig, args.config_destinations, args)


def test_a_zoo_entry_keeps_an_epoch_count_typed_even_when_it_is_the_generic_default():
    # The case: --architecture dropout --epochs 15 trained 50 epochs.
    assert cli_config("--architecture", "dropout", "--epochs", "15").training.epochs == 15
    dropout = cli_config("--architecture", "dropout")
    assert dropout.training.epochs == 50 and dropout.model.dropout == 0.2


def test_the_forecaster_preset_fills_the_fields_not_given():
    config = cli_config("--preset", "forecaster")
    assert config.model.architecture == "two-input"
    assert (config.features.encoding, config.features.target_transform) == ("one-hot", "log")
    assert config.features.holidays == "us-federal"
    assert (config.training.optimizer, config.training.learning_rate) == ("adam", 0.001)
    assert (config.training.epochs, config.training.decay_rate) == (60, 0.95)
    assert (config.training.ensemble_size, config.training.refit) == (3, True)


def test_a_flag_wins_over_the_preset_even_at_the_generic_default():
    config = cli_config("--preset", "forecaster", "--epochs", "15", "--encoding", "ordinal")
    assert config.training.epochs == 15 and config.features.encoding == "ordinal"
    # Everything else still comes from the preset.
    assert config.training.optimizer == "adam" and config.training.ensemble_size == 3


def test_nested_models_count_only_their_own_set_fields():
    config = RetrainConfig(preset="forecaster", training=TrainingConfig(epochs=15))
    assert config.training.epochs == 15 and config.training.optimizer == "adam"


def test_the_seed_preset_is_the_generic_defaults():
    assert preset_values("seed") == {}
    assert cli_config("--preset", "seed") == RetrainConfig() == cli_config()
    assert RetrainConfig().training.ensemble_size == 1 and not RetrainConfig().training.refit


def test_every_preset_name_has_a_file_and_every_file_a_name():
    files = {path.stem for path in PRESETS_DIR.glob("*.yaml")}
    assert files == set(typing.get_args(PresetName))
    for name in files:
        RetrainConfig.model_validate(preset_values(name))  # every preset field exists


def test_the_ui_form_sends_every_field_and_the_preset_fills_those_at_generic_defaults():
    # The Prefect form submits the whole config; there "not given" = "left at the default".
    form = RetrainConfig().model_dump(mode="json")
    form["preset"] = "forecaster"
    form["training"]["batch_size"] = 8  # one field edited on the form
    config = RetrainConfig.model_validate(form)
    assert config.model.architecture == "two-input" and config.training.epochs == 60
    assert config.training.batch_size == 8
    # Without a preset, a full form is exactly what it shows.
    plain = RetrainConfig.model_validate(RetrainConfig().model_dump(mode="json"))
    assert plain == RetrainConfig()


@pytest.mark.parametrize(
    "flags",
    [(), ("--preset", "forecaster"), ("--preset", "forecaster", "--epochs", "40")],
)
def test_a_resolved_config_validates_to_itself_again(flags: tuple[str, ...]):
    config = cli_config(*flags)
    # The given fields (what Prefect records of a run started in Python) and a full dump
    # (what a deployment run or the form sends) both give the same config back.
    assert RetrainConfig.model_validate(config.model_dump(exclude_unset=True)) == config
    assert RetrainConfig.model_validate(config.model_dump(mode="json")) == config
