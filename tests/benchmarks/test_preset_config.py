from pathlib import Path

from benchmarks.preset import CANDIDATES, PRESET, PRESET_CANDIDATE
from flows.cli import build_config, make_parser
from schemas.config import RetrainConfig

PRESET_FILE = Path(__file__).parents[2] / "schemas" / "presets" / "forecaster.yaml"


def test_preset_file_is_the_benchmarked_preset_and_flags_still_override_it():
    parser, destinations = make_parser()
    args = parser.parse_args(["run", "--config", str(PRESET_FILE), "--seed", "7"])
    config = build_config(RetrainConfig, destinations, args)
    expected = RetrainConfig.model_validate(CANDIDATES[PRESET_CANDIDATE])
    assert PRESET["config"] == CANDIDATES[PRESET_CANDIDATE]
    assert config.features == expected.features and config.model == expected.model
    assert config.training == expected.training.model_copy(update={"seed": 7})
    assert config.features.holidays == "us-federal" and config.model.architecture == "two-input"
