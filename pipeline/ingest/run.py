"""Ingest one logical date: the day's export files into the lake's tables.

The sales exports become order_lines and quarantined_order_lines; the optional customer
master becomes customer_master and quarantined_customer_master; ingest_files records
every matched path's outcome; the ingest_ledger partition, written last, marks the date
complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from pipeline import sql
from pipeline.config import Settings, normalize_header
from pipeline.declarations import build_intermediate, run_model
from pipeline.duck import connect, release, rows
from pipeline.errors import BadFilesError, MissingExportError, RejectedFileError
from pipeline.ingest import customer_master
from pipeline.ingest.customer_master import MASTER_FILES_TABLE
from pipeline.ingest.files import ExportFile, FileOutcome, FoundFiles, find_export_files
from pipeline.ingest.loading import create_raw_table, load_export_file
from pipeline.ingest.local_times import dst_ranges
from pipeline.ingest.rates import load_exchange_rates
from pipeline.lake import Lake, remove_partition
from pipeline.tables import (
    CUSTOMER_MASTER,
    CUSTOMER_MASTER_QUARANTINE,
    FILES,
    LEDGER,
    ORDER_LINES,
    QUARANTINE,
)
from pipeline.workspace import workspace

# The ledger partition is removed before and written after the others: a date with a
# ledger partition is completely ingested, whatever moment an earlier run died at.
LAKE_TABLES = (
    QUARANTINE, ORDER_LINES, CUSTOMER_MASTER_QUARANTINE, CUSTOMER_MASTER, FILES, LEDGER
)  # fmt: skip
SALES = "sales"
MASTER = "customer_master"
# A totals row's text (lower case), in the ids of a row whose time does not parse.
FOOTER_PATTERN = (
    r"^\W*(grand |page )?(total|totals|subtotal|sum|summary|count)([^a-z0-9_]|$)"
    r"|^\W*(合计|总计|小计|共计|汇总)"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class IngestReport:
    """What one date's ingest did, file by file.

    ``files`` and ``quarantine_reasons`` are the sales exports' (the ledger's rows);
    the customer master's files are counted apart, in ``customer_master_files`` (rows_in,
    rows_loaded, rows_quarantined) and ``customer_master_reasons``. ``file_outcomes`` is
    the file ledger: every matched path, ingested, rejected or skipped.
    """

    export_date: date
    files: list[dict[str, object]]
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    customer_master_files: list[dict[str, object]] = field(default_factory=list)
    customer_master_reasons: dict[str, int] = field(default_factory=dict)
    file_outcomes: list[dict[str, object]] = field(default_factory=list)

    def total(self, column: str) -> int:
        return sum(int(str(row[column])) for row in self.files)

    @property
    def files_not_ingested(self) -> list[dict[str, object]]:
        return [row for row in self.file_outcomes if row["outcome"] != "ingested"]


@dataclass
class _Attempt:
    """The outcome of every matched path, as the run learns it."""

    kinds: dict[str, str] = field(default_factory=dict)  # name -> sales | customer_master
    not_read: list[FileOutcome] = field(default_factory=list)
    read: dict[str, ExportFile] = field(default_factory=dict)
    read_as: dict[str, dict[str, str]] = field(default_factory=dict)

    def reject(self, export: ExportFile, error: RejectedFileError) -> None:
        outcome = FileOutcome(
            export.name, "rejected", error.code, str(error), export.sha256, export.size_bytes
        )
        self.not_read.append(outcome)

    @property
    def bad(self) -> list[FileOutcome]:
        return [outcome for outcome in self.not_read if outcome.reason != "date_failed"]

    def rows(self, failure: str | None = None) -> list[list[object]]:
        """The file ledger's rows; ``failure`` says why the files read were not ingested."""
        rows: list[list[object]] = []
        for name, export in self.read.items():
            if name in self.read_as:
                how = self.read_as[name]
                outcome, reason, error = (
                    ("skipped", "date_failed", f"{name}: read, but not ingested: {failure}")
                    if failure
                    else ("ingested", None, None)
                )
                rows.append(
                    [
                        self.kinds[name], name, outcome, reason, error, export.sha256,
                        export.size_bytes, export.file_format, how["encoding"], how["delimiter"],
                    ]
                )  # fmt: skip
        for item in self.not_read:
            rows.append(
                [
                    self.kinds[item.name], item.name, item.outcome, item.reason, item.error,
                    item.sha256, item.size_bytes, None, None, None,
                ]
            )  # fmt: skip
        return rows


