"""The index of past reports: one line per report, newest first, with its headline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.atomic import write_bytes as write_bytes_atomically
from pipeline.report.files import read_json
from pipeline.report.templating import render

INDEX_FILE = "index.html"
META_DIR = "meta"
_REPORT_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.html$")


def report_dates(directory: Path) -> list[str]:
    """The dates of the reports in ``directory``, newest first."""
    if not directory.is_dir():
        return []
    found = (_REPORT_NAME.match(child.name) for child in directory.iterdir())
    return sorted((match.group(1) for match in found if match), reverse=True)


def write_index(directory: Path) -> Path:
    """Rewrite ``directory``/index.html from the reports there and their headlines."""
    rows = []
    for day in report_dates(directory):
        meta = read_json(directory / META_DIR / f"{day}.json")
        rows.append(_row(day, meta if isinstance(meta, dict) else {}))
    page = render("index.html.j2", days=f"{len(rows):,}", rows=rows)
    target = directory / INDEX_FILE
    write_bytes_atomically(target, page.encode("utf-8"))
    return target


# The headline figures in the index's columns, in their order (templates/index.html.j2).
_FIGURES = (
    "customers_scored",
    "customers_known",
    "window_revenue",
    "net_sales_today",
    "danger_entries",
    "value_at_risk",
    "customers_in_danger",
)


def _row(day: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A report's row: its date and its figures (blank where its headline has none)."""
    figures = [meta.get(key) for key in _FIGURES]
    return {
        "day": day,
        "figures": ["" if value is None else f"{float(value):,.0f}" for value in figures],
    }
