"""What a killed run leaves behind, found for ``status`` and cleared by the next publish.

- **scratch**: ``paths.state/tmp/<step>-<date>`` folders no running step holds (each step
  holds its date's lock while its folder exists; see pipeline/workspace.py);
- **temporaries**: half-written files in the published folder (``.*.tmp``) and serving
  files prepared but never switched in (``.<serving file>.*``);
- **orphans**: files under ``snapshots/`` that the manifest names neither as live nor as
  retired (placed by a publish killed before its commit). The next publish clears those
  in its own date's folders and in those of publishes killed on other dates; a file put
  anywhere else by hand is only listed (``status``);
- **targets_behind**: targets not serving the manifest's publish (killed between the
  commit and their switch); the next publish brings them to it first.

Finding takes no lock a publish waits for: while a publish runs (``publish_running``), its
files in the published folder are work in progress and are not listed.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipeline import locks
from pipeline.config import Settings
from pipeline.lake import AS_OF_KEY
from pipeline.publish.catalog import SNAPSHOTS, Catalog, load_catalog
from pipeline.publish.serving import serving_identity, serving_leftovers
from pipeline.workspace import stale_scratch

log = logging.getLogger(__name__)

_LOCK = "publish.lock"
PUBLISH_STEP = "publish"  # its scratch folders: publish-<date> (pipeline/workspace.py)


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
        temporaries, orphans = _temporaries_and_orphans(
            settings, load_catalog(settings.paths.published)
        )
        return Leftovers(
            scratch=scratch,
            temporaries=temporaries,
            orphans=orphans,
            targets_behind=_targets_behind(settings, check_postgres),
        )


def clear_leftovers(settings: Settings, day: date, catalog: Catalog) -> Leftovers:
    """Remove the scratch folders, temporaries and orphans killed runs left; what was
    removed. Call it holding ``publish_lock`` (a publish of ``day`` does, first, with
    the committed ``catalog``).

    Work grows with the day, not with the history: a publish places files only under
    its own date's snapshot folders (expired files are deleted before its commit, so
    an interrupted deletion leaves them named as retired), so only ``day``'s folders
    and those of publishes killed on other dates (their scratch folders,
    ``publish-<date>``, are still there) can hold orphans. The scratch folders are
    removed last, so a clear killed half-way is finished by the next one.
    """
    stale = stale_scratch(settings.paths.state)
    killed = {day}
    for directory in stale:
        if directory.name.startswith(f"{PUBLISH_STEP}-"):
            killed.add(date.fromisoformat(directory.name.removeprefix(f"{PUBLISH_STEP}-")))
    temporaries, orphans = _temporaries_and_orphans(settings, catalog, sorted(killed))
    for path in [*temporaries, *orphans]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    scratch = stale_scratch(settings.paths.state, remove=True)
    found = Leftovers(scratch=scratch, temporaries=temporaries, orphans=orphans)
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


def _temporaries_and_orphans(
    settings: Settings, catalog: Catalog, days: Sequence[date] | None = None
) -> tuple[list[Path], list[Path]]:
    """Half-written files and serving files never switched in; files under snapshots/
    the catalog names neither as live nor as retired. With ``days``, the snapshot
    folders of those dates only (a publish's clear); without, one walk of the whole
    published folder (``status``: it holds every kept version of every table). Paths
    are compared as relative strings, the catalog's spelling."""
    published = settings.paths.published
    if not published.is_dir():
        return [], []
    named = {entry.file for dates in catalog.tables.values() for entry in dates.values()}
    named.update(file for file, _ in catalog.retired)
    temporaries = set(serving_leftovers(published, settings.publish))
    orphans = []
    for folder, files in _published_files(published, days):
        for name in files:
            relative = name if not folder else f"{folder}/{name}"
            if name.endswith(".tmp"):
                if name.startswith("."):
                    temporaries.add(published / relative)
            elif relative.startswith(f"{SNAPSHOTS}/") and relative not in named:
                orphans.append(published / relative)
    return sorted(temporaries), sorted(orphans)


def _published_files(
    published: Path, days: Sequence[date] | None
) -> Iterator[tuple[str, list[str]]]:
    """(folder relative to ``published``, "" for itself; its file names) for every folder,
    or with ``days`` every folder outside snapshots/ and the snapshot folders of those
    dates."""
    for folder, subfolders, files in os.walk(published):
        relative = os.path.relpath(folder, published).replace(os.sep, "/")
        relative = "" if relative == "." else relative
        if days is not None and relative == SNAPSHOTS:
            tables, subfolders[:] = sorted(subfolders), []
            for table in tables:
                for day in days:
                    partition = Path(folder) / table / f"{AS_OF_KEY}={day.isoformat()}"
                    if partition.is_dir():
                        names = [entry.name for entry in os.scandir(partition) if entry.is_file()]
                        yield f"{SNAPSHOTS}/{table}/{partition.name}", names
        yield relative, files


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
