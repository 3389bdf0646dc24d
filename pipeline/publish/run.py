"""Write, audit, publish: the as-of date's BI tables, to every target or to none.

1. **Write**: each ``sql/publish/<table>.sql`` runs over the date's lake partitions into a
   staged Parquet file (pseudonymous keys, no contact fields).
2. **Audit**: each staged file is checked against its contract. The results, passed or
   not, are written to ``<published>/audit/as_of_date=D``. If any check fails, nothing
   is replaced: the previous version keeps serving, the operators are alerted and the
   step fails.
3. **Publish**: the files move to ``snapshots/`` under names given by their content, then
   the serving DuckDB file is rebuilt aside and swapped in, then PostgreSQL takes the new
   version in one transaction, and last the manifest is replaced. A kill at any moment
   leaves each target on the old or the new version; re-running the date completes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from pipeline import sql
from pipeline.alerts.operators import notify_operators
from pipeline.config import Settings
from pipeline.duck import connect, count_rows
from pipeline.errors import PublishBlockedError
from pipeline.lake import AS_OF_KEY, Lake, fsync_dir, write_partition
from pipeline.publish import faults
from pipeline.publish.catalog import (
    SNAPSHOTS,
    Catalog,
    Entry,
    load_catalog,
    save_catalog,
)
from pipeline.publish.contracts import (
    CheckResult,
    Contract,
    audit_rows,
    check_table,
    load_contract,
)
from pipeline.publish.pseudonym import register_customer_key
from pipeline.publish.serving import AUDIT_DIR, build_serving
from pipeline.publish.tables import PUBLISHED_TABLES, has_previous_segments, register_lake_inputs
from pipeline.timing import Timings
from pipeline.workspace import workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishReport:
    """What publishing a date did."""

    as_of_date: date
    current_as_of_date: date  # what BI tools now see as current (the latest published)
    publish_number: int
    rows: dict[str, int]
    checks: int
    serving_file: Path
    postgres: bool
    removed_files: int
    timings: dict[str, float] = field(default_factory=dict)


def publish_date(settings: Settings, day: date) -> PublishReport:
    """Publish ``day``'s tables to the Parquet snapshots, the serving file and PostgreSQL.

    Raises:
        NotScoredError: scoring or the lifecycle has not written the date.
        PublishBlockedError: a contract failed; nothing was replaced.
    """
    published = settings.paths.published
    published.mkdir(parents=True, exist_ok=True)
    contracts = [load_contract(table) for table in PUBLISHED_TABLES]
    timings = Timings()
    with (
        _publish_lock(settings.paths.state),
        workspace(settings.paths.state, "publish", day) as scratch,
    ):
        catalog = load_catalog(published)
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            with timings.phase("write"):
                staged = _write(con, settings, day, scratch)
            with timings.phase("audit"):
                results = _audit(con, settings, catalog, contracts, staged, day)
                _record_audit(con, published, day, results)
        finally:
            con.close()
        if not all(result.passed for result in results):
            _block(settings, day, results)
        faults.point("audited")
        with timings.phase("snapshots"):
            entries = _place_snapshots(published, staged, day)
            new_catalog = catalog.with_date(day, entries)
        faults.point("snapshots_placed")
        with timings.phase("serving"):
            serving = build_serving(published, settings.publish, new_catalog, contracts)
        faults.point("serving_swapped")
        postgres = bool(settings.publish.postgres_url.get_secret_value())
        if postgres:
            from pipeline.publish.postgres import publish_to_postgres

            with timings.phase("postgres"):
                publish_to_postgres(
                    settings.publish, published, new_catalog, contracts, results, day, scratch
                )
            faults.point("postgres_committed")
        with timings.phase("cleanup"):
            expired, new_catalog = new_catalog.expired(settings.publish.keep_versions)
            save_catalog(published, new_catalog)
            faults.point("manifest_saved")
            for relative in expired:
                (published / relative).unlink(missing_ok=True)
    return PublishReport(
        as_of_date=day,
        current_as_of_date=new_catalog.as_of_date or day,
        publish_number=new_catalog.publish_number,
        rows={table: entry.rows for table, entry in entries.items()},
        checks=len(results),
        serving_file=serving,
        postgres=postgres,
        removed_files=len(expired),
        timings=timings.seconds,
    )


def _write(
    con: duckdb.DuckDBPyConnection, settings: Settings, day: date, scratch: Path
) -> dict[str, Path]:
    register_lake_inputs(con, Lake(settings.paths.lake), day)
    register_customer_key(con, settings.publish)
    params = {
        "as_of_date": day,
        "has_previous": has_previous_segments(Lake(settings.paths.lake), day),
    }
    staged = {}
    for table in PUBLISHED_TABLES:
        target = scratch / f"{table}.parquet"
        try:
            sql.relation(con, f"publish/{table}", params).write_parquet(
                str(target), compression="zstd", use_tmp_file=False
            )
        except duckdb.BinderException as error:
            raise PublishBlockedError(
                f"{day}: not published, the previous version keeps serving: "
                f"sql/publish/{table}.sql does not fit the lake's tables: {error}"
            ) from None
        staged[table] = target
    return staged


def _audit(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    catalog: Catalog,
    contracts: list[Contract],
    staged: dict[str, Path],
    day: date,
) -> list[CheckResult]:
    results: list[CheckResult] = []
    for contract in contracts:
        results += check_table(
            con,
            contract,
            staged[contract.table],
            previous_rows=catalog.previous_rows(contract.table, day),
            default_max_row_change=settings.publish.max_row_change,
            row_change_slack=settings.publish.row_change_slack_rows,
        )
    return results


def _record_audit(
    con: duckdb.DuckDBPyConnection, published: Path, day: date, results: list[CheckResult]
) -> None:
    """The date's contract results, passed and failed, for BI and for the record."""
    con.execute(
        "create or replace temp table audit (table_name varchar, check_name varchar, "
        "column_name varchar, passed boolean, failing_rows bigint, detail varchar, "
        "publish_status varchar)"
    )
    con.executemany("insert into audit values (?, ?, ?, ?, ?, ?, ?)", audit_rows(results))
    target = Lake(published / AUDIT_DIR).root / f"{AS_OF_KEY}={day.isoformat()}" / "data.parquet"
    write_partition(con.table("audit").order("table_name, check_name, column_name"), target)


