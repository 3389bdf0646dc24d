"""Ingest one logical date: the day's export files into the lake's tables.

The sales exports become order_lines and quarantined_order_lines; the optional customer
master becomes customer_master and quarantined_customer_master; the ingest_ledger
partition, written last, marks the date complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from pipeline import sql
from pipeline.config import Settings
from pipeline.duck import connect
from pipeline.errors import MissingExportError
from pipeline.ingest import customer_master
from pipeline.ingest.files import ExportFile, find_export_files
from pipeline.ingest.loading import create_raw_table, load_export_file
from pipeline.lake import Lake, remove_partition, write_partition
from pipeline.workspace import workspace

ORDER_LINES = "order_lines"
QUARANTINE = "quarantined_order_lines"
CUSTOMER_MASTER = "customer_master"
CUSTOMER_MASTER_QUARANTINE = "quarantined_customer_master"
LEDGER = "ingest_ledger"
# The ledger partition is removed before and written after the others: a date with a
# ledger partition is completely ingested, whatever moment an earlier run died at.
LAKE_TABLES = (QUARANTINE, ORDER_LINES, CUSTOMER_MASTER_QUARANTINE, CUSTOMER_MASTER, LEDGER)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class IngestReport:
    """What one date's ingest did, file by file.

    ``files`` and ``quarantine_reasons`` are the sales exports' (the ledger's rows);
    the customer master's files are counted apart, in ``customer_master_files`` (rows_in,
    rows_loaded, rows_quarantined) and ``customer_master_reasons``.
    """

    export_date: date
    files: list[dict[str, object]]
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    customer_master_files: list[dict[str, object]] = field(default_factory=list)
    customer_master_reasons: dict[str, int] = field(default_factory=dict)

    def total(self, column: str) -> int:
        return sum(int(str(row[column])) for row in self.files)


def ingest_date(settings: Settings, day: date, progress: Progress | None = None) -> IngestReport:
    """Read the day's exports, validate them, and replace the day's lake partitions.

    Re-running a date replaces its partitions with byte-identical files when the inputs
    are unchanged. A structurally broken file aborts the date before anything is written.

    Raises:
        MissingExportError: no sales export file and ``ingest.missing_export = "fail"``
            (whether or not a customer master arrived).
        RejectedFileError: a file is structurally broken (nothing is written).
    """
    report_progress = progress or (lambda _message: None)
    paths = settings.paths
    exports = find_export_files(paths.incoming, settings.source.file_pattern, day)
    masters = customer_master.find_master_files(paths.incoming, settings.source, day, exports)
    if not exports and settings.ingest.missing_export == "fail":
        pattern = settings.source.file_pattern.format(date=day)
        raise MissingExportError(
            f"no export file for {day} in {paths.incoming} (pattern {pattern!r})"
        )
    lake = Lake(paths.lake)
    with workspace(paths.state, "ingest", day) as scratch:
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            read_as = _load_exports(con, exports, settings, scratch, report_progress)
            _register_export_files(con, exports, read_as)
            master_read_as = customer_master.load_master_files(
                con, masters, settings.source, scratch, report_progress
            )
            _register_export_files(con, masters, master_read_as, customer_master.MASTER_FILES_TABLE)
            report_progress("validating")
            sql.materialize(con, "staging/stg_sales_export_lines", _staging_params(settings, day))
            _load_earlier_lines(con, lake, day, settings.ingest.dedup_lookback_days)
            sql.materialize(con, "intermediate/int_sales_export_lines_classified")
            sql.materialize(
                con,
                "staging/stg_customer_master_rows",
                customer_master.staging_params(settings.source, day),
            )
            sql.materialize(con, "intermediate/int_customer_master_rows_classified")
            remove_partition(lake.partition_file(LEDGER, day))
            for table in LAKE_TABLES:
                report_progress(f"writing {table}")
                write_partition(sql.relation(con, f"lake/{table}"), lake.partition_file(table, day))
            return _report(con, lake, day)
        finally:
            con.close()


def _load_exports(
    con: duckdb.DuckDBPyConnection,
    exports: list[ExportFile],
    settings: Settings,
    scratch: Path,
    report_progress: Progress,
) -> dict[str, dict[str, str]]:
    create_raw_table(con)
    read_as = {}
    for file_order, export in enumerate(exports):
        report_progress(f"reading {export.name}")
        read_as[export.name] = load_export_file(con, export, file_order, settings.source, scratch)
    return read_as


def _register_export_files(
    con: duckdb.DuckDBPyConnection,
    exports: list[ExportFile],
    read_as: dict[str, dict[str, str]],
    table: str = "export_files",
) -> None:
    con.execute(
        f"create or replace temp table {table} (source_file varchar, file_sha256 varchar,"
        " file_bytes bigint, file_format varchar, encoding varchar, delimiter varchar)"
    )
    if not exports:
        return
    con.executemany(
        f"insert into {table} values (?, ?, ?, ?, ?, ?)",
        [
            [
                export.name,
                export.sha256,
                export.size_bytes,
                export.file_format,
                read_as[export.name]["encoding"],
                read_as[export.name]["delimiter"],
            ]
            for export in exports
        ],
    )


def _load_earlier_lines(
    con: duckdb.DuckDBPyConnection, lake: Lake, day: date, lookback_days: int
) -> None:
    """The lookback partitions' lines, for duplicate detection (never later dates)."""
    earlier_days = [day - timedelta(days=offset) for offset in range(lookback_days, 0, -1)]
    files = [str(path) for path in lake.existing_partitions(ORDER_LINES, earlier_days)]
    if files:
        con.execute(
            "create or replace temp table earlier_order_lines as"
            " select * from read_parquet($files, hive_partitioning = true)",
            {"files": files},
        )
    else:
        # No earlier partition: an empty table shaped like the staged lines.
        con.execute(
            "create or replace temp table earlier_order_lines as"
            " select *, null::date as export_date from stg_sales_export_lines limit 0"
        )


