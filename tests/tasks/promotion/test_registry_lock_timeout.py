"""The registry's promotion lock waits at most promotion.lock_timeout_minutes, then says which
lock file is held."""

from __future__ import annotations

import fcntl
import time
from pathlib import Path

import pytest

from schemas.config import PromotionConfig
from schemas.errors import RegistryLockTimeoutError
from tasks.promotion.registry import Registry


def test_a_held_lock_times_out_naming_the_lock_file(tmp_path: Path):
    registry = Registry(tmp_path / "models")
    registry.lock_timeout_minutes = 0.01  # 0.6 s
    with registry.locked():
        pass  # creates the folder and the lock file
    lock_file = registry.root / ".lock"
    # Another holder: a second open file, as another process would hold it (flock is per open).
    with open(lock_file, "a+b") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(RegistryLockTimeoutError) as raised, registry.locked():
            pass
        waited = time.monotonic() - started
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    assert 0.6 <= waited < 3.0
    message = str(raised.value)
    assert str(lock_file) in message and "promotion.lock_timeout_minutes" in message
    with registry.locked():  # freed: taken at once
        pass


def test_the_lock_waits_for_a_holder_that_lets_go(tmp_path: Path):
    import threading

    registry = Registry(tmp_path / "models")
    registry.lock_timeout_minutes = 0.5
    with registry.locked():
        pass
    with open(registry.root / ".lock", "a+b") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        threading.Timer(0.5, fcntl.flock, (other.fileno(), fcntl.LOCK_UN)).start()
        started = time.monotonic()
        with registry.locked():
            assert time.monotonic() - started >= 0.4


def test_the_default_lock_timeout_is_ten_minutes():
    assert PromotionConfig().lock_timeout_minutes == Registry.lock_timeout_minutes == 10.0
