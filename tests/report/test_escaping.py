"""Text from the lake is escaped wherever the report shows it: a customer id, a cluster
name or an error message holding markup is shown as text, never run as markup."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import duckdb
import pyarrow.parquet as pq

from pipeline.config import Settings
from pipeline.report import build_report
from pipeline.report.charts import all_charts
from pipeline.report.figures import collect
from pipeline.report.headline import headline
from pipeline.report.page import render
from tests.report.support import DAYS, LAST, START, report_settings

HOSTILE = '<script>alert("x&y\'s")</script>'
# As html.escape writes it: the pages' entities from before their templates (templating.py).
ESCAPED = "&lt;script&gt;alert(&quot;x&amp;y&#x27;s&quot;)&lt;/script&gt;"


def _alert_day(lake: Settings) -> date:
    """The last date of the history with a danger alert."""
    con = duckdb.connect()
    for offset in reversed(range(DAYS)):
        day = START + timedelta(days=offset)
        path = lake.paths.lake / "danger_alerts" / f"as_of_date={day}" / "data.parquet"
        if con.execute("select count(*) from read_parquet(?)", [str(path)]).fetchone() != (0,):
            return day
    raise AssertionError("the history has no danger alert")


def test_a_customer_id_and_cluster_name_with_markup_are_shown_as_text(lake: Settings) -> None:
    day = _alert_day(lake)
    partition = lake.paths.lake / "danger_alerts" / f"as_of_date={day}" / "data.parquet"
    con = duckdb.connect()
    hostile = con.sql(
        "select * replace (? || customer_id as customer_id, ? as cluster_name)"
        " from read_parquet(?)",
        params=[f"{HOSTILE}&", f"{HOSTILE} & co", str(partition)],
    ).to_arrow_table()
    pq.write_table(hostile, partition)

    settings = report_settings(lake.paths.lake.parent, show_customer_ids=True)
    page = build_report(settings, day).path.read_text(encoding="utf-8")

    assert "<script" not in page
    assert f"{ESCAPED}&amp;" in page  # a customer id
    assert f"{ESCAPED} &amp; co" in page  # a cluster name, after its id


def test_markup_in_every_text_of_the_page_is_escaped(lake: Settings) -> None:
    """Every text field of the figures holds markup; the page holds none of it, and the
    escaped text where each field is shown."""
    settings = report_settings(lake.paths.lake.parent, show_customer_ids=True)
    con = duckdb.connect()
    data = collect(settings, LAST, con)
    alerts = collect(settings, _alert_day(lake), con).top_alerts
    fields = {
        "top_alerts": [
            dict(row, **{key: f"{HOSTILE}{key}" for key in (
                "customer_id", "cluster_name", "reason", "rules", "suggested_action"
            )})
            for row in alerts
        ],
        "clusters": [
            dict(row, cluster_name=HOSTILE, rfm_type=f"{HOSTILE}type", rfm_pattern=HOSTILE)
            for row in data.clusters
        ],
        "ingest_files": [
            dict(row, source_file=f"{HOSTILE}file", file_format=HOSTILE, encoding=HOSTILE)
            for row in data.ingest_files
        ],
        "files_not_ingested": [
            {"source_file": HOSTILE, "outcome": HOSTILE, "outcome_reason": HOSTILE,
             "error": f"{HOSTILE}error"}
        ],
        "quarantine_reasons": [{"quarantine_reason": f"{HOSTILE}quarantine", "rows_quarantined": 3}],
        "checks": [
            dict(row, table=f"{HOSTILE}table", failed=1, failing=f"{HOSTILE}failing")
            for row in data.checks
        ],
        "publish_audit": [
            dict(row, table_name=HOSTILE, checks_failed=1, failed_checks=f"{HOSTILE}contract")
            for row in data.publish_audit or []
        ],
    }  # fmt: skip
    assert data.risk_model is not None and data.publish_audit
    for source in ("model", "rhythm"):
        model = dict(
            data.risk_model, source=source, version=f"{HOSTILE}version", reason=f"{HOSTILE}why"
        )
        if source == "model":
            model["danger_risk"] = 0.5
        hostile = dataclasses.replace(data, risk_model=model, **fields)
        charts = all_charts(hostile, 0.2, settings.report.flow_days)
        page = render(
            hostile,
            charts,
            headline(hostile, True),
            settings.report,
            0.2,
            {f"{HOSTILE}step": 1.0},
        )

        assert "<script" not in page
        shown = ["step", "quarantine", "file", "error", "table", "failing", "contract", "type"]
        shown += ["customer_id", "reason", "rules", "suggested_action", "cluster_name"]
        shown += ["version" if source == "model" else "why"]
        for tail in shown:
            assert f"{ESCAPED}{tail}" in page, tail
