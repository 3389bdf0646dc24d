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
    """The day's export files, sorted by name so that every run sees the same order."""
    pattern = file_pattern.format(date=day)
    paths = sorted(path for path in incoming.glob(pattern) if path.is_file())
    return [_describe(path, incoming) for path in paths if not path.name.startswith(".")]


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
