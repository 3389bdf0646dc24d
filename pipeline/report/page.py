"""The report's HTML: one self-contained page (inline CSS and SVG, no script, no font or
file from anywhere else), a pure function of the figures, charts and run record.

The markup is in templates/ (report.html.j2 and the sections and macros it uses); this
module prepares what they show: numbers formatted, tables as rows of cells."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from markupsafe import Markup

from pipeline.config import ReportConfig
from pipeline.report import palette
from pipeline.report.charts import Chart
from pipeline.report.figures import ReportData, Rows
from pipeline.report.headline import Headline
from pipeline.report.templating import render as render_template

# The timings come from the run record, not from the lake: they are marked so that a
# comparison of two builds can tell them from the rest (docs/report.md). The markers are
# written by templates/sections.html.j2.
TIMINGS_START = "<!-- timings:start -->"
TIMINGS_END = "<!-- timings:end -->"

CellKind = Literal[
    "text", "swatch", "hint", "tone", "points", "negative", "bold", "reason", "verdict"
]


@dataclass(frozen=True)
class Cell:
    """A table cell, drawn by the ``cell`` macro of templates/macros.html.j2 by its kind:
    text; swatch (a square of ``colour`` before the text); hint (the text, ``hint`` on
    hover); tone (the text coloured up, down or muted, its ``tone``); points (a tone, hinted
    as percentage points); negative (a share below 0, marked so); bold; reason (``hint``
    in bold before the text); verdict (passed, or failed and the text). ``numeric``
    right-aligns it."""

    text: str = ""
    numeric: bool = False
    kind: CellKind = "text"
    colour: str = ""
    hint: str = ""
    tone: str = ""
    passed: bool = True


Header = list[tuple[str, bool]]


@dataclass(frozen=True)
class Table:
    """A table's column labels (right-aligned when numeric) and rows."""

    header: Header
    rows: list[list[Cell]]


def render(
    data: ReportData,
    charts: Sequence[Chart],
    head: Headline,
    options: ReportConfig,
    top_share: float,
    timings: dict[str, float] | None,
) -> str:
    """The report page of ``data.as_of_date``."""
    return render_template(
        "report.html.j2",
        day=data.as_of_date,
        # The SVG of charts.py: matplotlib escapes the text it draws, tidy_svg the title.
        charts={chart.name: Markup(chart.svg) for chart in charts},
        tiles=_tiles(head, top_share),
        alerts=_alerts(data, head, options),
        segments=_segments(data, top_share),
        clusters=_clusters(data),
        lifecycle=_lifecycle(data, options),
        risk=_risk(data),
        run=_run(data, timings),
    )


def _tiles(head: Headline, top_share: float) -> dict[str, Any]:
    return {
        "customers_scored": f"{head.customers_scored:,}",
        "customers_known": f"{head.customers_known:,}",
        "window_revenue": _money(head.window_revenue),
        "top_share": f"{top_share:.0%}",
        "pareto_share": None if head.pareto_share is None else f"{head.pareto_share:.0%}",
        "net_sales_today": _money(head.net_sales_today),
        "orders_today": f"{head.orders_today:,}",
        "buyers_today": f"{head.buyers_today:,}",
        "danger_entries": f"{head.danger_entries:,}",
        "value_at_risk": _money(head.value_at_risk),
        "customers_in_danger": f"{head.customers_in_danger:,}",
    }


