"""The configs of the sweep and backtest flows: a base ``RetrainConfig`` and what varies."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from schemas.config import FrozenConfig, RetrainConfig
from schemas.paths import DataFolder, OutputFolder, check_holds_none


class SweepConfig(FrozenConfig):
    """A sweep: trials (and/or a grid) of config overrides on a base config, several seeds each."""

    base: RetrainConfig = Field(
        RetrainConfig(), description="The config every trial starts from (source, store, ...)."
    )
    trials: tuple[dict[str, Any], ...] = Field(
        (),
        max_length=1000,
        description="Trials as nested overrides of the base config, e.g. {model: {architecture: "
        "adam}}; an optional 'name' labels the trial. Empty: every zoo model.",
    )
    grid: dict[str, tuple[Any, ...]] = Field(
        {},
        description="Dotted field -> values (e.g. features.encoding: [ordinal, one-hot]); every "
        "combination is crossed with every trial.",
    )
    seeds: tuple[int, ...] = Field(
        (0, 1, 2), min_length=1, max_length=100, description="Training seeds of every trial."
    )
    max_parallel: int = Field(
        2, ge=1, le=256, description="Trainings running at once (one child process each)."
    )
    leaderboard_dir: OutputFolder = Field(
        "runs/sweep",
        min_length=1,
        max_length=4096,
        description="Folder that receives leaderboard.csv, trials.csv and validation_curves.png; "
        "replaced as a whole. An existing folder is replaced only if bikeflow made it.",
    )
    promote_winner: bool = Field(
        False, description="Hand the winning trial to the registry's promotion step."
    )
    gpus_per_trial: int = Field(
        0,
        ge=0,
        le=16,
        description="GPUs each training asks a Ray/Dask task runner for (0 = no request).",
    )

    @model_validator(mode="after")
    def _leaderboard_holds_no_store(self) -> SweepConfig:
        # Replacing the leaderboard folder would take the store, the registry or the source.
        base = self.base
        others = {"store_root": base.store_root, "registry_root": base.registry_root}
        check_holds_none("leaderboard_dir", self.leaderboard_dir, others, base.source)
        return self


class BacktestConfig(FrozenConfig):
    """A backtest: the nightly retrain job replayed over history, origin by origin."""

    base: RetrainConfig = Field(
        RetrainConfig(), description="The retrain config every origin trains with."
    )
    start_date: str = Field(
        "2012-01-01",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="First origin (YYYY-MM-DD): its model trains on the rows before it.",
    )
    every_days: int = Field(
        28,
        ge=1,
        le=366,
        description="Days between origins; each origin's champion is scored on the next "
        "every_days days.",
    )
    end_date: str = Field(
        "",
        pattern=r"^(\d{4}-\d{2}-\d{2})?$",
        description="Last day a window may cover (YYYY-MM-DD); empty: the data's last day.",
    )
    max_parallel: int = Field(
        2,
        ge=1,
        le=256,
        description="Trainings at once across all origins and ensemble members (one child "
        "process each).",
    )
    backtest_dir: DataFolder = Field(
        "runs/backtest",
        min_length=1,
        max_length=4096,
        description="Folder of the backtest's report (report/) and of its own model "
        "registries (registries/); the real registry is never touched.",
    )
