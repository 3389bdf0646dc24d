"""The report explains its terms where they appear, shows negative shares honestly, and
highlights the segments that moved in the weekly chart."""

from __future__ import annotations

import re

from pipeline.config import Settings
from pipeline.report import build_report
from pipeline.report.page import Cell, _percent, _points
from pipeline.report.templating import environment
from tests.report.support import LAST
from tests.report.test_content import _text


def _drawn(cell: Cell) -> str:
    """The cell as the page draws it (the ``cell`` macro of templates/macros.html.j2)."""
    return str(environment().get_template("macros.html.j2").module.cell(cell))


def test_a_negative_share_is_never_minus_zero() -> None:
    assert _drawn(_percent(-0.00003)) == (
        '<span class="down" title="negative: more returned than bought">'
        "below 0% (under -0.1%)</span>"
    )
    assert ">-2.5%<" in _drawn(_percent(-0.025))
    assert _drawn(_percent(0.0)) == "0.0%"
    assert _drawn(_percent(0.471)) == "47.1%"
    assert "pts" in _drawn(_points(0.02)) and "pp" not in _drawn(_points(0.02))


def test_the_page_explains_its_terms_and_highlights_the_weekly_movers(lake: Settings) -> None:
    page = build_report(lake, LAST).path.read_text(encoding="utf-8")
    text = _text(page)
    assert "-0%" not in text and "-0.0%" not in text
    assert "Separation (silhouette, from -1 to 1; above 0.5 is clear, under 0.25 weak)" in text
    assert "↑ above the mean of all customers, ↓ below (R↑: bought more recently" in text
    assert "its change is in percentage points (pts: from 25% to 27% is +2 pts)" in text
    assert " pp" not in text
    assert "the three segments whose customers changed most over the weeks in colour" in text
    # The chart names the highlighted segments with their change, the rest as one entry.
    chart = (
        page[page.index('id="chart-segment_trend"') :]
        if 'id="chart-segment_trend"' in page
        else page
    )
    assert "other segments" in chart
    assert len(re.findall(r"\((?:[+-]\d[\d,]*|\+0)\)", _text(chart))) >= 3
