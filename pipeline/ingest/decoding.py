"""Make a CSV export readable by DuckDB: its encoding, delimiter and column mapping.

DuckDB reads UTF-8 only (the encodings extension is not available offline), so other
encodings, GB18030/GBK above all, are transcoded to a UTF-8 file in a streaming pass.
"""

from __future__ import annotations

import codecs
import csv
import gzip
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.config import ColumnMapping, SourceConfig, normalize_header
from pipeline.errors import RejectedFileError
from pipeline.ingest.files import ExportFile

_SNIFF_BYTES = 64 * 1024
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
_UTF8 = "utf-8"
_BOMS = (
    (codecs.BOM_UTF8, _UTF8),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
REQUIRED_COLUMNS = ("order_id", "customer_id", "ordered_at", "product_id", "quantity")
CANONICAL_COLUMNS = tuple(ColumnMapping.model_fields)


@dataclass(frozen=True)
class HeaderMapping:
    """Which source headers mean which canonical column, and which columns a file needs."""

    aliases: Mapping[str, Sequence[str]]  # canonical column -> source headers
    required: tuple[str, ...]
    # Groups of which at least one column is needed, e.g. ("amount", "unit_price").
    required_one_of: tuple[tuple[str, ...], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.aliases)

    def lookup(self) -> dict[str, str]:
        """Normalized source header -> canonical column."""
        return {
            normalize_header(alias): canonical
            for canonical, aliases in self.aliases.items()
            for alias in aliases
        }


def sales_header_mapping(source: SourceConfig) -> HeaderMapping:
    """The sales exports' columns, as ``[source.columns]`` maps them."""
    return HeaderMapping(source.columns.model_dump(), REQUIRED_COLUMNS, (("amount", "unit_price"),))


@dataclass(frozen=True)
class CsvLayout:
    """How to read one CSV export."""

    utf8_path: Path  # the file DuckDB reads: the original, or a transcoded copy
    encoding: str  # the source's encoding, as detected or configured
    delimiter: str
    width: int  # number of columns in the header
    column_index: dict[str, int]  # canonical column -> position in the file
    compression: str  # of utf8_path, as DuckDB names it: "gzip" or "none"


def is_gzip(path: Path) -> bool:
    """Gzip by content, whatever the file's name says."""
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


@contextmanager
def open_decompressed(path: Path) -> Iterator[BinaryIO]:
    if not is_gzip(path):
        with path.open("rb") as raw:
            yield raw
        return
    with gzip.open(path, "rb") as unzipped:
        yield unzipped  # type: ignore[misc]


def prepare_csv(
    export: ExportFile, source: SourceConfig, scratch: Path, mapping: HeaderMapping | None = None
) -> CsvLayout:
    """Detect the encoding and header, transcoding to UTF-8 where DuckDB needs it.

    ``mapping`` names the columns to look for: the sales columns unless given.

    Raises:
        RejectedFileError: empty, unreadable, unknown encoding, or required columns missing.
    """
    try:
        with open_decompressed(export.path) as handle:
            head = handle.read(_SNIFF_BYTES)
    except (OSError, EOFError) as error:
        raise RejectedFileError(export.name, f"unreadable: {error}", code="unreadable") from None
    if not head.strip():
        raise RejectedFileError(export.name, "empty file: no header line", code="empty_file")
    encoding = source.encoding if source.encoding != "auto" else _sniff_encoding(export.name, head)
    encoding = codecs.lookup(encoding).name
    header_line = _first_line(export.name, head, encoding, source.skip_rows)
    mapping = mapping or sales_header_mapping(source)
    delimiter, width, column_index = _map_header(export.name, header_line, source, mapping)
    if encoding == _UTF8:
        utf8_path = export.path
    else:
        utf8_path = scratch / f"{export.sha256}.utf8.csv"
        _transcode(export, encoding, utf8_path)
    compression = "gzip" if is_gzip(utf8_path) else "none"
    return CsvLayout(utf8_path, encoding, delimiter, width, column_index, compression)


def _sniff_encoding(name: str, head: bytes) -> str:
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    for candidate in (_UTF8, "gb18030"):
        decoder = codecs.getincrementaldecoder(candidate)("strict")
        try:
            decoder.decode(head, final=False)  # a character cut at the end is fine
        except UnicodeDecodeError:
            continue
        return candidate
    raise RejectedFileError(
        name, "unknown encoding: neither UTF-8 nor GB18030/GBK", code="unknown_encoding"
    )


def _first_line(name: str, head: bytes, encoding: str, skip_rows: int = 0) -> str:
    """The header: the first line after ``skip_rows`` lines (a title row, a banner)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError as error:
        problem = f"not valid {encoding}: {error.reason} at byte {error.start}"
        raise RejectedFileError(name, problem, code="invalid_bytes") from None
    lines = text.lstrip("\ufeff").splitlines()
    line = lines[skip_rows] if len(lines) > skip_rows else ""
    if not line.strip():
        raise RejectedFileError(name, "empty file: no header line", code="empty_file")
    return line


def _map_header(
    name: str, header_line: str, source: SourceConfig, mapping: HeaderMapping
) -> tuple[str, int, dict[str, int]]:
    lookup = mapping.lookup()
    candidates = _DELIMITERS if source.delimiter == "auto" else (source.delimiter,)
    best: tuple[int, str, list[str]] | None = None
    for delimiter in candidates:
        fields = next(csv.reader([header_line], delimiter=delimiter))
        recognised = sum(normalize_header(field) in lookup for field in fields)
        if best is None or recognised > best[0]:
            best = (recognised, delimiter, fields)
    assert best is not None
    recognised, delimiter, fields = best
    if recognised == 0:
        raise RejectedFileError(
            name, f"header not recognised: {header_line[:200]!r}", code="header_not_recognised"
        )
    return delimiter, len(fields), map_columns(name, fields, mapping)


def map_columns(name: str, fields: list[str], mapping: HeaderMapping) -> dict[str, int]:
    """Canonical column -> position among a file's column names.

    Raises:
        RejectedFileError: two columns map to one canonical column, or a required one
            is missing.
    """
    lookup = mapping.lookup()
    column_index: dict[str, int] = {}
    for position, field in enumerate(fields):
        canonical = lookup.get(normalize_header(field))
        if canonical is None:
            continue
        if canonical in column_index:
            first = fields[column_index[canonical]]
            raise RejectedFileError(
                name,
                f"columns {first!r} and {field!r} both map to {canonical}",
                code="ambiguous_columns",
            )
        column_index[canonical] = position
    _check_required_columns(name, column_index.keys(), mapping)
    return column_index


def _check_required_columns(name: str, present: Iterable[str], mapping: HeaderMapping) -> None:
    """Reject a file that lacks a required canonical column after mapping."""
    have = set(present)
    missing = [
        f"{column} (looked for {', '.join(mapping.aliases[column])})"
        for column in mapping.required
        if column not in have
    ]
    missing += [
        f"{' or '.join(group)} (looked for {', '.join(group)})"
        for group in mapping.required_one_of
        if not have.intersection(group)
    ]
    if missing:
        looked_for = "; ".join(missing)
        raise RejectedFileError(
            name,
            f"required column missing after mapping: {looked_for}",
            code="missing_column",
        )


def _transcode(export: ExportFile, encoding: str, target: Path) -> None:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    try:
        with open_decompressed(export.path) as source, target.open("wb") as sink:
            while chunk := source.read(_CHUNK):
                sink.write(decoder.decode(chunk).encode(_UTF8))
                offset += len(chunk)
            sink.write(decoder.decode(b"", final=True).encode(_UTF8))
    except UnicodeDecodeError as error:
        raise RejectedFileError(
            export.name,
            f"not valid {encoding}: {error.reason} at byte {offset + error.start}",
            code="invalid_bytes",
        ) from None
    except (OSError, EOFError) as error:
        raise RejectedFileError(export.name, f"unreadable: {error}", code="unreadable") from None
