"""What ``bikeflow gc`` keeps: its flags, and the form of the ``gc-weekly`` deployment."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.paths import DataFolder


class GcConfig(BaseModel):
    """Where ``bikeflow gc`` collects and what it keeps (the flags and the deployment's form)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store_root: DataFolder = Field(
        "data/artifacts", min_length=1, description="The artifact store to collect."
    )
    registry_root: DataFolder = Field(
        "models", min_length=1, description="The model registry whose old versions go."
    )
    keep_runs: int = Field(
        3, ge=0, le=10_000, description="Keep what the last K runs' cache records need."
    )
    keep_versions: int = Field(
        5,
        ge=0,
        le=10_000,
        description="Keep the newest N registry versions (the champion, the previous one and "
        "pinned versions are always kept).",
    )
    grace_hours: float = Field(
        24.0, ge=0.0, le=100_000.0, description="Keep anything younger than this."
    )
