"""The catalog of what is published: ``<published>/manifest.json``.

It names, per table and as-of date, the one live Parquet file (immutable, named by a hash
of its bytes), the contract checks each date was published with (``publish_audit``), and
the current as-of date (the latest published). Its ``publish_id`` is a hash of what it
serves (the current as-of date and every table's versions): publishing content already
served changes nothing, and gets no new ``publish_number``.

Replacing the manifest is the commit point of a publish: the serving DuckDB file and
PostgreSQL are prepared before it and switched to its publish after it, so they never
serve a publish the manifest has not committed (pipeline/publish/run.py). Files that
left the catalog are deleted ``keep_versions`` publishes later, when no serving file a
reader may still hold open points at them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.atomic import write_bytes as write_bytes_atomically

MANIFEST = "manifest.json"
SNAPSHOTS = "snapshots"
# The contract checks of each published date, kept like a daily table's snapshots.
AUDIT_TABLE = "publish_audit"
FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One table's live file for one as-of date."""

    file: str  # relative to the published folder
    rows: int
    version: str  # YYYYMMDD_<first 12 hex of the file's SHA-256>


@dataclass(frozen=True)
class Catalog:
    publish_number: int = 0
    as_of_date: date | None = None
    published_date: date | None = None  # the date whose publish made this version
    tables: dict[str, dict[date, Entry]] = field(default_factory=dict)
    # (file, the publish that retired it)
    retired: tuple[tuple[str, int], ...] = ()

    @property
    def publish_id(self) -> str:
        """A hash of what this version serves: equal content, equal id."""
        content = {
            "as_of_date": self.as_of_date.isoformat() if self.as_of_date else None,
            "tables": {
                table: {day.isoformat(): entry.version for day, entry in sorted(dates.items())}
                for table, dates in sorted(self.tables.items())
            },
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def identity(self) -> tuple[int, str]:
        """(publish number, publish id): what every target records of the version it serves."""
        return self.publish_number, self.publish_id

    def entries(self, table: str) -> dict[date, Entry]:
        return self.tables.get(table, {})

    def current(self, table: str) -> Entry | None:
        if self.as_of_date is None:
            return None
        return self.entries(table).get(self.as_of_date)

    def previous_rows(self, table: str, day: date) -> int | None:
        """Rows of the table's latest publish before ``day``, if any."""
        earlier = [d for d in self.entries(table) if d < day]
        return self.entries(table)[max(earlier)].rows if earlier else None

    def with_date(self, day: date, entries: dict[str, Entry]) -> Catalog:
        """The catalog after publishing ``day``: its entries replace the date's old ones.

        Entries equal to the served ones (a re-run of a published date with the same
        content) are the same version: the catalog itself, with no new publish number.
        """
        as_of = max(day, self.as_of_date) if self.as_of_date else day
        if as_of == self.as_of_date and all(
            self.entries(table).get(day) == entry for table, entry in entries.items()
        ):
            return self
        tables = {name: dict(dates) for name, dates in self.tables.items()}
        retired = list(self.retired)
        number = self.publish_number + 1
        for table, entry in entries.items():
            old = tables.setdefault(table, {}).get(day)
            if old is not None and old.file != entry.file:
                retired.append((old.file, number))
            tables[table][day] = entry
        return replace(
            self,
            publish_number=number,
            as_of_date=as_of,
            published_date=day,
            tables=tables,
            retired=tuple(retired),
        )

    def expired(self, keep_versions: int) -> tuple[list[str], Catalog]:
        """Files retired at least ``keep_versions`` publishes ago, and the catalog without them."""
        cutoff = self.publish_number - keep_versions
        gone = [file for file, number in self.retired if number <= cutoff]
        kept = tuple((file, number) for file, number in self.retired if number > cutoff)
        return gone, replace(self, retired=kept)


def load_catalog(published: Path) -> Catalog:
    path = published / MANIFEST
    if not path.is_file():
        return Catalog()
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown manifest format {raw.get('format')!r}")
    return Catalog(
        publish_number=int(raw["publish_number"]),
        as_of_date=date.fromisoformat(raw["as_of_date"]) if raw["as_of_date"] else None,
        published_date=(
            date.fromisoformat(raw["published_date"]) if raw.get("published_date") else None
        ),
        tables={
            table: {date.fromisoformat(day): Entry(**entry) for day, entry in dates.items()}
            for table, dates in raw["tables"].items()
        },
        retired=tuple((file, int(number)) for file, number in raw["retired"]),
    )


def save_catalog(published: Path, catalog: Catalog) -> None:
    """Write the manifest atomically (a temporary file renamed over it), durably."""
    raw = {
        "format": FORMAT,
        "publish_number": catalog.publish_number,
        "publish_id": catalog.publish_id,
        "as_of_date": catalog.as_of_date.isoformat() if catalog.as_of_date else None,
        "published_date": catalog.published_date.isoformat() if catalog.published_date else None,
        "tables": {
            table: {
                day.isoformat(): {"file": e.file, "rows": e.rows, "version": e.version}
                for day, e in sorted(dates.items())
            }
            for table, dates in sorted(catalog.tables.items())
        },
        "retired": [[file, number] for file, number in catalog.retired],
    }
    write_bytes_atomically(published / MANIFEST, (json.dumps(raw, indent=1) + "\n").encode())
