"""The report's HTML: one self-contained page (inline CSS and SVG, no script, no font or
file from anywhere else), a pure function of the figures, charts and run record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from pipeline.config import ReportConfig
from pipeline.report import palette
from pipeline.report.charts import Chart
from pipeline.report.figures import ReportData, Rows
from pipeline.report.headline import Headline

# The timings come from the run record, not from the lake: they are marked so that a
# comparison of two builds can tell them from the rest (docs/report.md).
TIMINGS_START = "<!-- timings:start -->"
TIMINGS_END = "<!-- timings:end -->"

CSS = """
:root { --ink: #222; --muted: #6b6b6b; --line: #e3e3e3; --bg: #f6f7f9; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 28px 12px; }
h1 { margin: 0; font-size: 24px; }
h1 small { color: var(--muted); font-weight: normal; font-size: 16px; margin-left: 8px; }
nav { margin-top: 6px; color: var(--muted); }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
main { padding: 18px 28px 40px; max-width: 1500px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 20px; margin-bottom: 18px; }
h2 { margin: 0 0 4px; font-size: 19px; }
h3 { margin: 14px 0 6px; font-size: 15px; }
p.lead { margin: 0 0 10px; color: var(--muted); }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 12px;
  background: none; border: 0; padding: 0; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.tile b { display: block; font-size: 24px; font-variant-numeric: tabular-nums; }
.tile span { color: var(--muted); font-size: 12.5px; }
.tile.alert b { color: #d7301f; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px;
  margin: 10px 0; }
.charts .wide { grid-column: 1 / -1; }
@media (max-width: 1000px) { .charts { grid-template-columns: minmax(0, 1fr); } }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
figure.chart svg { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12.5px; margin-top: 4px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { font-size: 12.5px; color: var(--muted); font-weight: 600; }
td.n, th.n { text-align: right; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; }
.up { color: #1b7837; } .down { color: #c51b1b; }
.ok { color: #1b7837; font-weight: 600; } .bad { color: #c51b1b; font-weight: 600; }
.muted { color: var(--muted); }
.scroll { overflow-x: auto; }
footer { color: var(--muted); font-size: 12px; padding: 0 28px 24px; }
"""


def render(
    data: ReportData,
    charts: Sequence[Chart],
    head: Headline,
    options: ReportConfig,
    top_share: float,
    timings: dict[str, float] | None,
) -> str:
    """The report page of ``data.as_of_date``."""
    drawn = {chart.name: chart for chart in charts}
    day = data.as_of_date
    body = "\n".join(
        (
            _tiles(head, top_share),
            _alerts(data, head, options),
            _segments(data, drawn, top_share),
            _clusters(data, drawn),
            _lifecycle(data, drawn, options),
            _risk(data),
            _run(data, drawn, timings),
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Customer report {day}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>Customer report<small>as of {day}</small></h1>
<nav><a href="index.html">All reports</a><a href="#alerts">Danger alerts</a>\
<a href="#segments">Segments</a><a href="#clusters">Clusters</a>\
<a href="#lifecycle">Lifecycle</a><a href="#risk">How right were alerts</a>\
<a href="#run">The run</a></nav>
</header>
<main>
{body}
</main>
<footer>Built by rfm-pipeline from the lake's partitions up to {day}. Every figure is \
net spend in the shop's currency; "12-month" is the scoring window. \
<a href="index.html">All reports</a></footer>
</body>
</html>
"""


def _tiles(head: Headline, top_share: float) -> str:
    pareto = (
        f"top {top_share:.0%} bring {head.pareto_share:.0%}"
        if head.pareto_share is not None
        else "nobody scored yet"
    )
    tiles = [
        (f"{head.customers_scored:,}", f"customers scored ({head.customers_known:,} known)", ""),
        (_money(head.window_revenue), f"12-month net spend; {pareto}", ""),
        (
            _money(head.net_sales_today),
            f"net sales in the day's export ({head.orders_today:,} orders, "
            f"{head.buyers_today:,} customers)",
            "",
        ),
        (f"{head.danger_entries:,}", "customers entered danger today", "alert"),
        (_money(head.value_at_risk), "their value at risk (12-month spend)", "alert"),
        (f"{head.customers_in_danger:,}", "customers in danger now", ""),
    ]
    cells = "".join(
        f'<div class="tile {kind}"><b>{escape(value)}</b><span>{escape(label)}</span></div>'
        for value, label, kind in tiles
    )
    return f'<section class="tiles" id="headline">{cells}</section>'


def _alerts(data: ReportData, head: Headline, options: ReportConfig) -> str:
    total = head.danger_entries
    shown = len(data.top_alerts)
    lead = (
        f"{total:,} {'customer' if total == 1 else 'customers'} entered danger on "
        f"{data.as_of_date}, {_money(head.value_at_risk)} of 12-month spend at risk."
    )
    if total > shown:
        lead += f" The {shown:,} with the most value at risk:"
    lead += (
        f" Every alert is in the day's file danger_alerts_{data.as_of_date}.csv"
        " (the priority is its row) and in the danger_alerts table."
    )
    if not data.top_alerts:
        table = '<p class="muted">No customer entered danger today.</p>'
    else:
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
                "priority": str(alert["priority"]),
                "customer_id": escape(str(alert["customer_id"])),
                "value_at_risk": _money(alert["value_at_risk"]),
                "segment": _swatched(str(alert["segment"]), palette.segment_colour),
                "cluster": escape(f"{alert['cluster_id']} {alert['cluster_name']}"),
                "from_stage": _swatched(str(alert["from_stage"]), palette.stage_colour),
                "reason": f"<b>{escape(str(alert['rules']))}</b>: {escape(str(alert['reason']))}",
                "suggested_action": escape(str(alert["suggested_action"])),
            }
            rows.append([(cells[key], numeric) for key, _label, numeric in columns])
        table = _table([(label, numeric) for _key, label, numeric in columns], rows)
    return (
        f'<section id="alerts"><h2>Today\'s danger alerts</h2>'
        f'<p class="lead">{escape(lead)}</p><div class="scroll">{table}</div></section>'
    )


def _segments(data: ReportData, drawn: dict[str, Chart], top_share: float) -> str:
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
    rows = {
        str(row["group_name"]): row for row in data.segment_changes if row["dimension"] == "segment"
    }
    body = [
        [
            (_swatched(name, palette.segment_colour), False),
            (f"{int(row['customers']):,}", True),
            (_change(row["customers_change_since_previous"]), True),
            (_change(row["customers_change_over_trend"]), True),
            (_percent(row["customer_share"]), True),
            (_percent(row["revenue_share"]), True),
            (_points(row["revenue_share_change_over_trend"]), True),
        ]
        for name in palette.SEGMENTS
        if (row := rows.get(name)) is not None
    ]
    return (
        '<section id="segments"><h2>Segments</h2>'
        '<p class="lead">Every customer who has bought, placed on the R x FM grid '
        "(docs/scoring.md). Changes are in customers; the trend is weekly. Net spend % is "
        "the segment's share of the 12-month net spend; its change is in percentage points "
        "(pts: from 25% to 27% is +2 pts). A negative share means more returned than "
        "bought.</p>"
        + _charts(
            drawn,
            ("segments", "Customers and their share of the window's net spend, per segment."),
        )
        + '<h3>Segments and their change</h3><div class="scroll">'
        + _table(header, body)
        + "</div>"
        + _charts(
            drawn,
            (
                "segment_trend",
                f"Customers per segment on every 7th day up to {data.as_of_date}: the three "
                "segments whose customers changed most over the weeks in colour (with the "
                "change), the others in grey.",
            ),
            (
                "rf_grid",
                "Scored customers in each cell of recency score by frequency score "
                "(count, share of all). Top right: recent and frequent.",
            ),
            (
                "pareto",
                f"How concentrated net spend is: the top {top_share:.0%} of customers bring "
                "the marked share (customers with negative net spend count as 0).",
            ),
        )
        + "</section>"
    )


def _clusters(data: ReportData, drawn: dict[str, Chart]) -> str:
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
    body = []
    for row in data.clusters:
        change = changes.get(str(row["cluster_id"]), {})
        name = f"{row['cluster_id']} {row['cluster_name']}"
        swatch = palette.cluster_colour(int(row["cluster_id"]))
        body.append(
            [
                (f'<span class="swatch" style="background:{swatch}"></span>{escape(name)}', False),
                (
                    f'<span title="{escape(str(row["rfm_type"]))}">'
                    f"{escape(str(row['rfm_pattern']))}</span>",
                    False,
                ),
                (f"{int(row['customers']):,}", True),
                (_change(change.get("customers_change_since_previous")), True),
                (_percent(row["customer_share"]), True),
                (_percent(row["revenue_share"]), True),
                (_number(row["mean_recency_days"], 0), True),
                (_number(row["mean_frequency"], 1), True),
                (_number(row["mean_monetary"], 0), True),
                (_signed(row["mean_weighted_score"]), True),
            ]
        )
    model = (
        f"K-means model {data.model_version}: {data.clusters[0]['k']} clusters, refitted "
        "weekly; cluster ids stay stable across refits. Separation (silhouette, from -1 to "
        f"1; above 0.5 is clear, under 0.25 weak): "
        f"{_number(data.clusters[0]['silhouette'], 2)}."
        if data.clusters
        else "No cluster model yet."
    )
    return (
        '<section id="clusters"><h2>Clusters</h2>'
        f'<p class="lead">{escape(model)} Profile: R, F and M are recency, frequency '
        "and spend; ↑ above the mean of all customers, ↓ below (R↑: bought more recently "
        "than most). R↑F↑M↓: recent and frequent, but spending less than most.</p>"
        + _charts(drawn, ("clusters", "Each cluster's share of customers and of net spend."))
        + '<h3>Cluster profiles</h3><div class="scroll">'
        + _table(header, body)
        + "</div></section>"
    )


def _lifecycle(data: ReportData, drawn: dict[str, Chart], options: ReportConfig) -> str:
    on_date = [row for row in data.stage_history if row["as_of_date"] == data.as_of_date]
    header = [
        ("stage", False),
        ("customers", True),
        ("entered today", True),
        ("left today", True),
    ]
    body = [
        [
            (_swatched(str(row["stage"]), palette.stage_colour), False),
            (f"{int(row['customers']):,}", True),
            (f"{int(row['entered']):,}", True),
            (f"{int(row['exited']):,}", True),
        ]
        for row in on_date
    ]
    return (
        '<section id="lifecycle"><h2>Lifecycle</h2>'
        '<p class="lead">Every known customer in one of the seven stages '
        "(docs/lifecycle.md), over the last "
        f"{options.history_days} days.</p>"
        + _charts(
            drawn,
            ("stages", "Customers per stage on every staged date."),
            (
                "transitions",
                f"Stage changes from {data.flow_start} to {data.as_of_date}: row = the stage "
                'left, column = the stage entered; "(new)" = first seen.',
            ),
            ("danger_entries", "Customers entering danger (one alert each) per staged date."),
            beside=f'<h3>Stages on {data.as_of_date}</h3><div class="scroll">'
            + _table(header, body)
            + "</div>",
        )
        + "</section>"
    )


def _risk(data: ReportData) -> str:
    """How the risk is made and how often alerts like today's were right on this shop."""
    model = data.risk_model
    if model is None:
        return (
            '<section id="risk"><h2>How right were alerts</h2><p>No risk model yet.</p></section>'
        )
    horizon = int(model["horizon_days"])
    if model["source"] == "model":
        lead = (
            f"Each customer's risk is the chance of no purchase in the next {horizon} days, "
            f"learned from this shop's own history (model of {model['version']}). A customer "
            f"enters danger at a risk of {float(model['danger_risk']):.2f}: on the newest past "
            "date it was tried on, customers at or above it did not buy in that time "
            "at least as often as the configured precision."
        )
    else:
        lead = (
            "The lake is too young to learn the risk from its own history "
            f"({model['reason'] or 'no backtest yet'}): until it is, a customer's risk is the "
            "share of their usual gaps between purchases shorter than their current silence."
        )
    parts = [f'<section id="risk"><h2>How right were alerts</h2><p class="lead">{escape(lead)}</p>']
    rows = data.backtest or []
    if rows:
        cutoff = rows[0]["cutoff_date"]
        value = {(r["section"], r["name"], r["metric"]): r["value"] for r in rows}
        parts.append(
            f"<p>Backtest of {data.backtest_date}: what the pipeline said on {cutoff}, judged "
            f"by what customers did in the {horizon} days after.</p>"
        )
        ranking = [
            ("risk (this pipeline)", "risk_auc"),
            ("days since the last purchase", "recency_auc"),
            ("number of purchase days", "frequency_auc"),
            ("BG/NBD expected purchases", "bgnbd_expected_purchases_auc"),
        ]
        parts.append(
            "<h3>Ranking the customers who did not come back</h3>"
            "<p>AUC: the chance that a customer who did not buy again ranks above one who "
            "did (0.5 is a coin toss, 1 is perfect).</p>"
            + _table(
                [("score", False), ("AUC", True)],
                [
                    [(label, False), (_number(value.get(("risk", key, "value")), 3), True)]
                    for label, key in ranking
                ],
            )
        )
        stage_rows = sorted(
            {name for section, name, _metric in value if section == "stage"},
            key=lambda name: [r["name"] for r in rows].index(name),
        )
        parts.append(
            "<h3>Who came back, by the stage they were in</h3>"
            + _table(
                [
                    ("stage on " + str(cutoff), False),
                    ("customers", True),
                    ("bought again", True),
                    ("mean risk", True),
                ],
                [
                    [
                        (escape(name), False),
                        (f"{int(value[('stage', name, 'customers')]):,}", True),
                        (_percent(value[("stage", name, "repurchase_rate")]), True),
                        (_number(value[("stage", name, "mean_risk")], 2), True),
                    ]
                    for name in stage_rows
                ],
            )
        )
        methods = sorted({name for section, name, _metric in value if section == "entries"})
        parts.append(
            "<h3>Alarms in the 90 days before</h3><p>Precision: the share of alarmed customers "
            f"who then did not buy for {horizon} days. Recall: the share of the customers lost "
            "since (active 90 days before, no purchase after) who were alarmed. Days ahead: "
            "how much earlier than a fixed 90-day silence rule.</p>"
            + _table(
                [
                    ("alarm", False),
                    ("alarms", True),
                    ("precision", True),
                    ("recall", True),
                    ("days ahead of the 90-day rule", True),
                ],
                [
                    [
                        ("danger entries" if name == "danger_entries" else escape(name), False),
                        (f"{int(value[('entries', name, 'entries')]):,}", True),
                        (_percent(value.get(("entries", name, "precision"))), True),
                        (_percent(value.get(("entries", name, "recall"))), True),
                        (
                            _number(
                                value.get(("entries", name, "median_days_ahead_of_baseline")), 0
                            ),
                            True,
                        ),
                    ]
                    for name in methods
                ],
            )
        )
    else:
        parts.append("<p>No backtest yet: it needs a horizon's worth of staged history.</p>")
    return "".join(parts) + "</section>"


def _run(data: ReportData, drawn: dict[str, Chart], timings: dict[str, float] | None) -> str:
    files_header = [
        ("export file", False),
        ("format", False),
        ("encoding", False),
        ("rows in", True),
        ("accepted", True),
        ("quarantined", True),
        ("duplicates", True),
        ("accounted for", False),
    ]
    files = [
        [
            (escape(str(row["source_file"])), False),
            (escape(str(row["file_format"])), False),
            (escape(str(row["encoding"])), False),
            (f"{int(row['rows_in']):,}", True),
            (f"{int(row['rows_accepted']):,}", True),
            (f"{int(row['rows_quarantined']):,}", True),
            (f"{int(row['rows_duplicate']):,}", True),
            (_verdict(bool(row["is_balanced"])), False),
        ]
        for row in data.ingest_files
    ]
    if not files:
        files = [[("(no export file: an empty day)", False)] + [("", False)] * 7]
    not_ingested = (
        "<h3>Files not ingested</h3><div class=\"scroll\">"
        + _table(
            [("file", False), ("outcome", False), ("reason", False), ("error", False)],
            [
                [(escape(str(row[key])), False) for key in (
                    "source_file", "outcome", "outcome_reason", "error"
                )]
                for row in data.files_not_ingested
            ],
        )
        + "</div>"
        if data.files_not_ingested
        else ""
    )  # fmt: skip
    reasons = (
        _table(
            [("quarantine reason", False), ("rows", True)],
            [
                [
                    (escape(str(row["quarantine_reason"])), False),
                    (f"{row['rows_quarantined']:,}", True),
                ]
                for row in data.quarantine_reasons
            ],
        )
        if data.quarantine_reasons
        else '<p class="muted">No row was quarantined today.</p>'
    )
    checks = _table(
        [("lake table", False), ("checks", True), ("result", False)],
        [
            [
                (escape(str(row["table"])), False),
                (str(row["checks"]), True),
                (
                    ('<span class="muted">no partition</span>', False)
                    if row["failed"] is None
                    else (_verdict(not row["failed"], escape(str(row["failing"]))), False)
                ),
            ]
            for row in data.checks
        ],
    )
    audit = _audit(data.publish_audit)
    return (
        f'<section id="run"><h2>The run of {data.as_of_date}</h2>'
        '<p class="lead">What the day\'s exports brought, what the checks found, and how '
        "long each step took.</p>"
        f'<h3>Input files and the ingest ledger</h3><div class="scroll">'
        f"{_table(files_header, files)}</div>{not_ingested}"
        f"<h3>Quarantined rows by reason</h3>{reasons}"
        + _charts(
            drawn, ("ingest", "Rows of each day's exports: accepted, duplicates, quarantined.")
        )
        + "<h3>Data-quality checks</h3>"
        "<p class=\"lead\">The lake's checks (sql/checks/), run again on the date's "
        "partitions; the publish step's contract checks.</p>"
        f'<div class="charts"><div class="scroll">{checks}</div><div>{audit}</div></div>'
        f"{_timings(timings)}</section>"
    )


def _audit(audit: Rows | None) -> str:
    if audit is None:
        return '<p class="muted">Not published: no contract results for this date.</p>'
    return _table(
        [("published table", False), ("contract checks", True), ("result", False)],
        [
            [
                (escape(str(row["table_name"])), False),
                (f"{int(row['checks']):,}", True),
                (
                    _verdict(
                        not row["checks_failed"],
                        escape(f"{row['failed_checks']} ({row['publish_status']})"),
                    ),
                    False,
                ),
            ]
            for row in audit
        ],
    )


def _timings(timings: dict[str, float] | None) -> str:
    if timings is None:
        content = (
            '<p class="muted">No run record for this date (its steps were run one by one).</p>'
        )
    else:
        total = sum(timings.values())
        rows = [[(escape(name), False), (f"{value:,.2f}", True)] for name, value in timings.items()]
        rows.append([("<b>total</b>", False), (f"<b>{total:,.2f}</b>", True)])
        content = _table([("step", False), ("seconds", True)], rows)
    return f"\n{TIMINGS_START}\n<h3>Timings</h3>{content}\n{TIMINGS_END}\n"


WIDE_CHARTS = frozenset({"segments", "clusters"})


def _charts(drawn: dict[str, Chart], *items: tuple[str, str], beside: str = "") -> str:
    """A grid of charts (two a row; the wide ones across), ``beside`` in the last cell."""
    figures = []
    for name, caption in items:
        chart = drawn[name]
        wide = " wide" if name in WIDE_CHARTS else ""
        figures.append(
            f'<figure class="chart{wide}" id="chart-{name}" data-chart="{name}">{chart.svg}'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    if beside:
        figures.append(f"<div>{beside}</div>")
    return f'<div class="charts">{"".join(figures)}</div>'


def _table(header: Sequence[tuple[str, bool]], rows: Iterable[Sequence[tuple[str, bool]]]) -> str:
    """A table of cells already escaped; the flag right-aligns numbers."""
    head = "".join(
        f'<th class="{"n" if numeric else ""}">{escape(label)}</th>' for label, numeric in header
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"n" if numeric else ""}">{cell}</td>' for cell, numeric in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _swatched(name: str, colour_of: Any) -> str:
    return f'<span class="swatch" style="background:{colour_of(name)}"></span>{escape(name)}'


def _verdict(passed: bool, failing: str = "") -> str:
    return (
        '<span class="ok">passed</span>' if passed else f'<span class="bad">failed</span> {failing}'
    )


def _money(value: object) -> str:
    return f"{float(str(value or 0)):,.0f}"


def _number(value: object, decimals: int) -> str:
    return "" if value is None else f"{float(str(value)):,.{decimals}f}"


def _signed(value: object) -> str:
    return "" if value is None else f"{float(str(value)):+.2f}"


def _percent(value: object) -> str:
    """A share; a negative one (more returned than bought) says so, never "-0.0%"."""
    if value is None:
        return ""
    share = float(str(value))
    if share >= 0:
        return f"{share:.1%}"
    shown = f"{share:.1%}" if share <= -0.0005 else "below 0% (under -0.1%)"
    return f'<span class="down" title="negative: more returned than bought">{shown}</span>'


def _change(value: object) -> str:
    if value is None:
        return '<span class="muted">-</span>'
    change = int(str(value))
    css = "up" if change > 0 else "down" if change < 0 else "muted"
    return f'<span class="{css}">{change:+,}</span>'


def _points(value: object) -> str:
    if value is None:
        return '<span class="muted">-</span>'
    points = float(str(value)) * 100
    css = "up" if points > 0.05 else "down" if points < -0.05 else "muted"
    return f'<span class="{css}" title="percentage points">{points:+.1f} pts</span>'
