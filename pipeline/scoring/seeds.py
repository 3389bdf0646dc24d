"""The seeds (``sql/seeds/*.csv``): small hand-kept tables, read typed, bound as lists."""

from __future__ import annotations

from typing import Any

import duckdb

from pipeline import sql

SEED_COLUMNS = {
    "rfm_segments": {
        "r_score": "integer",
        "f_score": "integer",
        "m_score": "integer",
        "fm_score": "integer",
        "segment": "varchar",
    },
    "rfm_types": {
        "r_up": "boolean",
        "f_up": "boolean",
        "m_up": "boolean",
        "rfm_pattern": "varchar",
        "rfm_type": "varchar",
    },
}


def seed_rows(con: duckdb.DuckDBPyConnection, name: str) -> list[dict[str, Any]]:
    """A seed's rows, typed by ``SEED_COLUMNS``."""
    path = sql.sql_root() / "seeds" / f"{name}.csv"
    relation = con.read_csv(str(path), header=True, columns=SEED_COLUMNS[name])
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def segment_lookups(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The seeds as the position-indexed lists customer_segments.sql binds."""
    cells = sorted(
        seed_rows(con, "rfm_segments"),
        key=lambda row: (row["r_score"], row["f_score"], row["m_score"]),
    )
    types = sorted(
        seed_rows(con, "rfm_types"),
        key=lambda row: (not row["r_up"], not row["f_up"], not row["m_up"]),
    )
    if len(cells) != 125 or len(types) != 8:
        raise ValueError("sql/seeds: rfm_segments needs the 125 cells, rfm_types the 8 types")
    return {
        "segment_by_cell": [str(row["segment"]) for row in cells],
        "pattern_by_type": [str(row["rfm_pattern"]) for row in types],
        "type_by_type": [str(row["rfm_type"]) for row in types],
    }
