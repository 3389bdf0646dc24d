"""The index of past reports: one line per report, newest first, with its headline."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any

from pipeline.atomic import write_bytes as write_bytes_atomically
from pipeline.report.files import read_json
from pipeline.report.page import CSS

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
    body = "".join(rows) if rows else '<tr><td colspan="8" class="muted">No report yet.</td></tr>'
    header = "".join(
        f'<th class="{css}">{label}</th>'
        for label, css in (
            ("as of", ""),
            ("customers scored", "n"),
            ("known", "n"),
            ("12-month net spend", "n"),
            ("net sales of the day", "n"),
            ("entered danger", "n"),
            ("value at risk", "n"),
            ("in danger", "n"),
        )
    )
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer reports</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>Customer reports<small>{len(rows):,} days</small></h1>
<nav>One report per run, newest first: open a date to see that day as it was.</nav></header>
<main><section><div class="scroll"><table><thead><tr>{header}</tr></thead>
<tbody>{body}</tbody></table></div></section></main>
</body>
</html>
"""
    target = directory / INDEX_FILE
    write_bytes_atomically(target, page.encode("utf-8"))
    return target


def _row(day: str, meta: dict[str, Any]) -> str:
    def number(key: str) -> str:
        value = meta.get(key)
        return "" if value is None else f"{float(value):,.0f}"

    cells = [
        f'<td><a href="{day}.html">{day}</a></td>',
        *(
            f'<td class="n">{number(key)}</td>'
            for key in (
                "customers_scored",
                "customers_known",
                "window_revenue",
                "net_sales_today",
                "danger_entries",
                "value_at_risk",
                "customers_in_danger",
            )
        ),
    ]
    return "<tr>" + escape("").join(cells) + "</tr>"
