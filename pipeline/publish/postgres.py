"""The PostgreSQL target: each publish appears to BI in one transaction, behind stable views.

Layout (schema names from the configuration):

- ``rfm_data.<table>``: every served version of the table, its rows tagged by ``version``
  (a table and as-of date, named by content), loaded with COPY. BI cannot read it.
- ``rfm_data.publishes``, ``rfm_data.live_versions``, ``rfm_data.loaded_versions``: which
  versions each publish serves and which are loaded; ``rfm_data.publish_audit``: every
  contract check of every attempt.
- ``rfm.<table>``: a view selecting the current publish's versions. Views are created once
  (and again only when a contract's columns change), never replaced on a publish.

A publish is one transaction: COPY the versions PostgreSQL lacks, record the new live
versions, commit. Nothing but rows changes, so MVCC alone decides what a reader sees:
every statement sees the old publish or the new one, whole, and readers never wait for
the publish nor the publish for readers. (Partitions attached per version would not do:
a query is planned with the partitions of the moment it is planned, which can be before
a commit whose rows its snapshot then sees.) A kill before the commit leaves the old
version; the re-run loads again. Afterwards, rows of versions no longer served by the
last ``keep_versions`` publishes are deleted, which a reader's snapshot still sees through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql as pg

from pipeline import sql
from pipeline.config import PublishConfig
from pipeline.publish import faults
from pipeline.publish.catalog import Catalog, Entry
from pipeline.publish.contracts import AUDIT_COLUMNS, CheckResult, Column, Contract, audit_rows
from pipeline.publish.tables import PUBLISHED_VIEWS

log = logging.getLogger(__name__)

_DECIMAL = re.compile(r"^DECIMAL\((\d+), ?(\d+)\)$")
_PG_TYPES = {
    "VARCHAR": "text",
    "DATE": "date",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}
_COPY_CHUNK = 1 << 20


def pg_type(duckdb_type: str) -> str:
    if match := _DECIMAL.match(duckdb_type):
        return f"numeric({match.group(1)},{match.group(2)})"
    try:
        return _PG_TYPES[duckdb_type]
    except KeyError:
        raise ValueError(f"no PostgreSQL type for {duckdb_type}") from None


def publish_to_postgres(
    config: PublishConfig,
    published: Path,
    catalog: Catalog,
    contracts: list[Contract],
    results: list[CheckResult],
    day: date,
    scratch: Path,
) -> None:
    """Make PostgreSQL serve ``catalog``'s current version, in one transaction."""
    names = _Names(config)
    with psycopg.connect(config.postgres_url.get_secret_value(), autocommit=False) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [names.data_schema])
        _ensure_catalog_tables(conn, names)
        for contract in contracts:
            _ensure_table(conn, names, contract)
            loaded = _loaded_versions(conn, names, contract.table)
            for _, entry in _served(catalog, contract):
                if entry.version not in loaded:
                    _load_version(conn, names, contract, published / entry.file, entry, scratch)
                    faults.point("postgres_version_loaded")
        _ensure_views(conn, names, contracts)
        _record_publish(conn, names, catalog, contracts, results, day)
        faults.point("postgres_before_commit")
        conn.commit()
    _drop_unserved(config, names, contracts)


def record_blocked_audit(config: PublishConfig, results: list[CheckResult], day: date) -> None:
    """Record a held-back publish's checks in PostgreSQL (best effort: the step fails anyway)."""
    names = _Names(config)
    try:
        with psycopg.connect(config.postgres_url.get_secret_value(), autocommit=False) as conn:
            conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [names.data_schema])
            _ensure_catalog_tables(conn, names)
            _insert_audit(conn, names, None, day, results)
            conn.commit()
    except psycopg.Error as error:
        log.error("could not record the blocked publish in PostgreSQL: %s", error)


class _Names:
    def __init__(self, config: PublishConfig) -> None:
        self.schema = config.postgres_schema
        self.data_schema = config.postgres_data_schema
        self.reader = config.postgres_reader_role
        self.keep_versions = config.keep_versions
        self.lock_timeout_ms = config.postgres_cleanup_lock_timeout_ms

    def data(self, name: str) -> pg.Composable:
        return pg.Identifier(self.data_schema, name)

    def view(self, name: str) -> pg.Composable:
        return pg.Identifier(self.schema, name)


