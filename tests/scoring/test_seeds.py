"""The seeds are complete, and the segment map is the grid the docs show."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from tests.scoring.history import SEGMENTS

REPO = Path(__file__).resolve().parents[2]


def _rows(name: str) -> list[dict[str, str]]:
    with (REPO / "sql" / "seeds" / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _documented_grid() -> dict[tuple[int, int], str]:
    """R score x FM score -> segment, from the table in docs/scoring.md."""
    text = (REPO / "docs" / "scoring.md").read_text(encoding="utf-8")
    grid = {}
    for match in re.finditer(r"^\| \*\*(\d)\*\* \|(.+)\|$", text, re.MULTILINE):
        names = [name.strip() for name in match.group(2).split("|")]
        for fm, name in enumerate(names, start=1):
            grid[int(match.group(1)), fm] = name
    return grid


def test_every_one_of_the_125_cells_has_exactly_one_segment() -> None:
    rows = _rows("rfm_segments.csv")
    cells = [(int(r["r_score"]), int(r["f_score"]), int(r["m_score"])) for r in rows]

    assert sorted(cells) == [
        (r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)
    ]
    assert {row["segment"] for row in rows} == SEGMENTS


def test_segment_map_is_the_documented_grid() -> None:
    grid = _documented_grid()
    assert len(grid) == 25

    for row in _rows("rfm_segments.csv"):
        r, f, m = int(row["r_score"]), int(row["f_score"]), int(row["m_score"])
        fm = (f + m + 1) // 2  # round half up
        assert int(row["fm_score"]) == fm
        assert row["segment"] == grid[r, fm], row


def test_the_8_types_follow_their_arrows() -> None:
    rows = _rows("rfm_types.csv")

    assert len({(r["r_up"], r["f_up"], r["m_up"]) for r in rows}) == 8
    for row in rows:
        arrows = "".join("↑" if row[k] == "true" else "↓" for k in ("r_up", "f_up", "m_up"))
        assert row["rfm_pattern"] == f"R{arrows[0]}F{arrows[1]}M{arrows[2]}"
        important = row["m_up"] == "true"  # high spend makes a type "important"
        assert row["rfm_type"].startswith("important" if important else "general")
