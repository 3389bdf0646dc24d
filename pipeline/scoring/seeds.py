"""The segment map and the RFM types (``sql/seeds``) as the lists customer_segments binds."""

from __future__ import annotations

from pipeline import seeds


def segment_lookups() -> dict[str, list[str]]:
    """The seeds as the position-indexed lists customer_segments.sql binds, so that
    scoring every customer needs no join."""
    cells = sorted(
        seeds.rows("rfm_segments"),
        key=lambda row: (row["r_score"], row["f_score"], row["m_score"]),
    )
    types = sorted(
        seeds.rows("rfm_types"),
        key=lambda row: (not row["r_up"], not row["f_up"], not row["m_up"]),
    )
    if len(cells) != 125 or len(types) != 8:
        raise ValueError("sql/seeds: rfm_segments needs the 125 cells, rfm_types the 8 types")
    return {
        "segment_by_cell": [str(row["segment"]) for row in cells],
        "pattern_by_type": [str(row["rfm_pattern"]) for row in types],
        "type_by_type": [str(row["rfm_type"]) for row in types],
    }