def _ensure_catalog_tables(conn: psycopg.Connection, n: _Names) -> None:
    statements = [
        "create schema if not exists {data}",
        "revoke all on schema {data} from public",
        "create schema if not exists {schema}",
        """create table if not exists {data}.publishes (
            publish_number integer primary key,
            as_of_date date not null,
            published_date date not null,
            published_at timestamptz not null default now())""",
        """create table if not exists {data}.live_versions (
            publish_number integer not null,
            table_name text not null,
            as_of_date date not null,
            version text not null,
            rows bigint not null,
            primary key (publish_number, table_name, version))""",
        """create table if not exists {data}.loaded_versions (
            table_name text not null,
            version text not null,
            rows bigint not null,
            primary key (table_name, version))""",
        """create table if not exists {data}.publish_audit (
            publish_number integer,
            as_of_date date not null,
            table_name text not null,
            check_name text not null,
            column_name text,
            passed boolean not null,
            failing_rows bigint not null,
            detail text,
            publish_status text not null,
            recorded_at timestamptz not null default now())""",
    ]
    for statement in statements:
        conn.execute(
            pg.SQL(statement).format(
                data=pg.Identifier(n.data_schema), schema=pg.Identifier(n.schema)
            )
        )
    exists = conn.execute("select 1 from pg_roles where rolname = %s", [n.reader]).fetchone()
    if not exists:
        conn.execute(pg.SQL("create role {} nologin").format(pg.Identifier(n.reader)))


def _ensure_table(conn: psycopg.Connection, n: _Names, contract: Contract) -> None:
    """The table of every version, recreated (with its views) if the columns changed."""
    expected = [("version", "text")] + [(c.name, pg_type(c.type)) for c in contract.columns]
    actual = conn.execute(
        """select a.attname, format_type(a.atttypid, a.atttypmod)
           from pg_attribute a
           where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped
           order by a.attnum""",
        [f"{n.data_schema}.{contract.table}"],
    ).fetchall()
    if actual == expected:
        return
    if actual:
        log.warning("%s.%s: columns changed, rebuilding it", n.data_schema, contract.table)
        conn.execute(pg.SQL("drop table {} cascade").format(n.data(contract.table)))
        conn.execute(
            pg.SQL("delete from {} where table_name = %s").format(n.data("loaded_versions")),
            [contract.table],
        )
    columns = [pg.SQL("version text not null")] + [_column_ddl(c) for c in contract.columns]
    conn.execute(
        pg.SQL("create table {} ({})").format(n.data(contract.table), pg.SQL(", ").join(columns))
    )
    key = pg.SQL(", ").join(map(pg.Identifier, ["version", *contract.grain]))
    conn.execute(pg.SQL("create index on {} ({})").format(n.data(contract.table), key))


def _column_ddl(column: Column) -> pg.Composable:
    ddl = pg.SQL("{} {}").format(pg.Identifier(column.name), pg.SQL(pg_type(column.type)))
    return pg.SQL("{} not null").format(ddl) if column.not_null else ddl


def _served(catalog: Catalog, contract: Contract) -> list[tuple[date, Entry]]:
    """Daily tables serve every date; snapshot tables only the current one."""
    entries = sorted(catalog.entries(contract.table).items())
    if contract.kind == "daily":
        return entries
    return [(day, entry) for day, entry in entries if day == catalog.as_of_date]


def _loaded_versions(conn: psycopg.Connection, n: _Names, table: str) -> set[str]:
    rows = conn.execute(
        pg.SQL("select version from {} where table_name = %s").format(n.data("loaded_versions")),
        [table],
    ).fetchall()
    return {version for (version,) in rows}