def ingest_date(settings: Settings, day: date, progress: Progress | None = None) -> IngestReport:
    """Read the day's exports, validate them, and replace the day's lake partitions.

    Re-running a date replaces its partitions with byte-identical files when the inputs
    are unchanged. Every matched path gets a row in the file ledger (``ingest_files``).
    With ``source.on_bad_file = "fail"`` a rejected (or in-transfer) file fails the date:
    only the file ledger partition is written; with ``"quarantine"`` the others are
    ingested.

    Raises:
        MissingExportError: no sales export file could be ingested and
            ``ingest.missing_export = "fail"`` (whether or not a customer master arrived).
        BadFilesError: a file was rejected or skipped and ``source.on_bad_file = "fail"``.
        ExchangeRatesError: the configured exchange rates file is missing or malformed.
    """
    report_progress = progress or (lambda _message: None)
    paths, source = settings.paths, settings.source
    found = find_export_files(
        paths.incoming,
        source.file_pattern,
        day,
        symlinks=source.symlinks,
        hidden_files=source.hidden_files,
    )
    masters = customer_master.find_master_files(paths.incoming, source, day)
    attempt = _Attempt()
    both = _classify(attempt, found, masters)
    sales = [export for export in found.exports if export.name not in both]
    master_files = [master for master in masters.exports if master.name not in both]
    if not attempt.kinds and settings.ingest.missing_export == "fail":
        pattern = source.file_pattern.format(date=day)
        raise MissingExportError(
            f"no export file for {day} in {paths.incoming} (pattern {pattern!r})"
        )
    lake = Lake(paths.lake)
    with workspace(paths.state, "ingest", day) as scratch:
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            _load_exports(con, sales, attempt, settings, scratch, report_progress)
            _register_export_files(con, sales, attempt.read_as)
            master_read_as = customer_master.load_master_files(
                con, master_files, source, scratch, report_progress, attempt.reject
            )
            attempt.read_as.update(master_read_as)
            _register_export_files(con, master_files, attempt.read_as, MASTER_FILES_TABLE)
            _check_attempt(con, lake, day, attempt, settings)
            load_exchange_rates(con, settings)
            report_progress("validating")
            staging = _staging_params(settings, day)
            build_intermediate(con, settings, "staging/stg_sales_export_lines", staging)
            build_intermediate(
                con, settings, "intermediate/int_sales_export_lines_classified", {"as_of_date": day}
            )
            build_intermediate(
                con,
                settings,
                "staging/stg_customer_master_rows",
                customer_master.staging_params(source, day),
            )
            build_intermediate(con, settings, "intermediate/int_customer_master_rows_classified")
            _register_file_outcomes(con, attempt.rows())
            build_intermediate(con, settings, "intermediate/int_ingest_file_row_counts")
            remove_partition(lake.partition_file(LEDGER, day))
            for table in LAKE_TABLES:
                report_progress(f"writing {table}")
                run_model(con, settings, f"lake/{table}", day)
            return _report(con, lake, day)
        finally:
            release(con)


def _classify(attempt: _Attempt, found: FoundFiles, masters: FoundFiles) -> set[str]:
    """Record every matched path's kind; reject a path both patterns match (once)."""
    for outcome in found.not_read:
        attempt.kinds[outcome.name] = SALES
    for export in found.exports:
        attempt.kinds[export.name] = SALES
        attempt.read[export.name] = export
    attempt.not_read.extend(found.not_read)
    both: set[str] = set()
    for outcome in masters.not_read:
        if outcome.name not in attempt.kinds:
            attempt.kinds[outcome.name] = MASTER
            attempt.not_read.append(outcome)
    for master in masters.exports:
        if master.name in attempt.kinds:
            both.add(master.name)
            attempt.read.pop(master.name, None)
            attempt.reject(
                master,
                RejectedFileError(
                    master.name,
                    "matches both source.file_pattern and source.customer_file_pattern",
                    code="matches_both_patterns",
                ),
            )
        else:
            attempt.kinds[master.name] = MASTER
            attempt.read[master.name] = master
    return both


def _check_attempt(
    con: duckdb.DuckDBPyConnection, lake: Lake, day: date, attempt: _Attempt, settings: Settings
) -> None:
    """Fail the date, its file ledger written, when the policy or the missing rule says so.

    Raises:
        BadFilesError: a file was not read and ``source.on_bad_file = "fail"``.
        MissingExportError: no sales export was read and ``missing_export = "fail"``.
    """
    bad = attempt.bad
    failed = bool(bad) and settings.source.on_bad_file == "fail"
    no_sales = not any(attempt.kinds[name] == SALES for name in attempt.read_as)
    missing = no_sales and settings.ingest.missing_export == "fail"
    if not failed and not missing:
        return
    failure = (
        "another file of the date was not read and source.on_bad_file = 'fail'"
        if failed
        else "no sales export of the date could be read and ingest.missing_export = 'fail'"
    )
    _register_file_outcomes(con, attempt.rows(failure))
    con.execute(
        "create or replace temp table int_ingest_file_row_counts (file_kind varchar,"
        " source_file varchar, rows_in bigint, rows_accepted bigint,"
        " rows_quarantined bigint, rows_duplicate bigint)"
    )
    run_model(con, settings, f"lake/{FILES}", day)
    problems = "; ".join(outcome.error for outcome in bad) or "no sales export file matched"
    if failed:
        raise BadFilesError(
            f"{problems} ({day} not ingested: source.on_bad_file = 'fail'; the lake keeps"
            f" its previous partitions, the file ledger {FILES} records why)",
            bad[0].name,
            bad[0].reason,
        )
    pattern = settings.source.file_pattern.format(date=day)
    raise MissingExportError(
        f"no export file for {day} could be ingested in {settings.paths.incoming}"
        f" (pattern {pattern!r}): {problems}"
    )


