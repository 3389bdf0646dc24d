"""The report's figures against SQL over the lake, repeatability, the index, the size."""

from __future__ import annotations

import html
import re
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import Settings
from pipeline.errors import NotScoredError
from pipeline.report import build_report, record_run
from pipeline.report.figures import collect
from pipeline.report.page import TIMINGS_END, TIMINGS_START
from tests.report.support import DAYS, LAST, START, TREND_START, report_settings


def _lake(settings: Settings, table: str, day: date, query: str) -> list[tuple[Any, ...]]:
    key = "export_date" if table in ("ingest_ledger", "customer_days") else "as_of_date"
    path = settings.paths.lake / table / f"{key}={day}" / "data.parquet"
    con = duckdb.connect()
    return con.execute(query.replace("{t}", "read_parquet($f)"), {"f": str(path)}).fetchall()


def _text(page: str) -> str:
    """The page's visible text, tags removed, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_headline_figures_match_the_lake(lake: Settings) -> None:
    result = build_report(lake, LAST)
    head = result.headline
    customers, revenue = _lake(
        lake, "customer_segments", LAST, "select count(*), sum(monetary) from {t}"
    )[0]
    assert head.customers_scored == customers
    assert head.window_revenue == pytest.approx(float(revenue))
    known, in_danger = _lake(
        lake, "customer_lifecycle", LAST, "select count(*), count_if(stage = 'danger') from {t}"
    )[0]
    assert (head.customers_known, head.customers_in_danger) == (known, in_danger)
    alerts, at_risk = _lake(
        lake, "danger_alerts", LAST, "select count(*), coalesce(sum(value_at_risk), 0) from {t}"
    )[0]
    assert (head.danger_entries, head.value_at_risk) == (alerts, pytest.approx(float(at_risk)))
    stages = dict(_lake(lake, "stage_counts", LAST, "select stage, customers from {t}"))
    assert head.stage_counts == stages
    assert head.previous_date == LAST - timedelta(days=1)
    page = _text(result.path.read_text(encoding="utf-8"))
    assert f"{customers:,} customers scored ({known:,} known)" in page
    assert f"{float(revenue):,.0f} 12-month net spend" in page


def test_segment_table_and_changes_match_the_summaries(lake: Settings) -> None:
    page = _text(build_report(lake, LAST).path.read_text(encoding="utf-8"))
    today = dict(
        _lake(
            lake,
            "segment_summary",
            LAST,
            "select group_id, customers from {t} where dimension = 'segment'",
        )
    )
    before = dict(
        _lake(
            lake,
            "segment_summary",
            LAST - timedelta(days=1),
            "select group_id, customers from {t} where dimension = 'segment'",
        )
    )
    four_weeks = dict(
        _lake(
            lake,
            "segment_summary",
            TREND_START,
            "select group_id, customers from {t} where dimension = 'segment'",
        )
    )
    assert today
    for segment, customers in today.items():
        since_yesterday = customers - before.get(segment, 0)
        over_trend = customers - four_weeks.get(segment, 0)
        # The row: name, customers, change since the previous run, change over the trend.
        assert f"{segment} {customers:,} {since_yesterday:+,} {over_trend:+,}" in page, segment


def test_grid_pareto_stages_and_alerts_match_the_lake(lake: Settings) -> None:
    con = duckdb.connect()
    data = collect(lake, LAST, con)
    cells = {(row["r_score"], row["f_score"]): row["customers"] for row in data.rf_grid}
    assert len(cells) == 25
    by_cell = dict(
        ((r, f), n)
        for r, f, n in _lake(
            lake,
            "customer_segments",
            LAST,
            "select r_score, f_score, count(*) from {t} group by all",
        )
    )
    assert {cell: n for cell, n in cells.items() if n} == by_cell
    # The curve at 20% is the summary's Pareto share (the same ranking of the same spend).
    pareto = _lake(
        lake, "segment_summary", LAST, "select pareto_share from {t} where dimension = 'all'"
    )[0][0]
    at_20 = next(row["revenue_share"] for row in data.pareto_curve if row["percent"] == 20)
    assert float(at_20) == pytest.approx(pareto, abs=0.01)
    assert [row["percent"] for row in data.pareto_curve] == list(range(101))
    assert float(data.pareto_curve[-1]["revenue_share"]) == pytest.approx(1.0)
    # Every staged date of the history, seven stages each.
    assert len(data.stage_history) == 7 * DAYS
    entries = {row["as_of_date"]: row["alerts"] for row in data.danger_entries}
    assert len(entries) == DAYS
    for day in (LAST, LAST - timedelta(days=10)):
        assert entries[day] == _lake(lake, "danger_alerts", day, "select count(*) from {t}")[0][0]
    top = _lake(lake, "danger_alerts", LAST, "select priority, reason from {t} order by priority")
    assert [(row["priority"], row["reason"]) for row in data.top_alerts] == top[:20]
    assert all(row["failed"] == 0 for row in data.checks), data.checks
    assert data.publish_audit and all(row["checks_failed"] == 0 for row in data.publish_audit)


def test_the_days_alerts_are_listed_with_their_reasons(lake: Settings) -> None:
    # A date with alerts: the reasons, value at risk and actions are on the page.
    days = [START + timedelta(days=n) for n in range(DAYS)]
    day = max(d for d in days if _lake(lake, "danger_alerts", d, "select count(*) from {t}")[0][0])
    page = _text(build_report(lake, day).path.read_text(encoding="utf-8"))
    for reason, action, value in _lake(
        lake, "danger_alerts", day, "select reason, suggested_action, value_at_risk from {t}"
    ):
        assert reason in page and action in page and f"{float(value):,.0f}" in page


def test_rebuilding_gives_the_same_bytes_and_timings_change_only_their_block(
    lake: Settings,
) -> None:
    first = build_report(lake, LAST).path.read_bytes()
    assert build_report(lake, LAST).path.read_bytes() == first
    record_run(lake, LAST, {"ingest": 1.5, "score": 2.25})
    timed = build_report(lake, LAST).path.read_text(encoding="utf-8")
    assert build_report(lake, LAST).path.read_text(encoding="utf-8") == timed
    assert "ingest" in _text(timed.split(TIMINGS_START)[1]) and "3.75" in timed

    def without_timings(page: str) -> str:
        return re.sub(f"{TIMINGS_START}.*{TIMINGS_END}", "", page, flags=re.DOTALL)

    assert without_timings(timed) == without_timings(first.decode("utf-8"))


def test_the_report_reads_no_later_date(lake: Settings, tmp_path: Path) -> None:
    """The report of D from the full lake equals the one from a lake cut off after D."""
    day = LAST - timedelta(days=5)
    full = build_report(lake, day).path.read_bytes()
    cut = tmp_path / "cut"
    for path in (lake.paths.lake).rglob("*.parquet"):
        partition = path.parent.name.split("=")
        if len(partition) == 2 and partition[0] != "model_version" and partition[1] > str(day):
            continue
        target = cut / "lake" / path.relative_to(lake.paths.lake)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    for path in lake.paths.models.rglob("*"):  # the model versions of dates up to D
        version = [part for part in path.parts if part.startswith("version=")]
        if path.is_file() and version and version[-1].split("=")[1] <= str(day):
            target = cut / "models" / path.relative_to(lake.paths.models)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    (cut / "published").mkdir()
    assert build_report(report_settings(cut), day).path.read_bytes() == full


def test_the_index_lists_past_reports_newest_first(lake: Settings) -> None:
    days = [LAST - timedelta(days=n) for n in (14, 0, 7)]
    for day in days:
        result = build_report(lake, day)
    index = result.index_path.read_text(encoding="utf-8")
    links = re.findall(r'href="(\d{4}-\d{2}-\d{2})\.html"', index)
    assert links == [str(day) for day in sorted(days, reverse=True)]
    assert all((result.index_path.parent / f"{link}.html").is_file() for link in links)
    last = build_report(lake, LAST).headline
    assert f"{last.customers_scored:,}" in index
    assert 'href="index.html"' in result.path.read_text(encoding="utf-8")


def test_the_page_is_small_self_contained_and_names_no_customer(lake: Settings) -> None:
    result = build_report(lake, LAST)
    page = result.path.read_text(encoding="utf-8")
    assert result.size_bytes == len(page.encode("utf-8")) < 500_000
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page and "@import" not in page and "url(http" not in page
    assert len(re.findall(r'<figure class="chart', page)) == 9
    ids = {row[0] for row in _lake(lake, "customer_lifecycle", LAST, "select customer_id from {t}")}
    assert not [customer for customer in ids if re.search(rf"\b{re.escape(customer)}\b", page)]
    shown = build_report(report_settings(lake.paths.lake.parent, show_customer_ids=True), LAST)
    named = {c for c in ids if re.search(rf"\b{re.escape(c)}\b", shown.path.read_text())}
    top = {
        row[0]
        for row in _lake(
            lake, "danger_alerts", LAST, "select customer_id from {t} where priority <= 20"
        )
    }
    assert named == top


def test_a_date_not_yet_staged_is_refused_with_the_step_to_run(lake: Settings) -> None:
    with pytest.raises(NotScoredError, match=r"run `rfm-pipeline ingest --date 2025-03-01`"):
        build_report(lake, date(2025, 3, 1))


def test_the_report_command_prints_the_headline(lake: Settings) -> None:
    config = lake.paths.lake.parent / "pipeline.toml"
    config.write_text(
        '[paths]\nlake = "lake"\nstate = "state"\npublished = "published"\nmodels = "models"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "report", "--date", str(LAST)])
    assert result.exit_code == 0, result.output
    assert f"Report {LAST}" in result.output and "Stages: prospect" in result.output
    assert (lake.paths.published / "reports" / f"{LAST}.html").is_file()


def test_the_run_section_lists_the_files_not_ingested(lake: Settings) -> None:
    # What a lenient ingest (source.on_bad_file = "quarantine") leaves in the file ledger.
    partition = lake.paths.lake / "ingest_files" / f"export_date={LAST}" / "data.parquet"
    partition.parent.mkdir(parents=True, exist_ok=True)
    duckdb.sql(
        "select 'sales_bad.csv' as source_file, 'sales' as file_kind, 'rejected' as outcome,"
        " 'symlink_outside_incoming' as outcome_reason,"
        " 'sales_bad.csv: rejected: a symlink whose target is outside' as error"
    ).write_parquet(str(partition))

    page = _text(build_report(lake, LAST).path.read_text(encoding="utf-8"))

    assert "Files not ingested" in page
    assert "sales_bad.csv" in page and "symlink_outside_incoming" in page


def test_the_risk_section_says_the_young_lake_falls_back_to_the_rhythm(lake: Settings) -> None:
    """Three weeks are too short to learn a risk model: the section says what stands in,
    and why, and judges the fallback's own past risks."""
    page = build_report(lake, LAST).path.read_text(encoding="utf-8")
    section = page[page.index('<section id="risk">') :]
    section = section[: section.index("</section>")]
    assert "How right were alerts" in section
    assert "too young to learn the risk from its own history" in section
    assert "share of their usual gaps between purchases shorter than their current silence" in (
        section
    )
    # The fallback's own risks were published a horizon ago: the backtest judges them.
    assert "Ranking the customers who did not come back" in section
    assert "Who came back, by the stage they were in" in section
    assert "days ahead of the 90-day rule" in section