def _load_version(
    conn: psycopg.Connection,
    n: _Names,
    contract: Contract,
    file: Path,
    entry: Entry,
    scratch: Path,
) -> None:
    """COPY one published file's rows into the table, tagged with its version."""
    csv_file = scratch / f"{contract.table}__{entry.version}.csv"
    _write_csv(contract, file, entry.version, csv_file)
    columns = pg.SQL(", ").join(map(pg.Identifier, ["version", *contract.column_names]))
    with (
        conn.cursor() as cursor,
        cursor.copy(
            pg.SQL("copy {} ({}) from stdin (format csv)").format(n.data(contract.table), columns)
        ) as copy,
        csv_file.open("rb") as handle,
    ):
        while chunk := handle.read(_COPY_CHUNK):
            copy.write(chunk)
    csv_file.unlink()
    conn.execute(
        pg.SQL("insert into {} values (%s, %s, %s)").format(n.data("loaded_versions")),
        [contract.table, entry.version, entry.rows],
    )


def _write_csv(contract: Contract, file: Path, version: str, target: Path) -> None:
    """The file's rows as CSV in the contract's column order (absent columns empty)."""
    con = duckdb.connect()
    try:
        present = {
            name
            for (name, *_) in con.execute(
                "describe select * from read_parquet($file)", {"file": str(file)}
            ).fetchall()
        }
        select = ", ".join(
            f'"{c.name}"' if c.name in present else f'null::{c.type} as "{c.name}"'
            for c in contract.columns
        )
        con.sql(
            f"select $version as version, {select} from read_parquet($file)",
            params={"version": version, "file": str(file)},
        ).write_csv(str(target), header=False)
    finally:
        con.close()


def _ensure_views(conn: psycopg.Connection, n: _Names, contracts: list[Contract]) -> None:
    """Create the BI views that are missing or whose columns no longer match."""
    created = False
    for contract in contracts:
        view = n.view(contract.table)
        if _columns(conn, n.schema, contract.table) == contract.column_names:
            continue
        conn.execute(pg.SQL("drop view if exists {} cascade").format(view))
        live = pg.SQL(
            "select l.version from {live} l where l.table_name = {table} and l.publish_number = "
            "(select max(publish_number) from {publishes})"
        ).format(
            live=n.data("live_versions"),
            table=pg.Literal(contract.table),
            publishes=n.data("publishes"),
        )
        conn.execute(
            pg.SQL("create view {} as select {} from {} where version in ({})").format(
                view,
                pg.SQL(", ").join(map(pg.Identifier, contract.column_names)),
                n.data(contract.table),
                live,
            )
        )
        _comment(conn, view, contract.description, contract.columns)
        created = True
    for name, query in _fixed_views(n):
        if created or not _columns(conn, n.schema, name):
            conn.execute(pg.SQL("drop view if exists {}").format(n.view(name)))
            conn.execute(pg.SQL("create view {} as {}").format(n.view(name), query))
            created = True
    for name in PUBLISHED_VIEWS:
        if created or not _columns(conn, n.schema, name):
            conn.execute(pg.SQL("set local search_path to {}").format(pg.Identifier(n.schema)))
            conn.execute(pg.SQL("drop view if exists {}").format(n.view(name)))
            conn.execute(
                pg.SQL("create view {} as {}").format(
                    n.view(name),
                    pg.SQL(sql.load(f"publish/views/{name}")),
                )
            )
            conn.execute("reset search_path")
            created = True
    if created:
        conn.execute(
            pg.SQL("grant usage on schema {} to {}").format(
                pg.Identifier(n.schema), pg.Identifier(n.reader)
            )
        )
        conn.execute(
            pg.SQL("grant select on all tables in schema {} to {}").format(
                pg.Identifier(n.schema), pg.Identifier(n.reader)
            )
        )


def _fixed_views(n: _Names) -> Iterable[tuple[str, pg.Composable]]:
    yield (
        "publish_info",
        pg.SQL(
            "select publish_number, as_of_date, published_at from {p} "
            "where publish_number = (select max(publish_number) from {p})"
        ).format(p=n.data("publishes")),
    )
    yield (
        "publish_audit",
        pg.SQL(
            "select publish_number, as_of_date, table_name, check_name, column_name, passed, "
            "failing_rows, detail, publish_status, recorded_at from {}"
        ).format(n.data("publish_audit")),
    )


def _columns(conn: psycopg.Connection, schema: str, name: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        [schema, name],
    ).fetchall()
    return [column for (column,) in rows]


