"""Files replaced atomically and durably, the one way every step writes them.

A file is written aside, to a hidden ``.<name>.<pid>.tmp`` beside its target (so the
rename stays on one file system), flushed to disk, renamed over the target, and then
the folder is flushed so the rename survives a power cut. A reader sees the old file or
the new one; a crash leaves one of them and at most a temporary, which
:func:`remove_stale_temporaries` (and the publish step's leftovers) clear.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMPORARY_GLOB = ".*.tmp"


def temporary_for(target: Path) -> Path:
    """The temporary a writer in this process uses for ``target``."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


@contextmanager
def replacing(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write ``target``'s new content to; when the block ends
    without an error, the temporary is flushed and renamed over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_for(target)
    try:
        yield temporary
        fsync_file(temporary)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_dir(target.parent)


def write_bytes(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data``."""
    with replacing(target) as temporary:
        temporary.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    """Replace ``target`` with ``text`` in UTF-8."""
    write_bytes(target, text.encode("utf-8"))


def copy_file(source: Path, target: Path) -> None:
    """Replace ``target`` with a copy of ``source`` (which may be on another file system)."""
    with replacing(target) as temporary:
        shutil.copyfile(source, temporary)


def remove_stale_temporaries(directory: Path) -> None:
    """Remove temporaries left in ``directory`` by a writer that was killed mid-write."""
    for leftover in directory.glob(TEMPORARY_GLOB):
        leftover.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
