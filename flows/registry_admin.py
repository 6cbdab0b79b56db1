"""The registry-admin flow: roll back, pin, unpin or promote by hand from the Prefect UI.

The same operations as ``bikeflow models`` (tasks/promotion/operations.py), for a team that
operates through deployments: the ``registry-admin`` deployment in prefect.yaml. Each run
posts its decision as the ``registry-decision`` artifact.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel, ConfigDict, Field

from schemas.paths import DataFolder
from tasks.error_logs import install_user_error_filter
from tasks.promotion import operations
from tasks.promotion.registry import Decision, Registry
from tasks.promotion.report import decision_markdown

install_user_error_filter()


class RegistryAdminConfig(BaseModel):
    """One operation on the model registry, as the UI's run form shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: Literal["rollback", "pin", "unpin", "promote"] = Field(
        "rollback",
        description="rollback: to the previous champion (or to version); pin: make version "
        "champion and keep it; unpin: lift the pin; promote: make version champion by hand.",
    )
    version: str | None = Field(
        None, description="The version to pin or promote (rollback: where to go, optional)."
    )
    reason: str = Field("", max_length=2000, description="Why; kept in the decision record.")
    registry_root: DataFolder = Field(
        "models", min_length=1, max_length=4096, description="Root of the model registry."
    )


def _run(config: RegistryAdminConfig, registry: Registry) -> Decision:
    if config.operation == "rollback":
        return operations.rollback(registry, config.version, config.reason)
    if config.operation == "unpin":
        return operations.unpin(registry, config.reason)
    if config.version is None:
        raise operations.RegistryError(f"{config.operation} needs a version")
    if config.operation == "pin":
        return operations.pin(registry, config.version, config.reason)
    return operations.promote_by_hand(registry, config.version, config.reason)


@flow(name="registry-admin", result_serializer="json")
def registry_admin(config: RegistryAdminConfig = RegistryAdminConfig()) -> Decision:  # noqa: B008
    """Run one registry operation and post its decision on the run page."""
    decision = _run(config, Registry(config.registry_root))
    create_markdown_artifact(
        key="registry-decision",
        markdown=decision_markdown(decision),
        description=f"Registry {config.operation}",
    )
    return decision