def _alerts(data: ReportData, head: Headline, options: ReportConfig) -> dict[str, Any]:
    total = head.danger_entries
    shown = len(data.top_alerts)
    columns = [("priority", "#", True)]
    if options.show_customer_ids:
        columns.append(("customer_id", "customer", False))
    columns += [
        ("value_at_risk", "value at risk", True),
        ("segment", "segment", False),
        ("cluster", "cluster", False),
        ("from_stage", "came from", False),
        ("reason", "why", False),
        ("suggested_action", "suggested action", False),
    ]
    rows = []
    for alert in data.top_alerts:
        cells = {
            "priority": Cell(str(alert["priority"]), True),
            "customer_id": Cell(str(alert["customer_id"])),
            "value_at_risk": Cell(_money(alert["value_at_risk"]), True),
            "segment": _swatched(str(alert["segment"]), palette.segment_colour),
            "cluster": Cell(f"{alert['cluster_id']} {alert['cluster_name']}"),
            "from_stage": _swatched(str(alert["from_stage"]), palette.stage_colour),
            "reason": Cell(str(alert["reason"]), kind="reason", hint=str(alert["rules"])),
            "suggested_action": Cell(str(alert["suggested_action"])),
        }
        rows.append([cells[key] for key, _label, _numeric in columns])
    return {
        "day": data.as_of_date,
        "total": f"{total:,}",
        "one": total == 1,
        "value_at_risk": _money(head.value_at_risk),
        "more": total > shown,
        "shown": f"{shown:,}",
        "header": [(label, numeric) for _key, label, numeric in columns],
        "rows": rows,
    }


def _segments(data: ReportData, top_share: float) -> dict[str, Any]:
    previous = data.previous_date
    start = data.trend_start_date
    header = [
        ("segment", False),
        ("customers", True),
        (f"since {previous}" if previous else "since the previous run", True),
        (f"since {start}" if start else "over the trend", True),
        ("customers %", True),
        ("net spend %", True),
        (f"net spend % since {start}" if start else "net spend share change", True),
    ]
    changes = {
        str(row["group_name"]): row for row in data.segment_changes if row["dimension"] == "segment"
    }
    rows = [
        [
            _swatched(name, palette.segment_colour),
            Cell(f"{int(row['customers']):,}", True),
            _change(row["customers_change_since_previous"]),
            _change(row["customers_change_over_trend"]),
            _percent(row["customer_share"]),
            _percent(row["revenue_share"]),
            _points(row["revenue_share_change_over_trend"]),
        ]
        for name in palette.SEGMENTS
        if (row := changes.get(name)) is not None
    ]
    return {
        "day": data.as_of_date,
        "top_share": f"{top_share:.0%}",
        "header": header,
        "rows": rows,
    }


def _clusters(data: ReportData) -> dict[str, Any]:
    changes = {
        str(row["group_id"]): row for row in data.segment_changes if row["dimension"] == "cluster"
    }
    header = [
        ("cluster", False),
        ("profile", False),
        ("customers", True),
        ("since previous run", True),
        ("share of customers", True),
        ("share of net spend", True),
        ("mean recency (days)", True),
        ("mean frequency (days)", True),
        ("mean net spend", True),
        ("mean score", True),
    ]
    rows = []
    for row in data.clusters:
        change = changes.get(str(row["cluster_id"]), {})
        rows.append(
            [
                Cell(
                    f"{row['cluster_id']} {row['cluster_name']}",
                    kind="swatch",
                    colour=palette.cluster_colour(int(row["cluster_id"])),
                ),
                Cell(str(row["rfm_pattern"]), kind="hint", hint=str(row["rfm_type"])),
                Cell(f"{int(row['customers']):,}", True),
                _change(change.get("customers_change_since_previous")),
                _percent(row["customer_share"]),
                _percent(row["revenue_share"]),
                Cell(_number(row["mean_recency_days"], 0), True),
                Cell(_number(row["mean_frequency"], 1), True),
                Cell(_number(row["mean_monetary"], 0), True),
                Cell(_signed(row["mean_weighted_score"]), True),
            ]
        )
    model = (
        {
            "version": data.model_version,
            "k": data.clusters[0]["k"],
            "silhouette": _number(data.clusters[0]["silhouette"], 2),
        }
        if data.clusters
        else None
    )
    return {"model": model, "header": header, "rows": rows}


