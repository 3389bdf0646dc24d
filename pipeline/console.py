"""What the command line shows: progress bars and compact tables (rich)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from pipeline.alerts import DeliveryReport
from pipeline.demo.generate import GenerateSummary
from pipeline.ingest.run import IngestReport
from pipeline.ingest.status import LakeStatus
from pipeline.lifecycle.quality import QualityReport
from pipeline.lifecycle.run import LifecycleReport
from pipeline.publish.run import PublishReport
from pipeline.report import ReportResult
from pipeline.scoring.run import ScoreReport

# Piped output (logs, CI) gets a fixed, wide width instead of rich's 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False)

_COUNT_COLUMNS = ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate")


class Bar:
    """One progress bar: a step count and a line saying what is being done."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def detail(self, text: str) -> None:
        self._progress.update(self._task, detail=text)

    def advance(self, steps: int = 1) -> None:
        self._progress.update(self._task, advance=steps)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Bar]:
    """A progress bar on stderr; hidden when stderr is not a terminal."""
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total, detail=""))


def generated(summary: GenerateSummary, directory: Path) -> None:
    end = summary.start + timedelta(days=summary.days - 1)
    out.print(
        f"Generated {summary.days} days of exports ({summary.start} to {end}) for a retailer "
        f"with {summary.customers:,} customers into {shown(directory)}:\n"
        f"  {summary.order_lines_written:,} order lines in {summary.orders_written:,} orders "
        f"(web {summary.web_lines:,}, stores {summary.store_lines:,}, app {summary.app_lines:,}), "
        f"{summary.return_lines:,} return lines, {summary.guest_lines:,} guest lines;\n"
        f"  {summary.bad_rows_injected} bad rows and {summary.resent_files} re-sent files "
        f"injected on purpose; ground truth: {summary.dissatisfaction_onsets_in_window} "
        f"dissatisfaction onsets, {summary.churns_in_window} churns, "
        f"{summary.win_backs_in_window} win-backs."
    )


def shown(path: Path) -> str:
    """A path as short as it can be said: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def ingest_report(report: IngestReport) -> None:
    table = Table(title=f"Ingest {report.export_date}", title_justify="left")
    table.add_column("file", no_wrap=True)
    table.add_column("encoding")
    for column in ("in", "accepted", "quarantined", "duplicates"):
        table.add_column(column, justify="right")
    for row in report.files:
        table.add_row(
            str(row["source_file"]),
            str(row["encoding"]),
            *(f"{int(str(row[column])):,}" for column in _COUNT_COLUMNS),
        )
    if not report.files:
        table.add_row("(no export file: recorded as an empty day)", "", "0", "0", "0", "0")
    out.print(table)
    _files_not_ingested(report.files_not_ingested)
    _reasons(report.quarantine_reasons.items())
    _customer_master(report)


def _files_not_ingested(rows: list[dict[str, object]], with_date: bool = False) -> None:
    """The file ledger's rejected and skipped files, with their reason and error."""
    if not rows:
        return
    table = Table(title="[bold red]Files not ingested[/]", title_justify="left")
    if with_date:
        table.add_column("date", no_wrap=True)
    for column in ("file", "outcome", "reason", "error"):
        table.add_column(column, no_wrap=column != "error")
    for row in rows:
        cells = [str(row[key]) for key in ("source_file", "outcome", "outcome_reason", "error")]
        table.add_row(*([str(row["export_date"])] if with_date else []), *cells)
    out.print(table)


def _customer_master(report: IngestReport) -> None:
    if not report.customer_master_files:
        return
    table = Table(title="Customer master", title_justify="left")
    table.add_column("file", no_wrap=True)
    table.add_column("encoding")
    for column in ("in", "loaded", "quarantined"):
        table.add_column(column, justify="right")
    for row in report.customer_master_files:
        table.add_row(
            str(row["source_file"]),
            str(row["encoding"]),
            *(
                f"{int(str(row[column])):,}"
                for column in ("rows_in", "rows_loaded", "rows_quarantined")
            ),
        )
    out.print(table)
    _reasons(report.customer_master_reasons.items(), "Master rows by reason")


