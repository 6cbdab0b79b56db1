"""Whether a process holds an flock on a file: the cache-key locks, probed without waiting."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def flock_is_held(path: Path) -> bool:
    """Tell whether any process holds an exclusive flock on ``path`` (False when it is absent)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock too
    return False