def _lifecycle(data: ReportData, options: ReportConfig) -> dict[str, Any]:
    on_date = [row for row in data.stage_history if row["as_of_date"] == data.as_of_date]
    return {
        "day": data.as_of_date,
        "flow_start": data.flow_start,
        "history_days": options.history_days,
        "header": [
            ("stage", False),
            ("customers", True),
            ("entered today", True),
            ("left today", True),
        ],
        "rows": [
            [
                _swatched(str(row["stage"]), palette.stage_colour),
                Cell(f"{int(row['customers']):,}", True),
                Cell(f"{int(row['entered']):,}", True),
                Cell(f"{int(row['exited']):,}", True),
            ]
            for row in on_date
        ],
    }


def _risk(data: ReportData) -> dict[str, Any] | None:
    """How the risk is made and how often alerts like today's were right on this shop."""
    model = data.risk_model
    if model is None:
        return None
    horizon = int(model["horizon_days"])
    rows = data.backtest or []
    risk: dict[str, Any] = {"horizon": horizon, "backtest": bool(rows)}
    if model["source"] == "model":
        risk |= {
            "learned": True,
            "version": model["version"],
            "danger_risk": f"{float(model['danger_risk']):.2f}",
        }
    else:
        risk |= {"learned": False, "reason": model["reason"] or "no backtest yet"}
    if not rows:
        return risk
    cutoff = rows[0]["cutoff_date"]
    value = {(r["section"], r["name"], r["metric"]): r["value"] for r in rows}
    ranking = [
        ("risk (this pipeline)", "risk_auc"),
        ("days since the last purchase", "recency_auc"),
        ("number of purchase days", "frequency_auc"),
        ("BG/NBD expected purchases", "bgnbd_expected_purchases_auc"),
    ]
    stage_rows = sorted(
        {name for section, name, _metric in value if section == "stage"},
        key=lambda name: [r["name"] for r in rows].index(name),
    )
    methods = sorted({name for section, name, _metric in value if section == "entries"})
    risk |= {
        "backtest_date": data.backtest_date,
        "cutoff": cutoff,
        "ranking": Table(
            [("score", False), ("AUC", True)],
            [
                [Cell(label), Cell(_number(value.get(("risk", key, "value")), 3), True)]
                for label, key in ranking
            ],
        ),
        "stages": Table(
            [
                ("stage on " + str(cutoff), False),
                ("customers", True),
                ("bought again", True),
                ("mean risk", True),
            ],
            [
                [
                    Cell(name),
                    Cell(f"{int(value[('stage', name, 'customers')]):,}", True),
                    _percent(value[("stage", name, "repurchase_rate")]),
                    Cell(_number(value[("stage", name, "mean_risk")], 2), True),
                ]
                for name in stage_rows
            ],
        ),
        "alarms": Table(
            [
                ("alarm", False),
                ("alarms", True),
                ("precision", True),
                ("recall", True),
                ("days ahead of the 90-day rule", True),
            ],
            [
                [
                    Cell("danger entries" if name == "danger_entries" else name),
                    Cell(f"{int(value[('entries', name, 'entries')]):,}", True),
                    _percent(value.get(("entries", name, "precision"))),
                    _percent(value.get(("entries", name, "recall"))),
                    Cell(
                        _number(value.get(("entries", name, "median_days_ahead_of_baseline")), 0),
                        True,
                    ),
                ]
                for name in methods
            ],
        ),
    }
    return risk