def lake_status(status: LakeStatus) -> None:
    if status.incomplete_dates:
        dates = ", ".join(str(day) for day in status.incomplete_dates)
        out.print(f"[bold red]Incomplete dates[/] (an ingest died mid-write; re-run them): {dates}")
    _files_not_ingested(status.files_not_ingested, with_date=True)
    if not status.days:
        out.print("No ingested dates in that range.")
        return
    first, last = status.days[0]["export_date"], status.days[-1]["export_date"]
    table = Table(title=f"Lake: {len(status.days)} dates, {first} to {last}", title_justify="left")
    for column in ("files", "rows in", "accepted", "quarantined", "duplicates", "empty days"):
        table.add_column(column, justify="right")
    empty_days = sum(1 for day in status.days if int(str(day["rows_in"])) == 0)
    table.add_row(
        f"{status.total('files'):,}",
        *(f"{status.total(column):,}" for column in _COUNT_COLUMNS),
        f"{empty_days:,}",
    )
    out.print(table)
    balanced = status.total("rows_in") == sum(status.total(column) for column in _COUNT_COLUMNS[1:])
    out.print(f"Every input row accounted for: {'yes' if balanced else 'NO'}")
    _reasons(
        (str(row["quarantine_reason"]), int(str(row["rows_quarantined"])))
        for row in status.quarantine_reasons
    )


def _reasons(reasons: Iterable[tuple[str, int]], title: str = "Quarantined rows by reason") -> None:
    rows = list(reasons)
    if not rows:
        return
    table = Table(title=title, title_justify="left")
    table.add_column("reason", no_wrap=True)
    table.add_column("rows", justify="right")
    for reason, count in rows:
        table.add_row(reason, f"{count:,}")
    out.print(table)


def score_report(report: ScoreReport) -> None:
    """The segment summary of a scored date: segments by value, then clusters."""
    refit = "fitted today" if report.refitted else "in force"
    model = (
        f"cluster model {report.model_version}, {refit}"
        if report.model_version
        else "no cluster model yet"
    )
    out.print(
        f"Scored {report.customers:,} customers as of {report.as_of_date} "
        f"({report.mode} state; {model})."
    )
    everyone = next((row for row in report.summary if row["dimension"] == "all"), None)
    if everyone is not None and everyone["pareto_share"] is not None:
        top = f"{report.pareto_top_share:.0%}"
        share = _percent(everyone["pareto_share"])
        out.print(f"The top {top} of customers bring {share} of the window's net spend.")
    for dimension, title in (("segment", "Segments"), ("cluster", "Clusters (K-means)")):
        rows = [row for row in report.summary if row["dimension"] == dimension]
        rows.sort(key=lambda row: -float(row["mean_weighted_score"] or 0))
        table = Table(title=f"{title} as of {report.as_of_date}", title_justify="left")
        table.add_column("cluster" if dimension == "cluster" else "segment", no_wrap=True)
        for column in ("customers", "share", "revenue share", "top 20% share"):
            table.add_column(column, justify="right")
        for column in ("recency d", "frequency", "monetary", "score"):
            table.add_column(column, justify="right")
        for row in rows:
            label = str(row["group_name"])
            if dimension == "cluster":
                label = f"{row['group_id']} {label}"
            table.add_row(
                label,
                f"{row['customers']:,}",
                _percent(row["customer_share"]),
                _percent(row["revenue_share"]),
                _percent(row["pareto_share"]),
                f"{row['mean_recency_days']:.0f}",
                f"{row['mean_frequency']:.1f}",
                f"{row['mean_monetary']:,.0f}",
                f"{row['mean_weighted_score']:+.2f}",
            )
        out.print(table)


def lifecycle_report(report: LifecycleReport) -> None:
    """Customers per stage, the day's moves and alerts."""
    first = " (first run: no day before, nothing alerted)" if report.first_run else ""
    out.print(
        f"Lifecycle as of {report.as_of_date}{first}: {report.transitions:,} stage changes, "
        f"{report.alerts:,} {'customer' if report.alerts == 1 else 'customers'} entered danger"
        f" -> {shown(report.alerts_file)}"
    )
    table = Table(title=f"Lifecycle stages as of {report.as_of_date}", title_justify="left")
    table.add_column("stage", no_wrap=True)
    for column in ("customers", "share", "12-month spend", "entered", "left"):
        table.add_column(column, justify="right")
    for row in report.stage_counts:
        table.add_row(
            str(row["stage"]),
            f"{row['customers']:,}",
            _percent(row["customer_share"]),
            f"{row['window_net_amount']:,.0f}",
            f"{row['entered']:,}",
            f"{row['exited']:,}",
        )
    out.print(table)


