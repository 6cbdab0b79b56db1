"""The registry-admin flow (the UI's path to rollback and pin) runs the registry's operations."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.registry_admin import RegistryAdminConfig, registry_admin
from tasks.promotion.operations import RegistryError
from tasks.promotion.registry import Registry
from tests.tasks.promotion.test_operations import two_versions
from tests.tasks.promotion.test_registry import days, store  # noqa: F401 (fixtures)


def test_pin_and_rollback_through_the_flow(tmp_path: Path, store, days):  # noqa: F811
    registry, first, second = two_versions(tmp_path, store, days)
    root = str(registry.root)
    pinned = registry_admin(
        RegistryAdminConfig(
            operation="pin", version=second.version, reason="incident 7", registry_root=root
        )
    )
    assert pinned.outcome == "pinned" and Registry(root).champion_pointer().pinned
    state = registry_admin(RegistryAdminConfig(registry_root=root), return_state=True)
    assert state.is_failed()  # a rollback while pinned is refused
    assert isinstance(state.result(raise_on_failure=False), RegistryError)
    registry_admin(RegistryAdminConfig(operation="unpin", registry_root=root))
    back = registry_admin(
        RegistryAdminConfig(operation="rollback", reason="bad night", registry_root=root)
    )
    assert back.outcome == "rolled-back" and back.champion_after == first.version
    assert Registry(root).require_champion().version == first.version
    with pytest.raises(RegistryError, match="needs a version"):
        registry_admin(RegistryAdminConfig(operation="pin", registry_root=root))
