"""The issue's acceptance: the demo's report in a real headless Chromium loads without a
console error, and every chart drew."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.config import Settings
from pipeline.report import build_report
from tests.report.browser import chromium, devtools, load_and_probe, screenshot
from tests.report.support import LAST

# A chart drew when a real share of it is painted and some of it in colour (axes and text
# alone are grey): an empty or broken SVG paints nothing.
MIN_PAINTED = 0.02
MIN_COLOURED = 0.002


def test_the_report_renders_in_chromium_without_errors_and_every_chart_drew(
    lake: Settings, tmp_path: Path
) -> None:
    binary = chromium()
    report = build_report(lake, LAST)
    url = report.path.as_uri()
    shot = tmp_path / "report.png"
    screenshot(binary, url, shot, tmp_path / "profile-shot")
    assert shot.stat().st_size > 50_000  # a tall page of charts, not a blank one
    if os.environ.get("RFM_REPORT_SCREENSHOT"):  # keep it, e.g. to look at in CI
        shutil.copy(shot, os.environ["RFM_REPORT_SCREENSHOT"])
    with devtools(binary, tmp_path / "profile") as tools:
        charts, errors = load_and_probe(tools, url)
        index_charts, index_errors = load_and_probe(tools, report.index_path.as_uri())
    assert errors == [] and index_errors == [] and index_charts == []
    assert [chart["name"] for chart in charts] == [
        "segments",
        "segment_trend",
        "rf_grid",
        "pareto",
        "clusters",
        "stages",
        "transitions",
        "danger_entries",
        "ingest",
    ]
    for chart in charts:
        assert chart["svg"] and chart["width"] > 300 and chart["height"] > 150, chart
        assert chart["marks"] > 20, chart
        assert chart["painted"] > MIN_PAINTED and chart["coloured"] > MIN_COLOURED, chart


def test_a_broken_chart_is_caught(lake: Settings, tmp_path: Path) -> None:
    """The probe itself: a page whose chart is empty and whose script fails is refused."""
    binary = chromium()
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        '<figure class="chart" data-chart="empty"><svg viewBox="0 0 400 200" width="400" '
        'height="200"></svg></figure><script>undefinedFunction();</script></body></html>',
        encoding="utf-8",
    )
    with devtools(binary, tmp_path / "profile") as tools:
        charts, errors = load_and_probe(tools, page.as_uri())
    assert errors and "undefinedFunction" in errors[0]
    assert charts[0]["painted"] == 0 and charts[0]["marks"] == 0
