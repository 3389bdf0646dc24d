"""Advisory file locks (``flock``), the one way steps keep out of each other's way.

A lock is released when its holder's file closes, so a killed process never leaves one
held: a lock that can be taken without waiting means its last holder is gone.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Hold the lock ``path`` (created if missing) until the block ends, waiting for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def held_if_free(path: Path) -> Iterator[bool]:
    """Hold the lock ``path`` if nobody holds it (True), without waiting; False if a
    process holds it. A lock file that does not exist is free (and is not created)."""
    if not path.is_file():
        yield True
        return
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
