"""Data checks kept beside the SQL (``sql/checks/<table>.sql``), run on what was written.

Each check query reads the table's view and returns one row per check with the number
of failing rows. A failing check removes the partition just written and raises, so a
later step never reads a table that breaks its grain.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from pipeline import sql
from pipeline.errors import DataCheckError
from pipeline.lake import remove_partition


def check_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    partition: Path,
    params: Mapping[str, Any] | None = None,
) -> None:
    """Run ``sql/checks/<table>.sql`` over the written partition (as the view ``table``).

    Raises:
        DataCheckError: some check failed; the partition is removed.
    """
    con.read_parquet(str(partition), hive_partitioning=True).create_view(table, replace=True)
    results = sql.relation(con, f"checks/{table}", params).fetchall()
    failed = {name: count for name, count in results if count}
    if failed:
        remove_partition(partition)
        described = ", ".join(f"{name} ({count} rows)" for name, count in sorted(failed.items()))
        raise DataCheckError(f"{table} {partition.parent.name} failed its checks: {described}")
