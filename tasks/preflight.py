"""Preflight: refuse a path the run may not write before any work.

The config types check every path they are given, but a field left at its default is not
validated by pydantic, and a folder can appear between validation and the run. So each flow
starts by validating its whole config again, defaults included, on the machine that runs it.
A source is checked on that machine too, by the step that reads it (ingest, the batch
prediction), before its first byte: checking it here as well would only repeat that.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ValidationError

from schemas.config import PredictConfig, RetrainConfig
from schemas.errors import BikeflowError
from schemas.flow_configs import SweepConfig
from schemas.paths import OUTPUT_NOT_WRITTEN, check_path_fields
from schemas.sources import CHECKED_WHERE_READ


def recheck(config: BaseModel) -> None:
    """Validate every field of a config again; raise the refusal a path meets."""
    # A sweep writes its leaderboard folder, never its base config's output folder.
    unwritten = OUTPUT_NOT_WRITTEN["unwritten"] if isinstance(config, SweepConfig) else ()
    context = {**CHECKED_WHERE_READ, "unwritten": unwritten}
    try:
        type(config).model_validate(config.model_dump(), context=context)
    except ValidationError as error:
        for detail in error.errors():
            cause = detail.get("ctx", {}).get("error")
            if isinstance(cause, BikeflowError):
                raise type(cause)(str(cause)) from None
        raise
    check_path_fields(config, unwritten)


@task(name="check_paths", cache_policy=NO_CACHE, persist_result=False)
def check_paths(config: RetrainConfig | SweepConfig | PredictConfig) -> None:
    """Refuse, before anything is read or trained, the paths the run may not write."""
    recheck(config)
