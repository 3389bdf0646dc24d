"""Write, audit, publish: the as-of date's BI tables, to every target or to none.

1. **Write**: each ``sql/publish/<table>.sql`` runs over the date's lake partitions into a
   staged Parquet file (pseudonymous keys, no contact fields).
2. **Audit**: each staged file is checked against its contract. If any check fails,
   nothing is replaced: the attempt's checks go to ``audit/blocked-<date>.parquet`` (and
   PostgreSQL), the operators are alerted and the step fails.
3. **Publish**, with the manifest as the one commit point: the tables and their checks
   move to ``snapshots/`` under names given by their content; the new catalog gets a
   publish id (a hash of what it serves) and, if that differs from the manifest's, the
   next publish number. The serving DuckDB file is prepared aside and PostgreSQL loads
   the publish without serving it; then the manifest is replaced (**commit**); then the
   serving file is renamed into place and PostgreSQL's pointer is moved to it.

A backfill publishes each date's snapshots and manifest but brings the targets to the
manifest only with its last date (``targets=False`` before it): rebuilding the serving
file for dates nobody will read was a quarter of a small day's run, and a kill in
between leaves the targets behind the manifest, which the next publish repairs. Such a
publish deletes no file, as a file retired meanwhile may still be named by the serving
file; the next publish that moves the targets expires it (the manifest ends the same).

Every target thus serves a publish the manifest has committed, whole, and carries its
number and id. A kill leaves each target on the old publish or the new one, never ahead
of the manifest. Each publish starts by clearing what a killed one left (see
pipeline/publish/leftovers.py) and bringing a target behind the manifest to it; a re-run
of a date whose content is already published is the same publish (same number and id).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from pipeline import sql
from pipeline.alerts.operators import notify_operators
from pipeline.atomic import copy_file
from pipeline.config import Settings
from pipeline.duck import connect, count_rows, release
from pipeline.errors import PublishBlockedError
from pipeline.lake import AS_OF_KEY, Lake
from pipeline.publish import faults
from pipeline.publish.audit import blocked_file, write_audit
from pipeline.publish.catalog import (
    AUDIT_TABLE,
    SNAPSHOTS,
    Catalog,
    Entry,
    load_catalog,
    save_catalog,
)
from pipeline.publish.contracts import (
    CheckResult,
    Contract,
    check_table,
    load_contract,
)
from pipeline.publish.leftovers import PUBLISH_STEP, clear_leftovers, publish_lock
from pipeline.publish.pseudonym import register_customer_key
from pipeline.publish.serving import prepare_serving, serving_identity, switch_serving
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
    targets_moved: bool = True  # False: a backfill's date before its last (module doc)
    timings: dict[str, float] = field(default_factory=dict)


def publish_date(
    settings: Settings,
    day: date,
    *,
    alert_operators: bool = True,
    targets: bool = True,
    progress: Callable[[str], None] | None = None,
) -> PublishReport:
    """Publish ``day``'s tables to the Parquet snapshots, the serving file and PostgreSQL.

    A blocked publish alerts the operators (alerts.webhook_url, alerts.smtp_url) unless
    ``alert_operators`` is false: an Airflow task passes false, its failure notifier
    being the one that alerts for every failed task (docs/airflow.md). With ``targets``
    false only the snapshots and the manifest move (a backfill's dates before its last,
    see the module's doc). ``progress`` is told how a long load of PostgreSQL goes (a
    first publish of a long history).

    Raises:
        NotScoredError: scoring or the lifecycle has not written the date.
        PublishBlockedError: a contract failed; nothing was replaced.
    """
    published = settings.paths.published
    published.mkdir(parents=True, exist_ok=True)
    contracts = [load_contract(table) for table in PUBLISHED_TABLES]
    timings = Timings()
    with (
        publish_lock(settings.paths.state),
        workspace(settings.paths.state, PUBLISH_STEP, day) as scratch,
    ):
        with timings.phase("reconcile"):
            catalog = load_catalog(published)
            clear_leftovers(settings, day, catalog)
            serving = None  # the publish the serving file serves, once known
            if targets:
                serving = _sync_targets(
                    settings, catalog, catalog, contracts, scratch, progress=progress
                )
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            with timings.phase("write"):
                staged = _write(con, settings, day, scratch)
            with timings.phase("audit"):
                results = _audit(con, settings, catalog, contracts, staged, day)
                if not all(result.passed for result in results):
                    write_audit(con, results, day, blocked_file(published, day))
                else:
                    staged[AUDIT_TABLE] = scratch / f"{AUDIT_TABLE}.parquet"
                    write_audit(con, results, day, staged[AUDIT_TABLE])
        finally:
            release(con)
        if not all(result.passed for result in results):
            _block(settings, day, results, alert_operators=alert_operators)
        faults.point("audited")
        with timings.phase("snapshots"):
            entries = _place_snapshots(settings, scratch, staged, day)
            new_catalog = catalog.with_date(day, entries)
            expired: list[str] = []
            if new_catalog is not catalog and targets:
                expired, new_catalog = new_catalog.expired(settings.publish.keep_versions)
                # Before the commit: no kept version names them, and a deletion cut
                # short leaves them named as retired in the committed manifest, to be
                # deleted by the next publish (never orphans in other dates' folders).
                for relative in expired:
                    (published / relative).unlink(missing_ok=True)
        faults.point("snapshots_placed")
        if targets:
            _sync_targets(
                settings, catalog, new_catalog, contracts, scratch, timings, serving, progress
            )
        elif new_catalog is not catalog:
            save_catalog(published, new_catalog)  # the commit point; the targets stay behind
            faults.point("manifest_saved")
    del entries[AUDIT_TABLE]
    return PublishReport(
        as_of_date=day,
        current_as_of_date=new_catalog.as_of_date or day,
        publish_number=new_catalog.publish_number,
        rows={table: entry.rows for table, entry in entries.items()},
        checks=len(results),
        serving_file=published / settings.publish.serving_file,
        postgres=bool(settings.publish.postgres_url.get_secret_value()),
        removed_files=len(expired),
        targets_moved=targets,
        timings=timings.seconds,
    )


def _sync_targets(
    settings: Settings,
    committed: Catalog,
    catalog: Catalog,
    contracts: list[Contract],
    scratch: Path,
    timings: Timings | None = None,
    serving: tuple[int, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, str] | None:
    """Bring every target to ``catalog``: prepare those not serving it, commit the manifest
    (if ``catalog`` is not the ``committed`` one), then switch the prepared targets.
    Returns the publish the serving file serves after it; ``serving`` is that of an
    earlier call in the same publish (saves opening the file again).

    With ``catalog`` the committed manifest, this rolls forward a target left behind by a
    killed publish (or moves back one that serves a publish the manifest never committed).
    """
    published = settings.paths.published
    config = settings.publish
    timings = timings or Timings()
    postgres = bool(config.postgres_url.get_secret_value())
    if catalog.as_of_date is None:
        return None  # nothing published yet
    pending = None
    with timings.phase("serving"):
        if (serving or serving_identity(published, config)) != catalog.identity:
            pending = prepare_serving(published, config, catalog, contracts)
            faults.point("serving_prepared")
    if postgres:
        from pipeline.publish.postgres import postgres_identity, prepare_postgres

        with timings.phase("postgres"):
            behind = postgres_identity(config) != catalog.identity
            if behind:
                prepare_postgres(config, published, catalog, contracts, scratch, progress)
                faults.point("postgres_prepared")
    if catalog is not committed:
        save_catalog(published, catalog)  # the commit point
        faults.point("manifest_saved")
    if pending is not None:
        switch_serving(published, config, pending)
        faults.point("serving_switched")
    if postgres and behind:
        from pipeline.publish.postgres import switch_postgres

        switch_postgres(config, catalog, contracts)
        faults.point("postgres_switched")
    return catalog.identity


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


def _block(
    settings: Settings, day: date, results: list[CheckResult], *, alert_operators: bool
) -> None:
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
    if alert_operators:
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


def _place_snapshots(
    settings: Settings, scratch: Path, staged: dict[str, Path], day: date
) -> dict[str, Entry]:
    """Move each staged file to its immutable, content-named place; the catalog entries."""
    published = settings.paths.published
    entries = {}
    con = connect(settings.duckdb, spill_dir=scratch / "spill")
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
            rows = count_rows(con, path)
            if not target.is_file():
                copy_file(path, target)
            entries[table] = Entry(file=str(relative), rows=rows, version=f"{day:%Y%m%d}_{digest}")
    finally:
        release(con)
    return entries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
