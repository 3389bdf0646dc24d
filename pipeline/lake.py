"""The Parquet lake: one folder per table, one file per date partition, swapped atomically.

Layout: ``<lake>/<table>/<key>=YYYY-MM-DD/data.parquet``, where the key is ``export_date``
for what ingest writes and ``as_of_date`` (or ``model_version``) for what is computed from
it. The same layout serves the working state under ``paths.state``. A partition is written to
a hidden ``.data.parquet.<pid>.tmp`` beside its final name, flushed to disk, then renamed
over it, so a reader's ``*.parquet`` glob sees the old file or the new one, never a part.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.atomic import fsync_dir, remove_stale_temporaries, replacing

if TYPE_CHECKING:
    import duckdb

PARTITION_KEY = "export_date"
AS_OF_KEY = "as_of_date"
PARTITION_FILE = "data.parquet"
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Lake:
    """Paths of the lake's tables and partitions."""

    root: Path

    def table_dir(self, table: str) -> Path:
        if not _TABLE_NAME.match(table):
            raise ValueError(f"not a lake table name: {table!r}")
        return self.root / table

    def partition_file(self, table: str, day: date, key: str = PARTITION_KEY) -> Path:
        if not _TABLE_NAME.match(key):
            raise ValueError(f"not a partition key: {key!r}")
        return self.table_dir(table) / f"{key}={day.isoformat()}" / PARTITION_FILE

    def existing_partitions(
        self, table: str, days: Iterable[date], key: str = PARTITION_KEY
    ) -> list[Path]:
        return [path for day in days if (path := self.partition_file(table, day, key)).is_file()]

    def partition_dates(self, table: str, key: str = PARTITION_KEY) -> list[date]:
        """Dates with a committed partition, oldest first."""
        directory = self.table_dir(table)
        if not directory.is_dir():
            return []
        prefix = f"{key}="
        return sorted(
            date.fromisoformat(child.name.removeprefix(prefix))
            for child in directory.iterdir()
            if child.name.startswith(prefix) and (child / PARTITION_FILE).is_file()
        )


def write_partition(
    relation: duckdb.DuckDBPyRelation,
    target: Path,
    audit: Callable[[Path], None] | None = None,
) -> None:
    """Write ``relation`` to ``target`` so that readers never see a partial file.

    ``audit`` is given the written file before it replaces ``target`` (write, audit,
    publish): when it raises, nothing is replaced and the temporary is removed, so a
    file that fails its audit is never seen and the partition it would have replaced
    stays."""
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    with replacing(target) as temporary:
        relation.write_parquet(str(temporary), compression="zstd", use_tmp_file=False)
        if audit is not None:
            audit(temporary)


def remove_partition(target: Path, *, with_folder: bool = False) -> None:
    """Remove a partition file (an atomic unlink), durably. ``with_folder``: its folder
    too once empty, for a date that is not about to be written again (a state pruned
    daily), so that listing the table's partitions (:meth:`Lake.partition_dates`) costs
    what is kept, not every date ever written."""
    if target.exists():
        target.unlink()
        fsync_dir(target.parent)
        if not with_folder:
            return
        try:
            target.parent.rmdir()
        except OSError:  # not empty: a writer's temporary beside it
            return
        fsync_dir(target.parent.parent)