def _staging_params(settings: Settings, day: date) -> dict[str, object]:
    source = settings.source
    zone = ZoneInfo(source.timezone)
    day_start = datetime.combine(day, time(), zone).astimezone(UTC)
    day_end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return {
        "timezone": source.timezone,
        "timestamp_formats": source.timestamp_formats,
        "window_start_utc": day_start - timedelta(hours=settings.ingest.late_tolerance_hours),
        "window_end_utc": day_end + timedelta(hours=settings.ingest.early_tolerance_hours),
        "decimal_separator": source.decimal_separator,
        "default_currency": source.currency,
        "accepted_currencies": source.accepted_currencies,
        # Lowercased as the staging model lowercases the export's status.
        "return_statuses": [status.lower() for status in source.return_statuses],
        "cancellation_statuses": [status.lower() for status in source.cancellation_statuses],
    }


def _report(con: duckdb.DuckDBPyConnection, lake: Lake, day: date) -> IngestReport:
    """What landed, read back from the partitions just written."""
    ledger = con.sql(
        "select * from read_parquet($path)", params={"path": str(lake.partition_file(LEDGER, day))}
    )
    files = [dict(zip(ledger.columns, row, strict=True)) for row in ledger.fetchall()]
    reasons = _reason_counts(con, lake.partition_file(QUARANTINE, day))
    master_quarantine = lake.partition_file(CUSTOMER_MASTER_QUARANTINE, day)
    master = sql.relation(
        con,
        "reports/ingest_customer_master_files",
        {
            "customer_master_file": str(lake.partition_file(CUSTOMER_MASTER, day)),
            "quarantine_file": str(master_quarantine),
        },
    )
    master_files = [dict(zip(master.columns, row, strict=True)) for row in master.fetchall()]
    return IngestReport(day, files, reasons, master_files, _reason_counts(con, master_quarantine))


def _reason_counts(con: duckdb.DuckDBPyConnection, quarantine_file: Path) -> dict[str, int]:
    reasons = con.execute(
        "select quarantine_reason, count(*) from read_parquet($path) group by all order by all",
        {"path": str(quarantine_file)},
    ).fetchall()
    return {reason: count for reason, count in reasons}
