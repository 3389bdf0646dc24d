"""The PostgreSQL target: each publish appears to BI in one transaction, behind stable views.

Layout (schema names from the configuration):

- ``rfm_data.<table>``: every served version of the table, its rows tagged by ``version``
  (a table and as-of date, named by content), loaded with COPY. BI cannot read it.
- ``rfm_data.publishes``, ``rfm_data.live_versions``, ``rfm_data.loaded_versions``: which
  versions each publish serves and which are loaded; ``rfm_data.publish_audit``: every
  contract check of every attempt.
- ``rfm.<table>``: a view selecting the current publish's versions. Views are created once
  (and again only when a contract's columns change), never replaced on a publish.

A publish is prepared in one transaction before the manifest commits (COPY the versions
PostgreSQL lacks, record the new live versions and the publish's checks, commit) and
switched to after it, by updating ``rfm_data.current_publish``, the one-row pointer every
view reads, in a second transaction. Nothing but rows changes, so MVCC alone decides what
a reader sees: every statement sees the old publish or the new one, whole, and readers never wait
for the publish nor the publish for readers. (Partitions attached per version would not do:
a query is planned with the partitions of the moment it is planned, which can be before
a commit whose rows its snapshot then sees.) A kill before the switch leaves the old
version served; the next run switches to the manifest's publish. Afterwards, rows of
versions no longer served by the last ``keep_versions`` publishes are deleted, which a
reader's snapshot still sees through.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql as pg

from pipeline import sql
from pipeline.config import PublishConfig
from pipeline.declarations import Column
from pipeline.publish import faults
from pipeline.publish.catalog import AUDIT_TABLE, Catalog, Entry
from pipeline.publish.contracts import AUDIT_COLUMNS, CheckResult, Contract, audit_rows
from pipeline.publish.tables import PUBLISHED_VIEWS

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

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


def postgres_identity(config: PublishConfig) -> tuple[int, str | None] | None:
    """(publish number, publish id) PostgreSQL serves; None before its first publish."""
    names = _Names(config)
    with psycopg.connect(config.postgres_url.get_secret_value(), autocommit=True) as conn:
        if conn.execute(
            "select to_regclass(%s)", [f"{names.data_schema}.current_publish"]
        ).fetchone() == (None,):
            return None
        return _current(conn, names)


def prepare_postgres(
    config: PublishConfig,
    published: Path,
    catalog: Catalog,
    contracts: list[Contract],
    scratch: Path,
    progress: Progress | None = None,
) -> None:
    """Load ``catalog``'s publish into PostgreSQL, in one transaction, without serving it.

    The versions PostgreSQL lacks are loaded in batches of about
    ``postgres_copy_batch_rows`` rows, a COPY each (a first publish of a long history holds
    thousands of small versions); ``progress`` is told how far the load is, and so is the
    log, when it takes more than one batch.

    Readers see it once ``switch_postgres`` moves the pointer. Rows of a publish prepared
    and never switched to (a killed run's) are replaced. If PostgreSQL serves a publish
    the manifest does not (it is ahead, or differs), it is moved back in the same
    transaction.
    """
    names = _Names(config)
    number, publish_id = catalog.identity
    with psycopg.connect(config.postgres_url.get_secret_value(), autocommit=False) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [names.data_schema])
        migrated = _ensure_catalog_tables(conn, names)
        current = _current(conn, names)
        prepared = conn.execute(
            pg.SQL("select publish_id from {} where publish_number = %s").format(
                names.data("publishes")
            ),
            [number],
        ).fetchone()
        ahead = current is not None and current[0] >= number
        if current == (number, publish_id) or (prepared == (publish_id,) and not ahead):
            _ensure_views(conn, names, contracts, force=migrated)
            conn.commit()
            return
        for table in ("live_versions", "publishes", "publish_audit"):
            conn.execute(
                pg.SQL("delete from {} where publish_number >= %s").format(names.data(table)),
                [number],
            )
        missing: list[tuple[Contract, list[Entry]]] = []
        for contract in contracts:
            _ensure_table(conn, names, contract)
            loaded = _loaded_versions(conn, names, contract.table)
            served = [entry for _, entry in _served(catalog, contract)]
            missing.append((contract, [e for e in served if e.version not in loaded]))
        _load_missing(conn, names, missing, published, scratch, config, progress)
        _ensure_views(conn, names, contracts, force=migrated)
        _record_publish(conn, names, catalog, contracts, _audit_of(published, catalog))
        if ahead:
            _point_to(conn, names, number)
        faults.point("postgres_before_commit")
        conn.commit()


def switch_postgres(config: PublishConfig, catalog: Catalog, contracts: list[Contract]) -> None:
    """Serve ``catalog``'s prepared publish: one pointer update, one transaction."""
    names = _Names(config)
    number, publish_id = catalog.identity
    with psycopg.connect(config.postgres_url.get_secret_value(), autocommit=False) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", [names.data_schema])
        prepared = conn.execute(
            pg.SQL("select publish_id from {} where publish_number = %s").format(
                names.data("publishes")
            ),
            [number],
        ).fetchone()
        if prepared != (publish_id,):
            raise RuntimeError(f"PostgreSQL has not prepared publish #{number} ({publish_id})")
        _point_to(conn, names, number)
        conn.commit()
    _drop_unserved(config, names, contracts)


def _current(conn: psycopg.Connection, n: _Names) -> tuple[int, str | None] | None:
    row = conn.execute(
        pg.SQL(
            "select c.publish_number, p.publish_id from {c} c "
            "left join {p} p on p.publish_number = c.publish_number"
        ).format(c=n.data("current_publish"), p=n.data("publishes"))
    ).fetchone()
    return (int(row[0]), row[1]) if row else None


def _point_to(conn: psycopg.Connection, n: _Names, number: int) -> None:
    conn.execute(pg.SQL("delete from {}").format(n.data("current_publish")))
    conn.execute(
        pg.SQL("insert into {} (publish_number) values (%s)").format(n.data("current_publish")),
        [number],
    )


def _audit_of(published: Path, catalog: Catalog) -> list[tuple[object, ...]]:
    """The checks ``catalog``'s publish was made with (its audit file), in AUDIT_COLUMNS order."""
    day = catalog.published_date or catalog.as_of_date
    entry = catalog.entries(AUDIT_TABLE).get(day) if day else None
    if entry is None:
        return []
    con = duckdb.connect()
    try:
        columns = ", ".join(f'"{c}"' for c in AUDIT_COLUMNS)
        return [
            tuple(row)
            for row in con.execute(
                f"select {columns} from read_parquet($file)", {"file": str(published / entry.file)}
            ).fetchall()
        ]
    finally:
        con.close()


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


def _ensure_catalog_tables(conn: psycopg.Connection, n: _Names) -> bool:
    """Create what is missing; True if the publish pointer was new (views to recreate)."""
    had_pointer = conn.execute(
        "select to_regclass(%s)", [f"{n.data_schema}.current_publish"]
    ).fetchone() != (None,)
    statements = [
        "create schema if not exists {data}",
        "revoke all on schema {data} from public",
        "create schema if not exists {schema}",
        """create table if not exists {data}.publishes (
            publish_number integer primary key,
            as_of_date date not null,
            published_date date not null,
            published_at timestamptz not null default now())""",
        "alter table {data}.publishes add column if not exists publish_id text",
        """create table if not exists {data}.current_publish (
            singleton boolean primary key default true check (singleton),
            publish_number integer not null)""",
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
    if had_pointer:
        return False
    # A database published before the pointer: it serves its latest publish.
    conn.execute(
        pg.SQL(
            "insert into {} (publish_number) select max(publish_number) from {} "
            "having max(publish_number) is not null"
        ).format(n.data("current_publish"), n.data("publishes"))
    )
    return True


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


def _load_missing(
    conn: psycopg.Connection,
    n: _Names,
    missing: list[tuple[Contract, list[Entry]]],
    published: Path,
    scratch: Path,
    config: PublishConfig,
    progress: Progress | None,
) -> None:
    """COPY every missing version (per contract), table by table, in batches of about
    ``postgres_copy_batch_rows`` rows, with a progress line per batch when there is more
    than one."""
    batches = [
        (contract, batch)
        for contract, entries in missing
        for batch in _batches(entries, config.postgres_copy_batch_rows)
    ]
    if not batches:
        return
    total_rows = sum(entry.rows for _, batch in batches for entry in batch)
    started = time.monotonic()
    done_rows = 0
    duck = duckdb.connect()
    try:
        for number, (contract, batch) in enumerate(batches, start=1):
            _load_versions(conn, duck, n, contract, batch, published, scratch)
            faults.point("postgres_version_loaded")
            done_rows += sum(entry.rows for entry in batch)
            if len(batches) > 1:
                seconds = time.monotonic() - started
                line = (
                    f"PostgreSQL: {done_rows:,} of {total_rows:,} rows loaded "
                    f"({number}/{len(batches)} batches, {contract.table}), "
                    f"{done_rows / max(seconds, 1e-3):,.0f} rows/s"
                )
                log.info(line)
                if progress:
                    progress(line)
    finally:
        duck.close()


def _batches(entries: list[Entry], rows: int) -> Iterator[list[Entry]]:
    """Consecutive runs of ``entries`` of about ``rows`` rows each (a bigger entry alone)."""
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        if batch and size + entry.rows > rows:
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry.rows
    if batch:
        yield batch


def _load_versions(
    conn: psycopg.Connection,
    duck: duckdb.DuckDBPyConnection,
    n: _Names,
    contract: Contract,
    entries: list[Entry],
    published: Path,
    scratch: Path,
) -> None:
    """COPY the rows of some published files of one table, each tagged with its version."""
    csv_file = scratch / f"{contract.table}__{entries[0].version}.csv"
    _write_csv(
        duck, contract, [(published / entry.file, entry.version) for entry in entries], csv_file
    )
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
    with (
        conn.cursor() as cursor,
        cursor.copy(pg.SQL("copy {} from stdin").format(n.data("loaded_versions"))) as copy,
    ):
        for entry in entries:
            copy.write_row((contract.table, entry.version, entry.rows))


def _write_csv(
    duck: duckdb.DuckDBPyConnection,
    contract: Contract,
    files: list[tuple[Path, str]],
    target: Path,
) -> None:
    """The files' rows as CSV in the contract's column order, each row with its file's
    version (columns no file has are empty; files may differ in columns, as a contract
    grows)."""
    paths = [str(file) for file, _ in files]
    params = {"files": paths, "versions": [version for _, version in files]}
    source = "read_parquet($files, union_by_name = true, filename = '_published_file')"
    present = {
        name
        for (name, *_) in duck.execute(
            f"describe select * from {source}", {"files": paths}
        ).fetchall()
    }
    select = ", ".join(
        f'"{c.name}"' if c.name in present else f'null::{c.type} as "{c.name}"'
        for c in contract.columns
    )
    duck.sql(
        f"""
        with versions as (
            select unnest($files) as _published_file, unnest($versions) as version
        )
        select versions.version, {select}
        from {source} as published
        inner join versions using (_published_file)
        """,
        params=params,
    ).write_csv(str(target), header=False)


def _ensure_views(
    conn: psycopg.Connection, n: _Names, contracts: list[Contract], force: bool = False
) -> None:
    """Create the BI views that are missing or whose columns no longer match (all of
    them when ``force``)."""
    created = False
    for contract in contracts:
        view = n.view(contract.table)
        if not force and _columns(conn, n.schema, contract.table) == contract.column_names:
            continue
        conn.execute(pg.SQL("drop view if exists {} cascade").format(view))
        live = pg.SQL(
            "select l.version from {live} l where l.table_name = {table} and l.publish_number = "
            "(select publish_number from {current})"
        ).format(
            live=n.data("live_versions"),
            table=pg.Literal(contract.table),
            current=n.data("current_publish"),
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
    for name, columns, query in _fixed_views(n):
        if created or _columns(conn, n.schema, name) != columns:
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


def _fixed_views(n: _Names) -> Iterable[tuple[str, list[str], pg.Composable]]:
    info = ["publish_number", "as_of_date", "published_at", "publish_id"]
    yield (
        "publish_info",
        info,
        pg.SQL("select {} from {p} where publish_number = (select publish_number from {c})").format(
            pg.SQL(", ").join(map(pg.Identifier, info)),
            p=n.data("publishes"),
            c=n.data("current_publish"),
        ),
    )
    audit = ["publish_number", "as_of_date", *AUDIT_COLUMNS, "recorded_at"]
    # Checks of publishes prepared and not (yet) served stay hidden.
    yield (
        "publish_audit",
        audit,
        pg.SQL(
            "select {} from {a} where publish_number is null "
            "or publish_number <= (select publish_number from {c})"
        ).format(
            pg.SQL(", ").join(map(pg.Identifier, audit)),
            a=n.data("publish_audit"),
            c=n.data("current_publish"),
        ),
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
    audit: list[tuple[object, ...]],
) -> None:
    number = catalog.publish_number
    day = catalog.published_date or catalog.as_of_date
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
            "insert into {} (publish_number, as_of_date, published_date, publish_id) "
            "values (%s, %s, %s, %s)"
        ).format(n.data("publishes")),
        [number, catalog.as_of_date, day, catalog.publish_id],
    )
    assert day is not None
    _insert_audit_rows(conn, n, number, day, audit)


def _insert_audit(
    conn: psycopg.Connection, n: _Names, number: int | None, day: date, results: list[CheckResult]
) -> None:
    _insert_audit_rows(conn, n, number, day, audit_rows(results))


def _insert_audit_rows(
    conn: psycopg.Connection,
    n: _Names,
    number: int | None,
    day: date,
    rows: list[tuple[object, ...]],
) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            pg.SQL("insert into {} (publish_number, as_of_date, {}) values (%s, %s, {})").format(
                n.data("publish_audit"),
                pg.SQL(", ").join(pg.Identifier(c) for c in AUDIT_COLUMNS),
                pg.SQL(", ").join(pg.Placeholder() for _ in AUDIT_COLUMNS),
            ),
            [(number, day, *row) for row in rows],
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
        pg.SQL("select max(publish_number) from {}").format(n.data("current_publish"))
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
