"""Find a logical date's export files and fingerprint them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from pipeline.errors import RejectedFileError

FileFormat = Literal["csv", "parquet"]
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportFile:
    """One export file of the day."""

    path: Path
    name: str  # relative to the incoming folder, '/'-separated: what the lake records
    sha256: str
    size_bytes: int
    file_format: FileFormat


def find_export_files(incoming: Path, file_pattern: str, day: date) -> list[ExportFile]:
    """The day's export files in precedence order: shortest name first, then by name.

    When one line arrives in several files of a day, the first file's copy is kept. A
    re-sent copy cannot share its original's name in one folder and gets a longer one
    (``x (1).csv``, ``x_resend.csv``), so the original keeps precedence and re-sending a
    file changes no line, not even its lineage.
    """
    pattern = file_pattern.format(date=day)
    paths = [path for path in incoming.glob(pattern) if path.is_file()]
    exports = [_describe(path, incoming) for path in paths if not path.name.startswith(".")]
    return sorted(exports, key=lambda export: (len(export.name), export.name))


def _describe(path: Path, incoming: Path) -> ExportFile:
    name = path.relative_to(incoming).as_posix()
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return ExportFile(path, name, digest.hexdigest(), size, _format_of(path, name))


def _format_of(path: Path, name: str) -> FileFormat:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1" or path.suffix.lower() == ".parquet":
        return "parquet"
    if path.suffix.lower() in {".csv", ".tsv", ".txt", ".gz"}:
        return "csv"
    expected = "expected CSV, gzip CSV or Parquet"
    raise RejectedFileError(name, f"unknown file type {path.suffix!r} ({expected})")
