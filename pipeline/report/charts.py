"""The report's charts, drawn by matplotlib to SVG that the page inlines (no script).

Each chart is a pure function of a few rows. The SVG is made repeatable: no date in its
metadata, ids salted with the chart's name (unique within the page, the same on every
run), and ids nothing refers to removed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Any

import matplotlib

matplotlib.use("svg")  # no GUI backend is ever needed: the figures are only saved

from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from pipeline.report import palette
from pipeline.report.figures import ReportData

Rows = list[dict[str, Any]]
WIDTH = 7.2  # inches at 72 pt: two charts side by side on a wide page, text at ~12 px
WIDE = 2 * WIDTH  # a chart across the page
_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: small, selectable, in the page's font
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": palette.MUTED,
    "axes.labelcolor": palette.INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": palette.GRID,
    "grid.linewidth": 0.8,
    "xtick.color": palette.MUTED,
    "ytick.color": palette.MUTED,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "path.simplify": True,
}


@dataclass(frozen=True)
class Chart:
    """One drawn chart: its name (the page's anchor), title and SVG."""

    name: str
    title: str
    svg: str


def thousands(value: float, _position: object = None) -> str:
    return f"{value:,.0f}"


@contextmanager
def _figure(
    name: str, height: float, columns: int = 1, width: float = WIDTH
) -> Iterator[tuple[Figure, list[Axes]]]:
    style = {**_STYLE, "svg.hashsalt": f"rfm-report-{name}"}
    with matplotlib.rc_context(style):  # type: ignore[arg-type]
        figure = Figure(figsize=(width, height), layout="constrained")
        axes = list(figure.subplots(1, columns, squeeze=False)[0])
        yield figure, axes


def _svg(figure: Figure, title: str) -> str:
    buffer = io.StringIO()
    figure.savefig(
        buffer,
        format="svg",
        metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
    )
    return tidy_svg(buffer.getvalue(), title)


_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_ID = re.compile(r' id="([^"]+)"')
_SIZE = re.compile(r' width="[\d.]+pt" height="[\d.]+pt"')


_PATH_DATA = re.compile(r' d="[^"]*"')
_LONG_NUMBER = re.compile(r"(-?\d+\.\d)\d+")


def _short_path(data: str) -> str:
    return _LONG_NUMBER.sub(r"\1", data).replace(" \n", " ").replace("\n", " ")


def tidy_svg(text: str, title: str) -> str:
    """Inline-ready SVG: no XML prologue, no unreferenced ids, no indentation, sized by
    the page, titled for screen readers."""
    text = _PROLOGUE.sub("", text, count=1)
    referenced = set(re.findall(r"#([A-Za-z_][\w.-]*)", text))
    text = _ID.sub(lambda match: match.group(0) if match.group(1) in referenced else "", text)
    text = re.sub(r"\n\s*", "\n", text)
    # Path coordinates to a tenth of a point (a year of daily steps is thousands of them).
    text = _PATH_DATA.sub(lambda match: _short_path(match.group(0)), text)
    text = _SIZE.sub(' role="img"', text, count=1)
    return text.replace(">", f"><title>{escape(title)}</title>", 1)


def _no_data(axes: Axes, text: str = "no data for this period") -> None:
    axes.text(
        0.5, 0.5, text, ha="center", va="center", color=palette.MUTED, transform=axes.transAxes
    )
    axes.set_xticks([])
    axes.set_yticks([])


def segments(changes: Rows) -> Chart:
    """Two bar panels: customers per segment (change since the previous run noted), and
    each segment's share of the window's net spend."""
    title = "Customers and revenue share per segment"
    with _figure("segments", 4.0, 2, WIDE) as (figure, all_axes):
        axes = all_axes
        rows = {row["group_name"]: row for row in changes if row["dimension"] == "segment"}
        names = [name for name in palette.SEGMENTS if name in rows]
        colours = [palette.segment_colour(name) for name in names]
        positions = list(range(len(names)))[::-1]
        customers, share = axes
        counts = [int(rows[name]["customers"]) for name in names]
        customers.barh(positions, counts, color=colours)
        customers.set_yticks(positions, names)
        customers.set_title("Customers per segment")
        customers.set_xlabel("customers (change since the previous run)")
        customers.xaxis.set_major_formatter(FuncFormatter(thousands))
        customers.grid(axis="y", visible=False)
        for position, name, count in zip(positions, names, counts, strict=True):
            change = rows[name]["customers_change_since_previous"]
            label = f" {count:,}" + (f" ({change:+,})" if change is not None else "")
            customers.text(count, position, label, va="center", fontsize=8.5, color=palette.INK)
        customers.set_xlim(0, max(counts, default=1) * 1.35 or 1)
        shares = [float(rows[name]["revenue_share"]) * 100 for name in names]
        share.barh(positions, shares, color=colours)
        share.set_yticks(positions, [""] * len(names))
        share.set_title("Share of 12-month net spend")
        share.set_xlabel("% of the window's net spend")
        share.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        share.grid(axis="y", visible=False)
        for position, value in zip(positions, shares, strict=True):
            share.text(max(value, 0), position, f" {value:.1f}%", va="center", fontsize=8.5)
        share.set_xlim(min(0, *shares) if shares else 0, max(shares, default=1) * 1.25 or 1)
        return Chart("segments", title, _svg(figure, title))


TREND_HIGHLIGHTED = 3
OTHER_GREY = "#c8c8c8"


def segment_trend(trend: Rows) -> Chart:
    """Customers per segment on each trend date (weekly)."""
    title = "Customers per segment, week by week"
    with _figure("segment_trend", 3.8, 1) as (figure, all_axes):
        axes = all_axes[0]
        series: dict[str, list[tuple[date, int]]] = {}
        for row in trend:
            if row["dimension"] == "segment":
                series.setdefault(row["group_name"], []).append(
                    (row["as_of_date"], row["customers"])
                )
        dates = sorted({row["as_of_date"] for row in trend})
        if len(dates) < 2:
            _no_data(axes, "the trend starts with the second week of scores")
        # Eleven coloured lines cannot be followed: the segments that moved most over the
        # trend are drawn in colour and named, the others in grey behind them.
        moved = sorted(
            (name for name in palette.SEGMENTS if len(series.get(name, [])) > 1),
            key=lambda name: -abs(sorted(series[name])[-1][1] - sorted(series[name])[0][1]),
        )[:TREND_HIGHLIGHTED]
        others_labelled = False
        for name in palette.SEGMENTS:
            if name in series and len(dates) > 1:
                points = sorted(series[name])
                highlighted = name in moved
                change = points[-1][1] - points[0][1]
                axes.plot(
                    [point[0] for point in points],  # type: ignore[arg-type]
                    [point[1] for point in points],
                    marker="o" if highlighted else None,
                    markersize=3,
                    linewidth=2.2 if highlighted else 1.0,
                    color=palette.segment_colour(name) if highlighted else OTHER_GREY,
                    zorder=3 if highlighted else 2,
                    label=f"{name} ({change:+,})"
                    if highlighted
                    else (None if others_labelled else "other segments"),
                )
                others_labelled = others_labelled or not highlighted
        axes.set_title(
            f"Customers per segment, week by week: the {len(moved)} that moved most in colour"
        )
        axes.set_ylabel("customers")
        axes.yaxis.set_major_formatter(FuncFormatter(thousands))
        axes.set_ylim(bottom=0)
        if len(dates) > 1:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5)
            _date_axis(axes)
        return Chart("segment_trend", title, _svg(figure, title))


