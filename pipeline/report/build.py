"""Build the report of one logical date: figures, charts, page, index."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pipeline.atomic import write_bytes as write_bytes_atomically
from pipeline.config import Settings
from pipeline.duck import connect, release
from pipeline.report.charts import all_charts
from pipeline.report.figures import collect
from pipeline.report.files import write_json
from pipeline.report.headline import Headline, headline
from pipeline.report.index import META_DIR, write_index
from pipeline.report.page import render
from pipeline.report.runs import read_run, reports_dir
from pipeline.workspace import workspace


@dataclass(frozen=True)
class ReportResult:
    """What building a report wrote, and its headline figures."""

    as_of_date: date
    path: Path
    index_path: Path
    size_bytes: int
    seconds: float
    headline: Headline


def report_file(settings: Settings, day: date) -> Path:
    return reports_dir(settings) / f"{day.isoformat()}.html"


def build_report(settings: Settings, day: date) -> ReportResult:
    """Write ``<published>/reports/<day>.html`` and rewrite the index beside it.

    A function of the lake's partitions up to ``day`` (never later ones) and of the
    date's run record: building it again gives the same bytes.

    Raises:
        NotScoredError: the date is not ingested, scored and staged.
    """
    started = time.perf_counter()
    directory = reports_dir(settings)
    with workspace(settings.paths.state, "report", day) as scratch:
        con = connect(settings.duckdb, spill_dir=scratch / "spill")
        try:
            data = collect(settings, day, con)
        finally:
            release(con)
    top_share = settings.scoring.pareto_top_share
    charts = all_charts(data, top_share, settings.report.flow_days)
    head = headline(data, settings.report.show_customer_ids)
    page = render(data, charts, head, settings.report, top_share, read_run(settings, day))
    content = page.encode("utf-8")
    target = report_file(settings, day)
    write_json(directory / META_DIR / f"{day.isoformat()}.json", head.to_json())
    write_bytes_atomically(target, content)
    index = write_index(directory)
    return ReportResult(
        as_of_date=day,
        path=target,
        index_path=index,
        size_bytes=len(content),
        seconds=round(time.perf_counter() - started, 2),
        headline=head,
    )
