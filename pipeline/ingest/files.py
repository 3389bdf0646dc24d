"""Find a logical date's export files, check that each is safe to open, fingerprint them.

Every path the pattern matches is accounted for: it becomes an :class:`ExportFile` to
read, or a :class:`FileOutcome` saying why it is not read (rejected or skipped). Nothing
outside ``paths.incoming`` is ever opened: a path is resolved first, and a symlink whose
target leaves the folder (or, with ``source.symlinks = "refuse"``, any symlink), a
dangling symlink and anything but a regular file are refused before any open.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Literal

from pipeline.errors import RejectedFileError

FileFormat = Literal["csv", "parquet"]
Outcome = Literal["ingested", "rejected", "skipped"]
_CHUNK = 1 << 20
# Control characters a field must not hold (tab, LF and CR are CSV structure).
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def _has_control_byte(chunk: bytes) -> bool:
    # Deleting them is a C loop over the chunk: several times faster than a regex search.
    return len(chunk.translate(None, _CONTROL_BYTES)) != len(chunk)


@dataclass(frozen=True)
class ExportFile:
    """One export file of the day."""

    path: Path  # the resolved path inside paths.incoming: the only one ever opened
    name: str  # relative to the incoming folder, '/'-separated: what the lake records
    sha256: str
    size_bytes: int
    file_format: FileFormat
    # False only when the file's bytes hold no control character but tab, LF and CR:
    # the staging model then skips its per-row invalid_character check for the file.
    # (Gzip and Parquet are compressed, UTF-16/32 hold NULs: those are always checked.)
    may_have_control_bytes: bool = True


@dataclass(frozen=True)
class FileOutcome:
    """A matched path that is not read, and why (``reason`` is machine-readable)."""

    name: str
    outcome: Outcome
    reason: str
    error: str
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class FoundFiles:
    """The matched paths of one pattern: the files to read and the others."""

    exports: list[ExportFile] = field(default_factory=list)
    not_read: list[FileOutcome] = field(default_factory=list)

    @property
    def in_transfer(self) -> list[str]:
        return [outcome.name for outcome in self.not_read if outcome.reason == "in_transfer"]


def find_export_files(
    incoming: Path,
    file_pattern: str,
    day: date,
    *,
    symlinks: Literal["inside", "refuse"] = "inside",
    hidden_files: Literal["in_transfer", "ingest"] = "in_transfer",
    fingerprint: bool = True,
) -> FoundFiles:
    """The day's export files in precedence order (shortest name first, then by name),
    and an outcome for every other matched path.

    When one line arrives in several files of a day, the first file's copy is kept. A
    re-sent copy cannot share its original's name in one folder and gets a longer one
    (``x (1).csv``, ``x_resend.csv``), so the original keeps precedence and re-sending a
    file changes no line, not even its lineage.

    ``fingerprint = False`` (a sensor polling for arrivals) opens nothing: the files are
    described by ``stat`` alone (no sha256, no format check).
    """
    pattern = file_pattern.format(date=day)
    root = incoming.resolve()
    exports: list[ExportFile] = []
    not_read: list[FileOutcome] = []
    for path in sorted(incoming.glob(pattern)):
        name = path.relative_to(incoming).as_posix()
        try:
            real = _checked_path(path, name, incoming, root, symlinks)
            if hidden_files == "in_transfer" and any(
                part.startswith(".") for part in name.split("/")
            ):
                not_read.append(
                    FileOutcome(
                        name,
                        "skipped",
                        "in_transfer",
                        f"{name}: skipped: a hidden name is a file still in transfer"
                        " (source.hidden_files); re-run the date once it is renamed",
                    )
                )
                continue
            exports.append(
                _describe(real, name)
                if fingerprint
                else ExportFile(real, name, "", real.stat().st_size, "csv")
            )
        except RejectedFileError as error:
            not_read.append(FileOutcome(name, "rejected", error.code, str(error)))
    exports.sort(key=lambda export: (len(export.name), export.name))
    return FoundFiles(exports, sorted(not_read, key=lambda outcome: outcome.name))


def _checked_path(
    path: Path, name: str, incoming: Path, root: Path, symlinks: Literal["inside", "refuse"]
) -> Path:
    """The resolved path, once it is known to be a regular file inside the folder.

    Only ``lstat``/``stat`` are used: nothing is opened here.
    """
    through_link = _has_symlink(path, incoming)
    if through_link and symlinks == "refuse":
        raise RejectedFileError(
            name, "a symlink, refused (source.symlinks = 'refuse')", code="symlink_refused"
        )
    try:
        real = path.resolve(strict=False)
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
        raise RejectedFileError(
            name, "a symlink loop; not opened", code="dangling_symlink"
        ) from None
    if not real.is_relative_to(root):
        # Named only as "outside": the target's name and contents stay unprinted.
        raise RejectedFileError(
            name,
            f"a symlink whose target is outside paths.incoming ({root}); not opened",
            code="symlink_outside_incoming",
        )
    try:
        status = real.stat()
    except FileNotFoundError:
        raise RejectedFileError(
            name, "a dangling symlink: its target does not exist", code="dangling_symlink"
        ) from None
    except OSError as error:
        raise RejectedFileError(name, f"cannot stat: {error.strerror}", code="unreadable") from None
    if not stat.S_ISREG(status.st_mode):
        kind = _kind(status.st_mode)
        raise RejectedFileError(
            name, f"not a regular file (a {kind}); not opened", code="not_regular_file"
        )
    return real


def _has_symlink(path: Path, incoming: Path) -> bool:
    """Whether the path, or a folder between paths.incoming and it, is a symlink."""
    current = path
    while current != incoming and current != current.parent:
        if current.is_symlink():
            return True
        current = current.parent
    return False


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _describe(path: Path, name: str) -> ExportFile:
    digest = hashlib.sha256()
    size = 0
    # O_NOFOLLOW: a symlink swapped in after the check is refused, not followed;
    # O_NONBLOCK: a FIFO swapped in does not hang the run (fstat then refuses it).
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise RejectedFileError(name, f"cannot open: {error.strerror}", code="unreadable") from None
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise RejectedFileError(name, "not a regular file; not read", code="not_regular_file")
        magic = handle.read(4)
        digest.update(magic)
        size = len(magic)
        controls = _has_control_byte(magic)
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            # A control byte never belongs to a UTF-8 or GB18030 multi-byte character.
            controls = controls or _has_control_byte(chunk)
    file_format = _format_of(path, name, magic)
    plain = file_format == "csv" and magic[:2] != b"\x1f\x8b"
    return ExportFile(path, name, digest.hexdigest(), size, file_format, controls or not plain)


def _format_of(path: Path, name: str, magic: bytes) -> FileFormat:
    suffix = PurePosixPath(name).suffix.lower()  # the name sent, not a link's target
    if magic == b"PAR1" or suffix == ".parquet":
        return "parquet"
    if suffix in {".csv", ".tsv", ".txt", ".gz"}:
        return "csv"
    expected = "expected CSV, gzip CSV or Parquet"
    raise RejectedFileError(
        name, f"unknown file type {suffix!r} ({expected})", code="unknown_file_type"
    )
