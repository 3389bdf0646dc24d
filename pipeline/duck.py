"""DuckDB connections configured the same way everywhere."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import DuckDBConfig


def connect(
    config: DuckDBConfig, spill_dir: Path, database: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A connection with UTC session time, bounded memory and a spill folder; give it
    back with :func:`release`.

    Session time is UTC so that no result depends on the machine's timezone; local
    business dates are always computed with an explicit ``timezone(...)``.

    Without ``database`` it works in a new in-memory database of its own, as a step's
    scratch: what it creates is gone when it is released, and no other connection sees
    it. Opening a DuckDB database costs about 16 ms, and a day's steps open eight, so
    the thread keeps one open and each connection gets a database attached to it
    (half a millisecond), unless one is already out (a connection opened inside
    another step's gets a database of its own: the two must not share a spill folder).
    Parquet metadata is cached in the database (``_METADATA_CACHE``).
    """
    spill_dir.mkdir(parents=True, exist_ok=True)
    if database is None and getattr(_local, "lent", None) is None:
        con = _lend(spill_dir)
    else:
        con = duckdb.connect(str(database) if database else ":memory:")
        con.execute("set temp_directory = $dir", {"dir": str(spill_dir)})
        con.execute(_METADATA_CACHE)
    con.execute("set TimeZone = 'UTC'")
    con.execute("set memory_limit = $limit", {"limit": config.memory_limit})
    if config.threads:
        con.execute("set threads = $threads", {"threads": config.threads})
    return con


def release(con: duckdb.DuckDBPyConnection) -> None:
    """Close a connection from :func:`connect`, and drop its database if it was lent."""
    con.close()
    lent = getattr(_local, "lent", None)
    if lent is not None and lent[0] is con:
        _local.lent = None
        _local.root.execute(f"detach database {lent[1]}")


_local = threading.local()
# Parquet footers read once per database, not once per query: a day's steps read the
# same recent partitions many times (the thread's database lives across steps and the
# dates of a backfill). A file replaced since (a re-run) is read again: DuckDB checks
# each cached file's version on the local file system.
_METADATA_CACHE = "set parquet_metadata_cache = true"


def _lend(spill_dir: Path) -> duckdb.DuckDBPyConnection:
    """A connection of the thread's open database, using a new attached database.

    A database that has spilled cannot move its spill folder (DuckDB refuses), and the
    old folder was a step's scratch, removed since: such a database is replaced.
    """
    root: duckdb.DuckDBPyConnection | None = getattr(_local, "root", None)
    if root is not None:
        try:
            root.execute("set temp_directory = $dir", {"dir": str(spill_dir)})
        except duckdb.NotImplementedException:
            root.close()
            root = None
    if root is None:
        root = duckdb.connect(":memory:")
        root.execute("set temp_directory = $dir", {"dir": str(spill_dir)})
        root.execute(_METADATA_CACHE)
        _local.root, _local.count = root, 0
    _local.count += 1
    name = f"step_{_local.count}"
    root.execute(f"attach database ':memory:' as {name}")
    con = root.cursor()
    con.execute(f"use {name}")
    _local.lent = (con, name)
    return con


def count_rows(con: duckdb.DuckDBPyConnection, parquet: Path) -> int:
    """The number of rows of a Parquet file (a partition just written)."""
    result = con.execute("select count(*) from read_parquet($path)", {"path": str(parquet)})
    return int(result.fetchall()[0][0])


def counted_over(con: duckdb.DuckDBPyConnection, state: Path, column: str) -> int | None:
    """The window a kept state was counted over (``column``, the same on every row):
    None when the state is empty or was written before it kept the column. A state of
    another window, or of an unknown one, is not built on."""
    relation = con.read_parquet(str(state))
    if column not in relation.columns:
        return None
    found = relation.select(column).limit(1).fetchall()
    return int(found[0][0]) if found else None


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
