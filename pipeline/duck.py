"""DuckDB connections configured the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import DuckDBConfig


def connect(
    config: DuckDBConfig, spill_dir: Path, database: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection with UTC session time, bounded memory and a spill folder.

    Session time is UTC so that no result depends on the machine's timezone; local
    business dates are always computed with an explicit ``timezone(...)``.
    """
    spill_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database) if database else ":memory:")
    con.execute("set TimeZone = 'UTC'")
    con.execute("set memory_limit = $limit", {"limit": config.memory_limit})
    con.execute("set temp_directory = $dir", {"dir": str(spill_dir)})
    if config.threads:
        con.execute("set threads = $threads", {"threads": config.threads})
    return con


def count_rows(con: duckdb.DuckDBPyConnection, parquet: Path) -> int:
    """The number of rows of a Parquet file (a partition just written)."""
    result = con.execute("select count(*) from read_parquet($path)", {"path": str(parquet)})
    return int(result.fetchall()[0][0])


Row = dict[str, Any]


def rows(relation: duckdb.DuckDBPyRelation) -> list[Row]:
    """Every row of a (small) relation as a dict by column name, in the relation's order."""
    columns = relation.columns
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


def one_row(relation: duckdb.DuckDBPyRelation) -> Row:
    """The one row of a relation that must have exactly one.

    Raises:
        ValueError: it has none, or more than one.
    """
    found = rows(relation)
    if len(found) != 1:
        raise ValueError(f"expected one row, got {len(found)}")
    return found[0]