def rf_grid(grid: Rows) -> Chart:
    """The 5 x 5 grid of R score (rows, 5 = most recent on top) and F score (columns)."""
    title = "Customers by recency and frequency score"
    with _figure("rf_grid", 4.0, 1) as (figure, all_axes):
        axes = all_axes[0]
        matrix = [[0] * 5 for _ in range(5)]
        for row in grid:
            matrix[5 - int(row["r_score"])][int(row["f_score"]) - 1] = int(row["customers"])
        most = max((max(line) for line in matrix), default=0)
        axes.imshow(matrix, cmap="Blues", vmin=0, vmax=max(most, 1), aspect="auto")
        total = sum(sum(line) for line in matrix)
        for r_index, line in enumerate(matrix):
            for f_index, count in enumerate(line):
                share = f"\n{count / total:.1%}" if total else ""
                colour = "white" if most and count > most * 0.55 else palette.INK
                axes.text(
                    f_index,
                    r_index,
                    f"{count:,}{share}",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color=colour,
                )
        axes.set_xticks(range(5), [str(score) for score in range(1, 6)])
        axes.set_yticks(range(5), [str(score) for score in range(5, 0, -1)])
        axes.set_xlabel("F score (5 = buys most often)")
        axes.set_ylabel("R score (5 = bought most recently)")
        axes.set_title("Customers by recency and frequency score")
        axes.grid(False)
        return Chart("rf_grid", title, _svg(figure, title))


