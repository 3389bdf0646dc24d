"""One versioned store for every fitted model, and one refit schedule.

Each kind of model keeps its versions under ``paths.models/<kind>/``, one folder per
version named by its fit date, ``version=YYYY-MM-DD/``, holding the files the model's own
serialisation writes. A folder is a version only if it holds the kind's ``marker`` file
(the file every version has), so a stray or half-written folder left by an older writer
is never read. Models whose fit can be judged and rejected keep the rejected fits beside
the kept ones, under ``<kind>/rejected/version=YYYY-MM-DD/``: recorded, never in force.

A save writes the version's files into a hidden staging folder beside it
(``.version=YYYY-MM-DD.<pid>.tmp``, on the same file system), flushes every file and the
folder, renames the folder into place and flushes the parent, as :mod:`pipeline.atomic`
does for single files: a reader sees a whole version or none, never half a model. Saving
a version that exists (a date re-run or refitted) moves the old folder aside
(``.version=YYYY-MM-DD.<pid>.old``) and renames the new one in: between the two renames
the version is briefly absent, never mixed. Readers ignore the hidden folders; a crash
leaves at most such a folder, which the next save of that version removes (a version is
written under its date's step lock, so no other writer of it is running).

Kinds (``paths.models/...``): ``kmeans`` (:class:`pipeline.scoring.clusters.ClusterStore`),
``btyd`` (:class:`pipeline.lifecycle.alive.AliveStore`, with rejected fits) and ``risk``
(:class:`pipeline.lifecycle.risk.RiskStore`). Each refits on its own setting through
:func:`refit_due`.
"""

from __future__ import annotations

import logging
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from pipeline.atomic import fsync_dir, fsync_file

VERSION_PREFIX = "version="
REJECTED = "rejected"


class Versioned(Protocol):
    """A fitted model: its version is its fit date."""

    @property
    def version(self) -> date: ...


M = TypeVar("M", bound=Versioned)


def refit_due(current: date | None, day: date, every_days: int) -> bool:
    """Whether ``day`` fits a new model, given the version the schedule counts from.

    Due when there is no model yet (``current`` is None) or ``current`` is at least
    ``every_days`` days old on ``day``. ``every_days = 0`` turns the schedule off: the
    first model is fitted, then a new one only when asked for (``refit``).
    """
    if current is None:
        return True
    if every_days == 0:
        return False
    return (day - current).days >= every_days


class _Folders:
    """The ``version=YYYY-MM-DD`` folders under one root, and their atomic commit."""

    def __init__(self, root: Path, marker: str) -> None:
        self.root = root
        self.marker = marker

    def folder(self, version: date) -> Path:
        return self.root / f"{VERSION_PREFIX}{version.isoformat()}"

    def versions(self) -> list[date]:
        if not self.root.is_dir():
            return []
        return sorted(
            date.fromisoformat(child.name.removeprefix(VERSION_PREFIX))
            for child in self.root.iterdir()
            if child.name.startswith(VERSION_PREFIX) and (child / self.marker).is_file()
        )

    def commit(self, version: date, write: Callable[[Path], None]) -> Path:
        """Write a version's files with ``write(folder)`` aside, then rename them in."""
        target = self.folder(version)
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(f".{target.name}.*"):  # a killed save's
            _remove(leftover)
        staging = self.root / f".{target.name}.{os.getpid()}.tmp"
        retired = self.root / f".{target.name}.{os.getpid()}.old"
        staging.mkdir()
        try:
            write(staging)
            if not (staging / self.marker).is_file():
                raise ValueError(f"a version of {self.root.name} must hold {self.marker}")
            for path in sorted(staging.rglob("*")):
                if path.is_file():
                    fsync_file(path)
                else:
                    fsync_dir(path)
            fsync_dir(staging)
            if target.exists():
                os.replace(target, retired)
                try:
                    os.replace(staging, target)
                except BaseException:
                    os.replace(retired, target)
                    raise
            else:
                os.replace(staging, target)
        finally:
            _remove(staging)
            _remove(retired)
        fsync_dir(self.root)
        return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class VersionedStore(ABC, Generic[M]):
    """The versions of one kind of model under ``paths.models/<kind>``.

    A subclass names its ``kind`` folder and ``marker`` file and writes and reads one
    version's files (:meth:`write`, :meth:`read`); the paths, versions, atomic saves and
    rejected fits are this class's.
    """

    kind: ClassVar[str]  # the folder under paths.models
    marker: ClassVar[str]  # the file every version holds
    title: ClassVar[str]  # the model's name in messages

    def __init__(self, models: Path) -> None:
        self.root = models / self.kind
        self._kept = _Folders(self.root, self.marker)
        self._rejected = _Folders(self.root / REJECTED, self.marker)

    # --- the model's own serialisation ------------------------------------------------

    @abstractmethod
    def write(self, model: M, folder: Path) -> None:
        """Write ``model``'s files into ``folder`` (empty; the store commits it)."""

    @abstractmethod
    def read(self, folder: Path, version: date) -> M:
        """The model stored in ``folder`` as ``version``."""

    def unusable(self, model: M) -> str | None:
        """Why ``model`` may not be in force (None: it may); such a version is skipped
        when read and refused when saved."""
        return None

    # --- versions in force ------------------------------------------------------------

    def folder(self, version: date) -> Path:
        return self._kept.folder(version)

    def path(self, version: date) -> Path:
        """The version's marker file."""
        return self.folder(version) / self.marker

    def versions(self) -> list[date]:
        return self._kept.versions()

    def newest_version_on_or_before(self, day: date) -> date | None:
        """The newest version fitted on or before ``day``, unread."""
        return max((version for version in self.versions() if version <= day), default=None)

    def newest_on_or_before(self, day: date) -> M | None:
        """The model in force on ``day``: the newest usable version on or before it."""
        for version in reversed([version for version in self.versions() if version <= day]):
            model = self.load(version)
            reason = self.unusable(model)
            if reason is None:
                return model
            # Logged as the model's module: where its operators look for it.
            logging.getLogger(type(self).__module__).warning(
                "%s model version %s is not usable, skipped: %s", self.title, version, reason
            )
        return None

    def load(self, version: date) -> M:
        return self.read(self.folder(version), version)

    def save(self, model: M) -> Path:
        """Store ``model`` as its version, atomically; the path of its marker file."""
        reason = self.unusable(model)
        if reason is not None:
            raise ValueError(
                f"refusing to save an unusable {self.title} model as version "
                f"{model.version}: {reason}"
            )
        folder = self._kept.commit(model.version, lambda staging: self.write(model, staging))
        return folder / self.marker

    # --- rejected fits ----------------------------------------------------------------

    def rejected_path(self, version: date) -> Path:
        return self._rejected.folder(version) / self.marker

    def rejected_versions(self) -> list[date]:
        return self._rejected.versions()

    def load_rejected(self, version: date) -> M:
        return self.read(self._rejected.folder(version), version)

    def save_rejected(self, model: M) -> Path:
        """Record a fit that was judged and rejected: kept for reading, never in force."""
        folder = self._rejected.commit(model.version, lambda staging: self.write(model, staging))
        return folder / self.marker

    def newest_attempt_on_or_before(self, day: date) -> date | None:
        """The newest fit on or before ``day``, kept or rejected."""
        fitted = self.versions() + self.rejected_versions()
        return max((version for version in fitted if version <= day), default=None)
