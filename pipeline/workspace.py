"""Per-step, per-date locks and scratch folders under ``paths.state``."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path

from pipeline import locks

_STEP = re.compile(r"^[a-z][a-z0-9_-]*$")


def _name(step: str, day: date) -> str:
    if not _STEP.match(step):
        raise ValueError(f"not a step name: {step!r}")
    return f"{step}-{day.isoformat()}"


@contextmanager
def date_lock(state_dir: Path, step: str, day: date) -> Iterator[None]:
    """One writer per step and date: a second run of the same date waits for the first."""
    with locks.held(state_dir / "locks" / f"{_name(step, day)}.lock"):
        yield


@contextmanager
def scratch_dir(state_dir: Path, step: str, day: date) -> Iterator[Path]:
    """The step's scratch folder for a date (transcoded files, DuckDB spill).

    Take it under the date's lock. One name per step and date, so what a killed run left
    behind is removed by the next run.
    """
    directory = state_dir / "tmp" / _name(step, day)
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def workspace(state_dir: Path, step: str, day: date) -> Iterator[Path]:
    """The date's lock for the step, and its scratch folder."""
    with date_lock(state_dir, step, day), scratch_dir(state_dir, step, day) as scratch:
        yield scratch


def stale_scratch(state_dir: Path, remove: bool = False) -> list[Path]:
    """Scratch folders no running step holds (a killed run's); removed if ``remove``.

    A folder is in use while its step holds the date's lock, so a folder whose lock can
    be taken without waiting is stale; it is removed holding that lock.
    """
    root = state_dir / "tmp"
    if not root.is_dir():
        return []
    stale = []
    for directory in sorted(root.iterdir()):
        name = directory.name
        with suppress(ValueError):
            if _name(name[:-11], date.fromisoformat(name[-10:])) != name:
                continue
            with locks.held_if_free(state_dir / "locks" / f"{name}.lock") as free:
                if not free:
                    continue
                stale.append(directory)
                if remove:
                    shutil.rmtree(directory, ignore_errors=True)
    return stale