def pareto(curve: Rows, top_share: float) -> Chart:
    """Cumulative share of net spend against the share of customers, best first."""
    title = "Revenue concentration (Pareto curve)"
    with _figure("pareto", 4.0, 1) as (figure, all_axes):
        axes = all_axes[0]
        xs = [float(row["customer_share"]) * 100 for row in curve]
        ys = [float(row["revenue_share"]) * 100 for row in curve]
        axes.plot(
            [0, 100],
            [0, 100],
            linestyle="--",
            color=palette.MUTED,
            linewidth=1,
            label="every customer spends the same",
        )
        axes.plot(xs, ys, color=palette.ACCENT, linewidth=2.2, label="customers, best first")
        mark = round(top_share * 100)
        at = next((y for x, y in zip(xs, ys, strict=True) if round(x) == mark), None)
        if at is not None and ys and ys[-1] > 0:
            axes.plot([mark], [at], marker="o", color=palette.ACCENT)
            axes.annotate(
                f"the top {mark}% bring {at:.0f}%",
                xy=(mark, at),
                xytext=(mark + 8, at - 14),
                arrowprops={"arrowstyle": "-", "color": palette.MUTED},
                fontsize=9.5,
            )
        axes.set_xlim(0, 100)
        axes.set_ylim(0, 102)
        axes.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        axes.set_xlabel("share of scored customers, the biggest spenders first")
        axes.set_ylabel("share of 12-month net spend")
        axes.set_title("Revenue concentration (Pareto curve)")
        axes.legend(loc="lower right")
        return Chart("pareto", title, _svg(figure, title))


def clusters(profiles: Rows) -> Chart:
    """Each cluster's share of customers next to its share of net spend."""
    title = "Customers and revenue share per cluster"
    with _figure("clusters", 3.4, 1, WIDE) as (figure, all_axes):
        axes = all_axes[0]
        if not profiles:
            _no_data(axes, "no cluster model yet")
            axes.set_title("Customers and revenue share per cluster")
            return Chart("clusters", title, _svg(figure, title))
        labels = [f"{row['cluster_id']} {row['cluster_name']}" for row in profiles]
        positions = list(range(len(profiles)))
        width = 0.38
        colours = [palette.cluster_colour(int(row["cluster_id"])) for row in profiles]
        customers = [float(row["customer_share"]) * 100 for row in profiles]
        revenue = [float(row["revenue_share"]) * 100 for row in profiles]
        axes.bar(
            [p - width / 2 for p in positions],
            customers,
            width,
            color=colours,
            alpha=0.45,
            label="share of customers",
        )
        axes.bar(
            [p + width / 2 for p in positions],
            revenue,
            width,
            color=colours,
            label="share of net spend",
        )
        for position, low, high in zip(positions, customers, revenue, strict=True):
            axes.text(
                position - width / 2,
                max(low, 0),
                f"{low:.0f}%",
                ha="center",
                va="bottom",
                fontsize=8,
            )
            axes.text(
                position + width / 2,
                max(high, 0),
                f"{high:.0f}%",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axes.set_xticks(positions, labels)
        axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
        axes.set_ylabel("% of customers / % of net spend")
        axes.set_title("Customers (light) and net spend (dark) per cluster")
        axes.grid(axis="x", visible=False)
        axes.legend(loc="upper right")
        return Chart("clusters", title, _svg(figure, title))


def stages(history: Rows) -> Chart:
    """A stacked area of customers per stage on each staged date."""
    title = "Customers per lifecycle stage over time"
    with _figure("stages", 4.0, 1) as (figure, all_axes):
        axes = all_axes[0]
        dates = sorted({row["as_of_date"] for row in history})
        counts = {stage: [0] * len(dates) for stage in palette.STAGES}
        index = {day: position for position, day in enumerate(dates)}
        for row in history:
            if row["stage"] in counts:
                counts[row["stage"]][index[row["as_of_date"]]] = int(row["customers"])
        if len(dates) < 2:
            _no_data(axes, "the history starts with the second staged date")
        else:
            axes.stackplot(
                dates,
                *(counts[stage] for stage in palette.STAGES),
                labels=list(palette.STAGES),
                colors=[palette.stage_colour(stage) for stage in palette.STAGES],
                linewidth=0,
            )
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), reverse=True)
            axes.set_xlim(dates[0], dates[-1])
            _date_axis(axes)
        axes.set_ylabel("customers")
        axes.yaxis.set_major_formatter(FuncFormatter(thousands))
        axes.set_title("Customers per lifecycle stage")
        return Chart("stages", title, _svg(figure, title))


