from pathlib import Path

from benchmarks.preset import (
    CANDIDATES,
    ENSEMBLE,
    PRESET,
    PRESET_CANDIDATE,
    procedure_config,
)
from flows.cli.common import build_config
from flows.cli.main import make_parser
from schemas.config import RetrainConfig

PRESET_FILE = Path(__file__).parents[2] / "schemas" / "presets" / "forecaster.yaml"


def cli_config(*flags: str) -> RetrainConfig:
    args = make_parser().parse_args(["run", *flags])
    return build_config(RetrainConfig, args.config_destinations, args)


def test_the_shipped_preset_is_the_benchmarked_candidate_as_a_refitted_ensemble():
    candidate = CANDIDATES[PRESET_CANDIDATE]
    expected = RetrainConfig.model_validate(
        {**candidate, "training": {**candidate["training"], **ENSEMBLE}}
    )
    shipped = RetrainConfig.model_validate(PRESET)
    assert (shipped.features, shipped.model, shipped.training) == (
        expected.features,
        expected.model,
        expected.training,
    )
    assert shipped.training.ensemble_size == 3 and shipped.training.refit


def test_the_benchmark_runs_exactly_what_bikeflow_run_preset_forecaster_runs(tmp_path: Path):
    data = tmp_path / "day.csv"
    benchmark = procedure_config(data, 7, tmp_path)
    user = cli_config(
        "--preset",
        "forecaster",
        "--seed",
        "7",
        "--source",
        str(data),
        "--store-root",
        benchmark.store_root,
        "--output-dir",
        benchmark.output_dir,
        "--registry-root",
        benchmark.registry_root,
    )
    assert benchmark == user
    assert benchmark.model.architecture == "two-input" and benchmark.training.seed == 7


def test_the_preset_file_still_works_as_a_config_file_and_flags_override_it():
    from_file = cli_config("--config", str(PRESET_FILE), "--seed", "7")
    preset = cli_config("--preset", "forecaster", "--seed", "7")
    assert (from_file.features, from_file.model) == (preset.features, preset.model)
    assert from_file.training == preset.training
    assert cli_config("--preset", "forecaster", "--ensemble-size", "1").training.ensemble_size == 1
