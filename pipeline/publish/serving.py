"""The serving DuckDB file BI tools open: built aside, then renamed into place.

A publish prepares the file (``prepare_serving``: a complete, flushed
``.<serving file>.<publish number>-<publish id>.pending`` beside it) before the manifest
commits, and renames it into place (``switch_serving``) after: the file never serves a
publish the manifest has not committed. ``publish_info`` names the publish it serves
(``publish_number``, ``publish_id``), and ``publish_audit`` shows the checks of the
publishes it serves (and held-back attempts, marked ``blocked``).

The file holds the current as-of date's per-customer tables (``customer_segments``,
``customer_lifecycle``, ``cluster_profiles``) as tables, and views over the published
Parquet files for everything with history: the daily tables, ``<snapshot>_history`` and
``customer_stage_episodes``. It is written to a temporary name beside the target and
renamed over it: a BI tool that has the old file open keeps reading the old file (and
the Parquet files it names, kept for ``keep_versions`` publishes), new connections get
the new one, and nothing ever opens it for writing in place, so a reader never blocks
a publish. It is never the pipeline's working database.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipeline import sql
from pipeline.atomic import fsync_dir, fsync_file
from pipeline.config import PublishConfig
from pipeline.declarations import identifier
from pipeline.publish.audit import blocked_glob
from pipeline.publish.catalog import AUDIT_TABLE, Catalog
from pipeline.publish.contracts import Contract
from pipeline.publish.tables import PUBLISHED_VIEWS


def serving_leftovers(published: Path, config: PublishConfig) -> list[Path]:
    """Serving files being written or prepared and not switched in (a killed publish's)."""
    return sorted(published.glob(f".{config.serving_file}.*"))


def serving_identity(published: Path, config: PublishConfig) -> tuple[int, str] | None:
    """(publish number, publish id) the serving file serves; None without a file (or one
    written before publishes had an id)."""
    path = published / config.serving_file
    if not path.is_file():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = {
            name
            for (name,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_name = 'publish_info'"
            ).fetchall()
        }
        if "publish_id" not in columns:
            return None
        rows = con.execute("select publish_number, publish_id from publish_info").fetchall()
    finally:
        con.close()
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def prepare_serving(
    published: Path, config: PublishConfig, catalog: Catalog, contracts: list[Contract]
) -> Path:
    """Write the serving file for ``catalog`` beside the live one, flushed; its path.

    The file is written in the storage format of ``config.serving_storage_version``, so
    that BI tools bundling an older DuckDB can open it.
    """
    file_name = config.serving_file
    number, publish_id = catalog.identity
    pending = published / f".{file_name}.{number}-{publish_id}.pending"
    temporary = published / f".{file_name}.{os.getpid()}.tmp"
    for leftover in serving_leftovers(published, config):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(
        str(temporary),
        config={"storage_compatibility_version": config.serving_storage_version},
    )
    try:
        con.execute("set TimeZone = 'UTC'")
        _write_info(con, catalog, contracts)
        for contract in contracts:
            _write_table(con, published, catalog, contract)
        for view in PUBLISHED_VIEWS:
            con.execute(f"create view {identifier(view)} as {sql.load(f'publish/views/{view}')}")
        _write_audit_view(con, published, catalog)
        con.execute("checkpoint")
    finally:
        con.close()
    try:
        fsync_file(temporary)
        os.replace(temporary, pending)
    finally:
        temporary.unlink(missing_ok=True)
        Path(f"{temporary}.wal").unlink(missing_ok=True)
    fsync_dir(published)
    return pending


def switch_serving(published: Path, config: PublishConfig, pending: Path) -> Path:
    """Rename a prepared serving file into place (one atomic rename); the live path."""
    target = published / config.serving_file
    os.replace(pending, target)
    fsync_dir(published)
    return target


def _write_info(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, contracts: list[Contract]
) -> None:
    con.execute(
        "create table publish_info as select $as_of::date as as_of_date, "
        "$number::integer as publish_number, $id::varchar as publish_id",
        {"as_of": catalog.as_of_date, "number": catalog.publish_number, "id": catalog.publish_id},
    )
    con.execute(
        "create table published_tables (table_name varchar, kind varchar, description varchar, "
        "as_of_date date, rows bigint, version varchar)"
    )
    for contract in contracts:
        entry = catalog.current(contract.table)
        con.execute(
            "insert into published_tables "
            "values ($name, $kind, $description, $as_of, $rows, $version)",
            {
                "name": contract.table,
                "kind": contract.kind,
                "description": contract.description,
                "as_of": catalog.as_of_date,
                "rows": entry.rows if entry else None,
                "version": entry.version if entry else None,
            },
        )


def _write_table(
    con: duckdb.DuckDBPyConnection, published: Path, catalog: Catalog, contract: Contract
) -> None:
    name = identifier(contract.table)
    entries = catalog.entries(name)
    if not entries:
        return
    files = ", ".join(_literal(published / entry.file) for _, entry in sorted(entries.items()))
    every_date = f"read_parquet([{files}], union_by_name = true)"
    if contract.kind == "daily":
        con.execute(f"create view {name} as select * from {every_date}")
    else:
        current = catalog.current(name)
        if current is None:
            return
        current_file = _literal(published / current.file)
        con.execute(f"create table {name} as select * from read_parquet({current_file})")
        con.execute(f"create view {name}_history as select * from {every_date}")
    con.execute(
        f"comment on {'view' if contract.kind == 'daily' else 'table'} {name} is "
        f"{_text(contract.description)}"
    )


def _write_audit_view(con: duckdb.DuckDBPyConnection, published: Path, catalog: Catalog) -> None:
    """The checks of the dates this file serves (files the manifest names), and the
    held-back attempts (a glob: an attempt held back after the file was built shows)."""
    blocked = f"select * from read_parquet({_literal(blocked_glob(published))})"
    served = [published / e.file for _, e in sorted(catalog.entries(AUDIT_TABLE).items())]
    if served:
        files = ", ".join(_literal(path) for path in served)
        query = f"select * from read_parquet([{files}]) union all by name {blocked}"
    else:
        query = blocked
    con.execute(f"create view publish_audit as {query}")


def _literal(path: Path) -> str:
    """A file path as a SQL string literal; paths with quotes or control characters are refused."""
    text = str(path)
    if not path.is_absolute() or any(char in text for char in "'\\\0\n\r"):
        raise ValueError(f"refusing to name this path in SQL: {text!r}")
    return f"'{text}'"


def _text(value: str) -> str:
    """A description (from the contract files) as a SQL string literal."""
    if "\0" in value:
        raise ValueError("a description holds a NUL character")
    return "'" + value.replace("'", "''") + "'"
