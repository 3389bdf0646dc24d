"""The lake partitions a scoring step reads, registered as views its SQL selects from."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import duckdb

from pipeline.errors import NotIngestedError
from pipeline.lake import Lake
from pipeline.tables import LEDGER, ORDER_LINES


def require_ingested(lake: Lake, day: date) -> None:
    """A date is readable once its ingest ledger partition exists (written last)."""
    if not lake.partition_file(LEDGER, day).is_file():
        raise NotIngestedError(
            f"{day} is not ingested (no {LEDGER} partition in {lake.root}): "
            f"run `rfm-pipeline ingest --date {day}` first"
        )


def ingested_dates(lake: Lake, through: date) -> list[date]:
    """Every completely ingested date up to and including ``through``."""
    return [day for day in lake.partition_dates(LEDGER) if day <= through]


def register_order_lines(con: duckdb.DuckDBPyConnection, lake: Lake, days: Iterable[date]) -> None:
    """The view ``order_lines``: the given dates' lines, with their export_date."""
    files = [str(path) for path in lake.existing_partitions(ORDER_LINES, days)]
    register_parquet(con, "order_lines", files)


def register_parquet(
    con: duckdb.DuckDBPyConnection,
    view: str,
    files: list[str],
    *,
    union_by_name: bool = False,
    customers: str | None = None,
) -> None:
    """A view over Parquet files, hive partition columns included; with
    ``union_by_name``, files whose columns differ are read by column name; with
    ``customers`` (a registered table or view), a table with a ``customer_id`` column
    keeps only those customers' rows."""
    if not files:
        raise ValueError(f"no files for view {view}")
    relation = con.read_parquet(files, hive_partitioning=True, union_by_name=union_by_name)
    if customers is not None and "customer_id" in relation.columns:
        relation = relation.join(con.table(customers), "customer_id", how="semi")
    relation.create_view(view, replace=True)


def date_range(first: date, last: date) -> list[date]:
    """Every date from ``first`` to ``last``, inclusive."""
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
