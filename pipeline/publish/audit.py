"""The contract checks of each publish attempt, as Parquet files the targets show.

- A publish's checks are staged with its tables and published like them: an immutable,
  content-named file per as-of date (table ``publish_audit`` of the manifest), so a target
  shows the checks of exactly the publishes it serves.
- A held-back attempt's checks go to ``audit/blocked-<as-of date>.parquet`` (the latest
  held-back attempt per date). They never claim a date is served (``publish_status`` is
  ``blocked``), so the serving file reads them through a glob that sees attempts made
  after it was built; an empty ``audit/blocked-none.parquet`` keeps that glob non-empty.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipeline.lake import write_partition
from pipeline.publish.catalog import AUDIT_TABLE, load_catalog
from pipeline.publish.contracts import CheckResult, audit_rows

AUDIT_DIR = "audit"
_BLOCKED_PREFIX = "blocked-"
_PLACEHOLDER = f"{_BLOCKED_PREFIX}none.parquet"
# The audit's columns, in order (``as_of_date`` last).
_COLUMNS = (
    ("table_name", "varchar"),
    ("check_name", "varchar"),
    ("column_name", "varchar"),
    ("passed", "boolean"),
    ("failing_rows", "bigint"),
    ("detail", "varchar"),
    ("publish_status", "varchar"),
    ("as_of_date", "date"),
)
_NAMES = tuple(name for name, _ in _COLUMNS)
_ROW_TYPE = "struct(" + ", ".join(f"{name} {kind}" for name, kind in _COLUMNS) + ")"


def write_audit(
    con: duckdb.DuckDBPyConnection, results: list[CheckResult], day: date, target: Path
) -> None:
    """The attempt's checks as one Parquet file (``as_of_date`` last, as before)."""
    columns = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS)
    con.execute(f"create or replace temp table audit ({columns})")
    rows = [dict(zip(_NAMES, (*row, day), strict=True)) for row in audit_rows(results)]
    # One insert of the whole batch, bound as a list of structs (executemany inserts row
    # by row, 2 ms a row; an Arrow table would import pandas, a second of start-up).
    con.execute(
        f"insert into audit select unnest($rows::{_ROW_TYPE}[], recursive := true)",
        {"rows": rows},
    )
    write_partition(con.table("audit").order("table_name, check_name, column_name"), target)


def blocked_file(published: Path, day: date) -> Path:
    return published / AUDIT_DIR / f"{_BLOCKED_PREFIX}{day.isoformat()}.parquet"


def blocked_glob(published: Path) -> Path:
    """The pattern the serving file reads held-back attempts through (never empty)."""
    placeholder = published / AUDIT_DIR / _PLACEHOLDER
    if not placeholder.is_file():
        con = duckdb.connect()
        try:
            write_audit(con, [], date(1970, 1, 1), placeholder)
        finally:
            con.close()
    return published / AUDIT_DIR / f"{_BLOCKED_PREFIX}*.parquet"


def audit_file(published: Path, day: date) -> Path | None:
    """The checks of ``day``: those it is published with, else its held-back attempt's."""
    entry = load_catalog(published).entries(AUDIT_TABLE).get(day)
    if entry is not None and (published / entry.file).is_file():
        return published / entry.file
    blocked = blocked_file(published, day)
    return blocked if blocked.is_file() else None