def publish_report(report: PublishReport) -> None:
    """Where BI tools find the date's tables, and what each holds."""
    targets = ["Parquet snapshots", f"serving file {shown(report.serving_file)}"]
    if report.postgres:
        targets.append("PostgreSQL")
    current = (
        ""
        if report.current_as_of_date == report.as_of_date
        else f" (BI tools still see {report.current_as_of_date} as current)"
    )
    out.print(
        f"Published {report.as_of_date} as publish #{report.publish_number}{current}: "
        f"{report.checks} contract checks passed; {', '.join(targets)}"
    )
    table = Table(title=f"Published tables as of {report.as_of_date}", title_justify="left")
    table.add_column("table", no_wrap=True)
    table.add_column("rows", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, f"{rows:,}")
    out.print(table)


def delivery_report(report: DeliveryReport) -> None:
    """What the alert channels took, and what is still queued or given up."""
    if not report.channels:
        return
    for channel, counts in sorted(report.channels.items()):
        out.print(
            f"Alerts via {channel}: {counts.delivered:,} delivered, {counts.pending:,} queued "
            f"for the next run, {counts.given_up:,} given up"
        )
        for error in counts.errors:
            err.print(f"  {channel}: {error}")
    for given_up in report.given_up:
        err.print(
            f"  gave up {given_up.channel} alert {given_up.alert_id} of {given_up.as_of_date}:"
            f" {given_up.reason}"
        )


def quality_report(report: QualityReport) -> None:
    """Danger detection against the ground truth, next to the naive baseline."""
    options = report.options
    table = Table(
        title=(
            f"Danger detection vs ground truth, alerts {report.eval_start} to {report.eval_end}"
            f" (churned customers count for {options.grace_days} days after the churn)"
        ),
        title_justify="left",
    )
    table.add_column("method", no_wrap=True)
    for column in (
        "alerts",
        "precision",
        "episodes",
        "recall",
        "onset->alert d",
        "alert->churn d",
        "alerted before churn",
    ):
        table.add_column(column, justify="right")
    for row in report.methods:
        table.add_row(
            str(row["method"]),
            f"{row['alerts']:,}",
            f"{row['precision']:.2f}",
            f"{row['episodes']:,}",
            f"{row['recall']:.2f}",
            _days(row["median_days_onset_to_alert"]),
            _days(row["median_days_alert_to_churn"]),
            _percent(row["share_alerted_before_churn"]),
        )
    out.print(table)


def report_summary(result: ReportResult) -> None:
    """The report's headline in a few lines, and where the page is."""
    head = result.headline
    out.print(
        f"[bold]Report {head.as_of_date}[/]: {shown(result.path)} "
        f"({result.size_bytes / 1024:,.0f} KB, {result.seconds:.1f} s; all reports: "
        f"{shown(result.index_path)})"
    )
    pareto = "" if head.pareto_share is None else f", the top 20% bring {head.pareto_share:.0%}"
    out.print(
        f"  Customers: {head.customers_scored:,} scored of {head.customers_known:,} known; "
        f"12-month net spend {head.window_revenue:,.0f}{pareto}; the day's export "
        f"{head.net_sales_today:,.0f} from {head.orders_today:,} orders"
    )
    if head.segment_shifts:
        shifts = ", ".join(
            f"{name} {change:+,} ({now:,})" for name, now, change in head.segment_shifts
        )
        out.print(f"  Segment shifts since {head.previous_date}: {shifts}")
    stages = ", ".join(f"{stage} {count:,}" for stage, count in head.stage_counts.items())
    out.print(f"  Stages: {stages}")
    entered = f"  Danger: {head.danger_entries:,} entered today"
    if head.danger_entries:
        entered += f", {head.value_at_risk:,.0f} of 12-month spend at risk"
    out.print(f"{entered}; {head.customers_in_danger:,} in danger now")
    top = head.top_alert
    if top is not None:
        who = f" {top['customer_id']}" if "customer_id" in top else ""
        out.print(
            f"  Top alert:{who} {top['segment']}, {top['value_at_risk']:,.0f} at risk: "
            f"{top['reason']}",
            soft_wrap=True,
        )


def _days(value: object) -> str:
    return "-" if value is None else f"{float(str(value)):.0f}"


def _percent(value: object) -> str:
    return "" if value is None else f"{float(str(value)):.1%}"
