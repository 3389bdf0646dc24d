"""What the lake holds: per-date ingest figures, quarantine reasons and the files that
were not ingested (the file ledger's rejected and skipped rows), read from Parquet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from pipeline import sql
from pipeline.duck import rows
from pipeline.ingest.run import LAKE_TABLES
from pipeline.lake import Lake
from pipeline.tables import FILES, LEDGER, QUARANTINE


@dataclass(frozen=True)
class LakeStatus:
    """Ingest figures for a range of dates."""

    days: list[dict[str, object]]
    quarantine_reasons: list[dict[str, object]]
    # Dates with lake partitions but no ledger: an ingest died mid-write; re-run them.
    incomplete_dates: list[date]
    # Dates recorded as empty: no export file, an empty ledger partition.
    empty_dates: list[date] = field(default_factory=list)
    # The file ledger's rejected and skipped files (of each date's latest attempt):
    # export_date, source_file, file_kind, outcome, outcome_reason, error.
    files_not_ingested: list[dict[str, object]] = field(default_factory=list)

    def total(self, column: str) -> int:
        return sum(int(str(day[column])) for day in self.days)


def lake_status(lake: Lake, start: date, end: date) -> LakeStatus:
    """Figures for the ingested dates between ``start`` and ``end`` (inclusive)."""
    ledger_files = _partition_files(lake, LEDGER, start, end)
    quarantine_files = _partition_files(lake, QUARANTINE, start, end)
    file_ledger_files = _partition_files(lake, FILES, start, end)
    bounds = {"start_date": start, "end_date": end}
    con = duckdb.connect()
    try:
        days = (
            _rows(con, "reports/ingest_days", {**bounds, "ledger_files": ledger_files})
            if ledger_files
            else []
        )
        reasons = (
            _rows(
                con, "reports/quarantine_reasons", {**bounds, "quarantine_files": quarantine_files}
            )
            if quarantine_files
            else []
        )
        not_ingested = (
            _rows(
                con, "reports/ingest_files_not_ingested", {"file_ledger_files": file_ledger_files}
            )
            if file_ledger_files
            else []
        )
    finally:
        con.close()
    with_files = {day["export_date"] for day in days}
    recorded = [day for day in lake.partition_dates(LEDGER) if start <= day <= end]
    empty = [day for day in recorded if day not in with_files]
    return LakeStatus(days, reasons, _incomplete_dates(lake, start, end), empty, not_ingested)


def _incomplete_dates(lake: Lake, start: date, end: date) -> list[date]:
    # The file ledger is written by failed attempts too: it does not make a date incomplete.
    written = {
        day
        for table in LAKE_TABLES
        if table not in (LEDGER, FILES)
        for day in lake.partition_dates(table)
    }
    complete = set(lake.partition_dates(LEDGER))
    return sorted(day for day in written - complete if start <= day <= end)


def _partition_files(lake: Lake, table: str, start: date, end: date) -> list[str]:
    days = [day for day in lake.partition_dates(table) if start <= day <= end]
    return [str(path) for path in lake.existing_partitions(table, days)]


def _rows(
    con: duckdb.DuckDBPyConnection, model: str, params: dict[str, object]
) -> list[dict[str, object]]:
    relation = sql.relation(con, model, params)
    return rows(relation)