def _comment(
    conn: psycopg.Connection, view: pg.Composable, description: str, columns: Iterable[Column]
) -> None:
    conn.execute(pg.SQL("comment on view {} is {}").format(view, pg.Literal(description)))
    for column in columns:
        if column.description:
            conn.execute(
                pg.SQL("comment on column {}.{} is {}").format(
                    view, pg.Identifier(column.name), pg.Literal(column.description)
                )
            )


def _record_publish(
    conn: psycopg.Connection,
    n: _Names,
    catalog: Catalog,
    contracts: list[Contract],
    results: list[CheckResult],
    day: date,
) -> None:
    number = catalog.publish_number
    conn.execute(
        pg.SQL("delete from {} where publish_number = %s").format(n.data("live_versions")), [number]
    )
    conn.execute(
        pg.SQL("delete from {} where publish_number = %s").format(n.data("publishes")), [number]
    )
    with conn.cursor() as cursor:
        cursor.executemany(
            pg.SQL("insert into {} values (%s, %s, %s, %s, %s)").format(n.data("live_versions")),
            [
                (number, contract.table, served_day, entry.version, entry.rows)
                for contract in contracts
                for served_day, entry in _served(catalog, contract)
            ],
        )
    conn.execute(
        pg.SQL(
            "insert into {} (publish_number, as_of_date, published_date) values (%s, %s, %s)"
        ).format(n.data("publishes")),
        [number, catalog.as_of_date, day],
    )
    _insert_audit(conn, n, number, day, results)


def _insert_audit(
    conn: psycopg.Connection, n: _Names, number: int | None, day: date, results: list[CheckResult]
) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            pg.SQL("insert into {} (publish_number, as_of_date, {}) values (%s, %s, {})").format(
                n.data("publish_audit"),
                pg.SQL(", ").join(pg.Identifier(c) for c in AUDIT_COLUMNS),
                pg.SQL(", ").join(pg.Placeholder() for _ in AUDIT_COLUMNS),
            ),
            [(number, day, *row) for row in audit_rows(results)],
        )


def _drop_unserved(config: PublishConfig, n: _Names, contracts: list[Contract]) -> None:
    """Delete the rows of versions no recent publish serves, then refresh the statistics.

    Deleting takes no lock a reader waits for, and a reader whose snapshot is older still
    sees the rows. A failure here is logged: the publish itself has committed.
    """
    try:
        with psycopg.connect(config.postgres_url.get_secret_value(), autocommit=True) as conn:
            conn.execute(
                pg.SQL("set lock_timeout = {}").format(pg.Literal(f"{n.lock_timeout_ms}ms"))
            )
            _delete_unserved(conn, n, contracts)
    except psycopg.Error as error:
        log.warning("removing old versions from PostgreSQL failed (retried next time): %s", error)


def _delete_unserved(conn: psycopg.Connection, n: _Names, contracts: list[Contract]) -> None:
    newest = conn.execute(
        pg.SQL("select max(publish_number) from {}").format(n.data("publishes"))
    ).fetchone()
    if not newest or newest[0] is None:
        return
    oldest_kept = int(newest[0]) - n.keep_versions + 1
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [n.data_schema])
        kept = set(
            conn.execute(
                pg.SQL("select table_name, version from {} where publish_number >= %s").format(
                    n.data("live_versions")
                ),
                [oldest_kept],
            ).fetchall()
        )
        for contract in contracts:
            gone = sorted(
                version
                for version in _loaded_versions(conn, n, contract.table)
                if (contract.table, version) not in kept
            )
            if not gone:
                continue
            conn.execute(
                pg.SQL("delete from {} where version = any(%s)").format(n.data(contract.table)),
                [gone],
            )
            conn.execute(
                pg.SQL("delete from {} where table_name = %s and version = any(%s)").format(
                    n.data("loaded_versions")
                ),
                [contract.table, gone],
            )
        conn.execute(
            pg.SQL("delete from {} where publish_number < %s").format(n.data("live_versions")),
            [oldest_kept],
        )
    for contract in contracts:
        conn.execute(pg.SQL("analyze {}").format(n.data(contract.table)))
