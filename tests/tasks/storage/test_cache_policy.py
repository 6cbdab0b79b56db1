from pathlib import Path

import anyio

from tasks.storage.cache_policy import FlockLockManager


def test_the_async_forms_take_and_wait_for_the_same_flock(tmp_path: Path):
    holder, other = FlockLockManager(tmp_path), FlockLockManager(tmp_path)

    async def scenario() -> None:
        assert await holder.aacquire_lock("key", "first", acquire_timeout=5)
        # Another open file of the same lock is refused while the first holds it.
        assert not await other.aacquire_lock("key", "second", acquire_timeout=0.1)
        assert not await other.await_for_lock("key", timeout=0.1)
        holder.release_lock("key", "first")
        assert await other.await_for_lock("key", timeout=5)
        assert await other.aacquire_lock("key", "second", hold_timeout=1)
        assert other.is_lock_holder("key", "second")
        other.release_lock("key", "second")

    anyio.run(scenario)