def transitions(flows: Rows, flow_days: int) -> Chart:
    """The transition matrix of the flow window: customers moved from (rows) to (columns)."""
    title = "Moves between lifecycle stages"
    with _figure("transitions", 4.2, 1) as (figure, all_axes):
        axes = all_axes[0]
        sources = [palette.NEW, *palette.STAGES]
        matrix = [[0] * len(palette.STAGES) for _ in sources]
        for row in flows:
            source = row["from_stage"] or palette.NEW
            if source in sources and row["to_stage"] in palette.STAGES:
                matrix[sources.index(source)][palette.STAGES.index(row["to_stage"])] = int(
                    row["customers"]
                )
        most = max((max(line) for line in matrix), default=0)
        axes.imshow(matrix, cmap="Oranges", vmin=0, vmax=max(most, 1), aspect="auto")
        for source_index, line in enumerate(matrix):
            for target_index, count in enumerate(line):
                if count:
                    colour = "white" if count > most * 0.55 else palette.INK
                    axes.text(
                        target_index,
                        source_index,
                        f"{count:,}",
                        ha="center",
                        va="center",
                        fontsize=8.5,
                        color=colour,
                    )
        axes.set_xticks(range(len(palette.STAGES)), list(palette.STAGES), rotation=20)
        axes.set_yticks(range(len(sources)), sources)
        axes.set_xlabel("to stage")
        axes.set_ylabel("from stage")
        axes.set_title(f"Customers moved between stages, last {flow_days} days")
        axes.grid(False)
        return Chart("transitions", title, _svg(figure, title))


def danger_entries(entries: Rows) -> Chart:
    """Alerts per staged date, with their seven-day mean."""
    title = "Customers entering danger per day"
    with _figure("danger_entries", 3.4, 1) as (figure, all_axes):
        axes = all_axes[0]
        dates = [row["as_of_date"] for row in entries]
        alerts = [int(row["alerts"]) for row in entries]
        if not dates:
            _no_data(axes)
        else:
            # One stepped area, not a bar per day: a year of days stays a single path.
            axes.fill_between(
                dates,
                alerts,
                step="mid",
                color=palette.stage_colour(palette.DANGER),
                alpha=0.45,
                linewidth=0,
                label="customers entering danger (alerts)",
            )
            axes.plot(
                dates,
                [float(row["alerts_7_day_mean"]) for row in entries],
                color=palette.stage_colour(palette.DANGER),
                linewidth=1.8,
                label="7-day mean",
            )
            axes.legend(loc="upper left")
            _date_axis(axes)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("alerts per day")
        axes.set_title("Customers entering danger per day")
        return Chart("danger_entries", title, _svg(figure, title))


def ingest(days: Rows) -> Chart:
    """Accepted lines per export date, duplicates and quarantined rows stacked on top."""
    title = "Order lines ingested per export date"
    with _figure("ingest", 3.4, 1) as (figure, all_axes):
        axes = all_axes[0]
        dates = [row["export_date"] for row in days]
        if not dates:
            _no_data(axes)
        else:
            accepted = [int(row["rows_accepted"]) for row in days]
            duplicate = [int(row["rows_duplicate"]) for row in days]
            quarantined = [int(row["rows_quarantined"]) for row in days]
            on_top = [a + d for a, d in zip(accepted, duplicate, strict=True)]
            total = [a + q for a, q in zip(on_top, quarantined, strict=True)]
            # Stepped areas stacked, not a bar per day: a year of days stays three paths.
            for low, high, colour, label in (
                ([0] * len(dates), accepted, palette.ACCENT, "accepted"),
                (accepted, on_top, palette.MUTED, "duplicates"),
                (on_top, total, palette.stage_colour(palette.DANGER), "quarantined"),
            ):
                axes.fill_between(
                    dates,
                    low,
                    high,
                    step="mid",
                    color=colour,
                    linewidth=0,
                    label=label,
                )
            axes.legend(loc="upper left", ncols=3)
            _date_axis(axes)
        axes.set_ylabel("rows per export date")
        axes.yaxis.set_major_formatter(FuncFormatter(thousands))
        axes.set_title("Rows in the daily exports")
        return Chart("ingest", title, _svg(figure, title))


def _date_axis(axes: Axes) -> None:
    locator = AutoDateLocator(minticks=4, maxticks=9)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def all_charts(data: ReportData, top_share: float, flow_days: int) -> Sequence[Chart]:
    """Every chart of the page, in page order."""
    return (
        segments(data.segment_changes),
        segment_trend(data.segment_trend),
        rf_grid(data.rf_grid),
        pareto(data.pareto_curve, top_share),
        clusters(data.clusters),
        stages(data.stage_history),
        transitions(data.stage_flows, flow_days),
        danger_entries(data.danger_entries),
        ingest(data.ingest_days),
    )