def _block(settings: Settings, day: date, results: list[CheckResult]) -> None:
    failed = [result for result in results if not result.passed]
    details = [
        f"{r.table}.{r.column or '*'} {r.check}: "
        + (f"{r.failing_rows} failing rows" if r.failing_rows else "failed")
        + (f" ({r.detail})" if r.detail else "")
        for r in failed
    ]
    if settings.publish.postgres_url.get_secret_value():
        from pipeline.publish.postgres import record_blocked_audit

        record_blocked_audit(settings.publish, results, day)
    digest = hashlib.sha256("\n".join(details).encode()).hexdigest()[:12]
    subject = f"rfm-pipeline: publish of {day} held back, {len(failed)} contract check(s) failed"
    notify_operators(
        settings.alerts,
        event_id=f"publish-blocked-{day.isoformat()}-{digest}",
        subject=subject,
        details=details,
        payload={"as_of_date": day.isoformat(), "failed_checks": len(failed)},
    )
    raise PublishBlockedError(
        f"{day}: not published, the previous version keeps serving; failed checks: "
        + "; ".join(details)
    )


def _place_snapshots(published: Path, staged: dict[str, Path], day: date) -> dict[str, Entry]:
    """Move each staged file to its immutable, content-named place; the catalog entries."""
    entries = {}
    con = duckdb.connect()
    try:
        for table, path in staged.items():
            digest = _sha256(path)[:12]
            relative = (
                Path(SNAPSHOTS)
                / table
                / f"{AS_OF_KEY}={day.isoformat()}"
                / f"data-{digest}.parquet"
            )
            target = published / relative
            # A publish killed while copying leaves its temporary (we hold the lock).
            for leftover in target.parent.glob(".*.tmp"):
                leftover.unlink()
            rows = count_rows(con, path)
            if not target.is_file():
                _copy_atomically(path, target)
            entries[table] = Entry(file=str(relative), rows=rows, version=f"{day:%Y%m%d}_{digest}")
    finally:
        con.close()
    return entries


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy through a temporary beside the target (paths.state and paths.published may be
    different file systems), flushed, then renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, temporary)
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_dir(target.parent)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def _publish_lock(state: Path) -> Iterator[None]:
    """One publish at a time, whatever the date: they share the catalog and the targets."""
    lock_dir = state / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "publish.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
