"""The seeds (``sql/seeds/*.csv``) as typed temporary tables, and the model's clusters."""

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


def load_seeds(con: duckdb.DuckDBPyConnection) -> None:
    """Every seed as a temporary table named after its file (tiny, so joins build on it)."""
    for name, columns in SEED_COLUMNS.items():
        path = sql.sql_root() / "seeds" / f"{name}.csv"
        con.read_csv(str(path), header=True, columns=columns).create_view(f"{name}_csv")
        con.execute(f'create or replace temp table "{name}" as select * from "{name}_csv"')


def seed_rows(con: duckdb.DuckDBPyConnection, name: str) -> list[dict[str, Any]]:
    """A loaded seed's rows, for checks and docs."""
    relation = con.sql(f'select * from "{name}"')
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
    return {
        "segment_by_cell": [str(row["segment"]) for row in cells],
        "pattern_by_type": [str(row["rfm_pattern"]) for row in types],
        "type_by_type": [str(row["rfm_type"]) for row in types],
    }
