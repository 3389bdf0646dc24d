"""What a killed run leaves behind, found for ``status`` and cleared by the next publish.

- **scratch**: ``paths.state/tmp/<step>-<date>`` folders no running step holds (each step
  holds its date's lock while its folder exists; see pipeline/workspace.py);
- **temporaries**: half-written files in the published folder (``.*.tmp``) and serving
  files prepared but never switched in (``.<serving file>.*``);
- **orphans**: files under ``snapshots/`` that the manifest names neither as live nor as
  retired (placed by a publish killed before its commit, or left after it);
- **targets_behind**: targets not serving the manifest's publish (killed between the
  commit and their switch); the next publish brings them to it first.

Finding takes no lock a publish waits for: while a publish runs (``publish_running``), its
files in the published folder are work in progress and are not listed.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import locks
from pipeline.config import Settings
from pipeline.publish.catalog import SNAPSHOTS, load_catalog
from pipeline.publish.serving import serving_identity, serving_leftovers
from pipeline.workspace import stale_scratch

log = logging.getLogger(__name__)

_LOCK = "publish.lock"


@dataclass(frozen=True)
class Leftovers:
    """What killed runs left; empty when nothing is."""

    scratch: list[Path] = field(default_factory=list)
    temporaries: list[Path] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)
    targets_behind: list[str] = field(default_factory=list)
    publish_running: bool = False

    @property
    def paths(self) -> list[Path]:
        return [*self.scratch, *self.temporaries, *self.orphans]

    def __bool__(self) -> bool:
        return bool(self.paths or self.targets_behind)


def find_leftovers(settings: Settings, check_postgres: bool = True) -> Leftovers:
    """What killed runs left (read-only; safe while the pipeline runs).

    ``check_postgres``: also ask PostgreSQL (when configured) which publish it serves; an
    unreachable server is reported in ``targets_behind``.
    """
    scratch = stale_scratch(settings.paths.state)
    with _try_publish_lock(settings.paths.state) as free:
        if not free:
            return Leftovers(scratch=scratch, publish_running=True)
        temporaries, orphans = _temporaries_and_orphans(settings)
        return Leftovers(
            scratch=scratch,
            temporaries=temporaries,
            orphans=orphans,
            targets_behind=_targets_behind(settings, check_postgres),
        )


def clear_leftovers(settings: Settings) -> Leftovers:
    """Remove the scratch folders, temporaries and orphans killed runs left; what was
    removed. Call it holding ``publish_lock`` (a publish does, first)."""
    scratch = stale_scratch(settings.paths.state, remove=True)
    temporaries, orphans = _temporaries_and_orphans(settings)
    found = Leftovers(scratch=scratch, temporaries=temporaries, orphans=orphans)
    for path in [*found.temporaries, *found.orphans]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if found.paths:
        log.info("removed %d leftovers of killed runs", len(found.paths))
    return found


@contextmanager
def publish_lock(state: Path) -> Iterator[None]:
    """One publish at a time, whatever the date: they share the catalog and the targets."""
    with locks.held(state / "locks" / _LOCK):
        yield


@contextmanager
def _try_publish_lock(state: Path) -> Iterator[bool]:
    with locks.held_if_free(state / "locks" / _LOCK) as free:
        yield free


def _temporaries_and_orphans(settings: Settings) -> tuple[list[Path], list[Path]]:
    """Half-written files and serving files never switched in; files under snapshots/
    the catalog names neither as live nor as retired. One walk of the published folder
    (it holds every kept version of every table, and each publish lists it), with
    relative paths as strings, the catalog's spelling."""
    published = settings.paths.published
    if not published.is_dir():
        return [], []
    catalog = load_catalog(published)
    named = {entry.file for dates in catalog.tables.values() for entry in dates.values()}
    named.update(file for file, _ in catalog.retired)
    temporaries = set(serving_leftovers(published, settings.publish))
    orphans = []
    for folder, _, files in os.walk(published):
        prefix = os.path.relpath(folder, published).replace(os.sep, "/")
        for name in files:
            relative = name if prefix == "." else f"{prefix}/{name}"
            if name.endswith(".tmp"):
                if name.startswith("."):
                    temporaries.add(published / relative)
            elif relative.startswith(f"{SNAPSHOTS}/") and relative not in named:
                orphans.append(published / relative)
    return sorted(temporaries), sorted(orphans)


def _targets_behind(settings: Settings, check_postgres: bool) -> list[str]:
    published = settings.paths.published
    catalog = load_catalog(published)
    if catalog.as_of_date is None:
        return []
    behind = []
    if serving_identity(published, settings.publish) != catalog.identity:
        behind.append(settings.publish.serving_file)
    if check_postgres and settings.publish.postgres_url.get_secret_value():
        import psycopg

        from pipeline.publish.postgres import postgres_identity

        try:
            if postgres_identity(settings.publish) != catalog.identity:
                behind.append("postgresql")
        except psycopg.Error as error:
            behind.append(f"postgresql (not reachable: {error})".strip())
    return behind