def _run(data: ReportData, timings: dict[str, float] | None) -> dict[str, Any]:
    files = [
        [
            Cell(str(row["source_file"])),
            Cell(str(row["file_format"])),
            Cell(str(row["encoding"])),
            Cell(f"{int(row['rows_in']):,}", True),
            Cell(f"{int(row['rows_accepted']):,}", True),
            Cell(f"{int(row['rows_quarantined']):,}", True),
            Cell(f"{int(row['rows_duplicate']):,}", True),
            Cell(kind="verdict", passed=bool(row["is_balanced"])),
        ]
        for row in data.ingest_files
    ]
    if not files:  # the row says so, its cells all left-aligned
        files = [[Cell("(no export file: an empty day)")] + [Cell()] * 7]
    return {
        "day": data.as_of_date,
        "files": Table(
            [
                ("export file", False),
                ("format", False),
                ("encoding", False),
                ("rows in", True),
                ("accepted", True),
                ("quarantined", True),
                ("duplicates", True),
                ("accounted for", False),
            ],
            files,
        ),
        "not_ingested": Table(
            [("file", False), ("outcome", False), ("reason", False), ("error", False)],
            [
                [
                    Cell(str(row[key]))
                    for key in ("source_file", "outcome", "outcome_reason", "error")
                ]
                for row in data.files_not_ingested
            ],
        ),
        "reasons": Table(
            [("quarantine reason", False), ("rows", True)],
            [
                [Cell(str(row["quarantine_reason"])), Cell(f"{row['rows_quarantined']:,}", True)]
                for row in data.quarantine_reasons
            ],
        ),
        "checks": Table(
            [("lake table", False), ("checks", True), ("result", False)],
            [
                [
                    Cell(str(row["table"])),
                    Cell(str(row["checks"]), True),
                    Cell("no partition", kind="tone", tone="muted")
                    if row["failed"] is None
                    else Cell(str(row["failing"]), kind="verdict", passed=not row["failed"]),
                ]
                for row in data.checks
            ],
        ),
        "audit": _audit(data.publish_audit),
        "timings": _timings(timings),
    }


def _audit(audit: Rows | None) -> Table | None:
    if audit is None:
        return None
    return Table(
        [("published table", False), ("contract checks", True), ("result", False)],
        [
            [
                Cell(str(row["table_name"])),
                Cell(f"{int(row['checks']):,}", True),
                Cell(
                    f"{row['failed_checks']} ({row['publish_status']})",
                    kind="verdict",
                    passed=not row["checks_failed"],
                ),
            ]
            for row in audit
        ],
    )


def _timings(timings: dict[str, float] | None) -> Table | None:
    if timings is None:
        return None
    total = sum(timings.values())
    rows = [[Cell(name), Cell(f"{value:,.2f}", True)] for name, value in timings.items()]
    rows.append([Cell("total", kind="bold"), Cell(f"{total:,.2f}", True, kind="bold")])
    return Table([("step", False), ("seconds", True)], rows)


def _swatched(name: str, colour_of: Callable[[str], str]) -> Cell:
    return Cell(name, kind="swatch", colour=colour_of(name))


def _money(value: object) -> str:
    return f"{float(str(value or 0)):,.0f}"


def _number(value: object, decimals: int) -> str:
    return "" if value is None else f"{float(str(value)):,.{decimals}f}"


def _signed(value: object) -> str:
    return "" if value is None else f"{float(str(value)):+.2f}"


def _percent(value: object) -> Cell:
    """A share; a negative one (more returned than bought) says so, never "-0.0%"."""
    if value is None:
        return Cell("", True)
    share = float(str(value))
    if share >= 0:
        return Cell(f"{share:.1%}", True)
    shown = f"{share:.1%}" if share <= -0.0005 else "below 0% (under -0.1%)"
    return Cell(shown, True, kind="negative")


def _change(value: object) -> Cell:
    if value is None:
        return Cell("-", True, kind="tone", tone="muted")
    change = int(str(value))
    tone = "up" if change > 0 else "down" if change < 0 else "muted"
    return Cell(f"{change:+,}", True, kind="tone", tone=tone)


def _points(value: object) -> Cell:
    if value is None:
        return Cell("-", True, kind="tone", tone="muted")
    points = float(str(value)) * 100
    tone = "up" if points > 0.05 else "down" if points < -0.05 else "muted"
    return Cell(f"{points:+.1f} pts", True, kind="points", tone=tone)