def _load_exports(
    con: duckdb.DuckDBPyConnection,
    exports: list[ExportFile],
    attempt: _Attempt,
    settings: Settings,
    scratch: Path,
    report_progress: Progress,
) -> None:
    """Load each file; a file that cannot be read whole is recorded as rejected."""
    create_raw_table(con)
    file_order = 0
    for export in exports:
        report_progress(f"reading {export.name}")
        try:
            attempt.read_as[export.name] = load_export_file(
                con, export, file_order, settings.source, scratch
            )
        except RejectedFileError as error:
            attempt.reject(export, error)
            continue
        file_order += 1


def _register_file_outcomes(con: duckdb.DuckDBPyConnection, rows: list[list[object]]) -> None:
    con.execute(
        "create or replace temp table file_outcomes (file_kind varchar, source_file varchar,"
        " outcome varchar, outcome_reason varchar, error varchar, file_sha256 varchar,"
        " file_bytes bigint, file_format varchar, encoding varchar, delimiter varchar)"
    )
    if rows:
        con.executemany("insert into file_outcomes values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _register_export_files(
    con: duckdb.DuckDBPyConnection,
    exports: list[ExportFile],
    read_as: dict[str, dict[str, str]],
    table: str = "export_files",
) -> None:
    """The files read whole (the ledger's rows); rejected ones are not among them."""
    con.execute(
        f"create or replace temp table {table} (source_file varchar, file_sha256 varchar,"
        " file_bytes bigint, file_format varchar, encoding varchar, delimiter varchar)"
    )
    rows = [
        [
            export.name,
            export.sha256,
            export.size_bytes,
            export.file_format,
            read_as[export.name]["encoding"],
            read_as[export.name]["delimiter"],
        ]
        for export in exports
        if export.name in read_as
    ]
    if rows:
        con.executemany(f"insert into {table} values (?, ?, ?, ?, ?, ?)", rows)


def _staging_params(settings: Settings, day: date) -> dict[str, object]:
    source = settings.source
    zone = ZoneInfo(source.timezone)
    day_start = datetime.combine(day, time(), zone).astimezone(UTC)
    day_end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    ingest = settings.ingest
    window_start = day_start - timedelta(hours=ingest.late_tolerance_hours)
    window_end = day_end + timedelta(hours=ingest.early_tolerance_hours)
    # Local times that may land in the window: a day's margin either side.
    gaps, folds = dst_ranges(
        source.timezone, window_start - timedelta(days=1), window_end + timedelta(days=1)
    )
    return {
        "timezone": source.timezone,
        "timestamp_formats": source.timestamp_formats,
        "window_start_utc": window_start,
        "window_end_utc": window_end,
        "decimal_separator": source.decimal_separator,
        "thousands_separator": source.thousands_separator,
        "default_currency": source.currency,
        "accepted_currencies": source.accepted_currencies,
        "alias_names": list(source.currency_aliases),
        "alias_codes": list(source.currency_aliases.values()),
        # Lowercased as the staging model lowercases the export's status.
        "return_statuses": [status.lower() for status in source.return_statuses],
        "cancellation_statuses": [status.lower() for status in source.cancellation_statuses],
        "cancellation_prefix": source.cancellation_order_prefix,
        "order_id_headers": [normalize_header(name) for name in source.columns.order_id],
        "ordered_at_headers": [normalize_header(name) for name in source.columns.ordered_at],
        "footer_pattern": FOOTER_PATTERN,
        "has_dst_gaps": bool(gaps),
        "dst_gaps": gaps,
        "has_dst_folds": bool(folds),
        "dst_folds": folds,
        "dst_policy": ingest.dst_local_times,
        "amount_tolerance": ingest.amount_tolerance,
        "inconsistent_amount": ingest.inconsistent_amount,
        "max_quantity": ingest.max_quantity,
        "max_unit_price": ingest.max_unit_price,
        "max_amount": ingest.max_amount,
    }


def _report(con: duckdb.DuckDBPyConnection, lake: Lake, day: date) -> IngestReport:
    """What landed, read back from the partitions just written."""
    ledger = con.sql(
        "select * from read_parquet($path)", params={"path": str(lake.partition_file(LEDGER, day))}
    )
    files = rows(ledger)
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
    master_files = rows(master)
    outcomes = con.sql(
        "select * from read_parquet($path)", params={"path": str(lake.partition_file(FILES, day))}
    )
    file_outcomes = rows(outcomes)
    return IngestReport(
        day,
        files,
        reasons,
        master_files,
        _reason_counts(con, master_quarantine),
        file_outcomes,
    )


def _reason_counts(con: duckdb.DuckDBPyConnection, quarantine_file: Path) -> dict[str, int]:
    reasons = con.execute(
        "select quarantine_reason, count(*) from read_parquet($path) group by all order by all",
        {"path": str(quarantine_file)},
    ).fetchall()
    return {reason: count for reason, count in reasons}
