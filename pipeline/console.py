"""What the command line shows: progress bars and compact tables (rich)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # the reports' modules import the data libraries; printing needs none
    from pipeline.alerts import DeliveryReport
    from pipeline.demo.generate import GenerateSummary
    from pipeline.ingest.run import IngestReport
    from pipeline.ingest.status import LakeStatus
    from pipeline.lifecycle.backtest import BacktestReport
    from pipeline.lifecycle.quality import QualityReport
    from pipeline.lifecycle.run import LifecycleReport
    from pipeline.publish.leftovers import Leftovers
    from pipeline.publish.run import PublishReport
    from pipeline.report import ReportResult
    from pipeline.scoring.run import ScoreReport
    from pipeline.status import DateStatus, PipelineStatus

# Piped output (logs, CI) gets a fixed, wide width instead of rich's 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, highlight=False)

_COUNT_COLUMNS = ("rows_in", "rows_accepted", "rows_quarantined", "rows_duplicate")


class Bar:
    """One progress bar: a step count and a line saying what is being done. Without a
    terminal it logs a line every ``PROGRESS_LOG_SECONDS`` while it runs (from a timer: a
    long step without progress of its own still shows it is alive), and, if it did, one
    when it ends."""

    def __init__(self, progress: Progress, task: TaskID, description: str, total: int) -> None:
        self._progress = progress
        self._task = task
        self._description = description
        self._total = total
        self._done = 0
        self._detail = ""
        self._started = time.monotonic()

    def detail(self, text: str) -> None:
        self._detail = text
        self._progress.update(self._task, detail=text)

    def advance(self, steps: int = 1) -> None:
        self._done += steps
        self._progress.update(self._task, advance=steps)

    def log_line(self, state: str = "") -> None:
        elapsed = timedelta(seconds=round(time.monotonic() - self._started))
        detail = f" {self._detail}" if self._detail and not state else ""
        progress_log.info(
            "%s: %d/%d%s, %s elapsed%s",
            self._description,
            self._done,
            self._total,
            detail,
            elapsed,
            f" ({state})" if state else "",
        )


# Without a terminal, a progress line this often (seconds).
PROGRESS_LOG_SECONDS = 30.0
progress_log = logging.getLogger("pipeline.progress")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Bar]:
    """A progress bar on stderr; log lines instead when stderr is not a terminal."""
    terminal = err.is_terminal
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
        disable=not terminal,
    )
    with progress:
        bar = Bar(
            progress, progress.add_task(description, total=total, detail=""), description, total
        )
        if terminal:
            yield bar
            return
        stop = threading.Event()
        ticks = 0

        def tick() -> None:
            nonlocal ticks
            while not stop.wait(PROGRESS_LOG_SECONDS):
                ticks += 1
                bar.log_line()

        ticker = threading.Thread(target=tick, name="progress-log", daemon=True)
        ticker.start()

        def stop_ticking() -> None:
            # Joined before the last line, so that no tick lands after it.
            stop.set()
            ticker.join()

        try:
            yield bar
        except BaseException:
            stop_ticking()
            if ticks:
                bar.log_line("failed")
            raise
        else:
            stop_ticking()
            if ticks:
                bar.log_line("done")
        finally:
            stop_ticking()


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
    if not status.days and not status.empty_dates:
        out.print("No ingested dates in that range.")
        return
    ingested = sorted(
        [*(str(day["export_date"]) for day in status.days), *map(str, status.empty_dates)]
    )
    first, last = ingested[0], ingested[-1]
    table = Table(title=f"Lake: {len(ingested)} dates, {first} to {last}", title_justify="left")
    for column in ("files", "rows in", "accepted", "quarantined", "duplicates", "empty days"):
        table.add_column(column, justify="right")
    empty_days = len(status.empty_dates) + sum(
        1 for day in status.days if int(str(day["rows_in"])) == 0
    )
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


def backtest_report(report: BacktestReport) -> None:
    """The backtest's figures: the risk against its baselines, stages, danger entries."""
    figures = report.figures
    out.print(
        f"Backtest as of {report.as_of_date}: what the pipeline said on {report.cutoff} "
        f"(risk model of {report.model_version}, {report.risk_source}), judged by purchases "
        f"in the {report.horizon_days} days after; {figures['customers']:,} customers, "
        f"{_percent(figures['no_purchase_share'])} did not buy"
    )
    table = Table(title="Ranking customers who did not buy (AUC)", title_justify="left")
    table.add_column("score", no_wrap=True)
    table.add_column("AUC", justify="right")
    for label, key in (
        ("risk (this pipeline)", "risk_auc"),
        ("recency alone", "recency_auc"),
        ("frequency alone", "frequency_auc"),
        ("BG/NBD expected purchases", "bgnbd_expected_purchases_auc"),
    ):
        value = figures.get(key)
        table.add_row(label, "n/a" if value is None else f"{value:.3f}")
    out.print(table)
    stages = Table(title="Bought again within the horizon, by stage", title_justify="left")
    for column in ("stage", "customers", "bought again", "mean risk"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for row in report.stages:
        stages.add_row(
            str(row["stage"]),
            f"{row['customers']:,}",
            _percent(row["repurchase_rate"]),
            f"{row['mean_risk']:.2f}",
        )
    out.print(stages)
    entries = Table(title="Alarms in the 90 days up to the cut-off", title_justify="left")
    for column in ("method", "alarms", "did not buy (precision)", "lost caught (recall)",
                   "days ahead of 90-day rule"):  # fmt: skip
        entries.add_column(column, justify="left" if column == "method" else "right")
    for row in report.entries:
        entries.add_row(
            str(row["method"]),
            f"{row['entries']:,}",
            _percent(row["precision"]),
            "n/a" if row["recall"] is None else _percent(row["recall"]),
            f"{row['median_days_ahead_of_baseline']:+.0f}",
        )
    out.print(entries)


def lifecycle_report(report: LifecycleReport) -> None:
    """Customers per stage, the day's moves and alerts."""
    first = " (first run: no day before, nothing alerted)" if report.first_run else ""
    if report.risk_source == "model":
        out.print(
            f"Risk of no purchase within {report.horizon_days} days: the model of "
            f"{report.risk_model_version}, learned by backtesting this shop's history"
        )
    else:
        out.print(f"Risk: the rhythm percentile stands in ({report.risk_reason or 'no model yet'})")
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


def pipeline_status(status: PipelineStatus, config_source: str) -> None:
    """Where every date stands, runs of alike consecutive dates in one line; the lake's
    ingest figures; the alerts still queued or given up; leftovers of interrupted runs."""
    out.print(f"Lake: {status.lake} (configuration: {config_source})")
    out.print(f"Published: {status.published}; state: {status.state}")
    current = (
        f"publish #{status.publish_number}, BI tools see {status.current_published} as current"
        if status.current_published
        else "nothing published yet"
    )
    out.print(f"Published tables: {current}")
    if not status.dates:
        out.print("No date has been run in that range.")
    else:
        table = Table(title="Dates, step by step", title_justify="left")
        for column in ("dates", "days", "ingest", "files", "rows in", "scored", "staged"):
            table.add_column(column, justify="left" if column in ("dates", "ingest") else "right")
        table.add_column("published", justify="right")
        for run in _runs(status.dates):
            first, last = run[0], run[-1]
            dates = str(first.day) if first is last else f"{first.day} to {last.day}"
            ingest = first.ingest
            rejected = sum(day.rejected_files for day in run)
            if rejected:
                ingest += f", {rejected:,} files rejected"
            table.add_row(
                dates,
                f"{len(run):,}",
                ingest,
                f"{sum(day.files for day in run):,}",
                f"{sum(day.rows_in for day in run):,}",
                _yes(first.scored),
                _yes(first.staged),
                _yes(first.published),
            )
        out.print(table)
    _alerts_status(status)
    lake_status(status.ingest)
    leftovers_status(status.leftovers)


def leftovers_status(leftovers: Leftovers) -> None:
    if not leftovers:
        running = " (a publish is running: its files are not listed)"
        out.print(
            f"Leftovers of interrupted runs: none{running if leftovers.publish_running else ''}"
        )
        return
    out.print(
        f"[bold red]Leftovers of interrupted runs[/] ({len(leftovers.paths)}; the next run "
        "of the step clears them, or delete them while nothing runs):"
    )
    for path in leftovers.paths:
        out.print(f"  {path}")
    for target in leftovers.targets_behind:
        out.print(f"  behind the manifest: {target} (the next publish brings it forward)")


def _alerts_status(status: PipelineStatus) -> None:
    totals = {"queued": 0, "delivered": 0, "given_up": 0}
    for day in status.dates:
        for what, count in day.alerts.items():
            totals[what] = totals.get(what, 0) + count
    if not any(totals.values()):
        out.print("Alert deliveries (webhook, email): none recorded")
        return
    out.print(
        f"Alert deliveries (webhook, email): {totals['delivered']:,} delivered, "
        f"{totals['queued']:,} queued, {totals['given_up']:,} given up"
    )
    waiting = [
        day for day in status.dates if day.alerts.get("queued") or day.alerts.get("given_up")
    ]
    if waiting:
        table = Table(title="Alerts not delivered", title_justify="left")
        table.add_column("date")
        table.add_column("queued", justify="right")
        table.add_column("given up", justify="right")
        for day in waiting:
            table.add_row(
                str(day.day),
                f"{day.alerts.get('queued', 0):,}",
                f"{day.alerts.get('given_up', 0):,}",
            )
        out.print(table)


def _runs(dates: list[DateStatus]) -> list[list[DateStatus]]:
    """Consecutive dates with the same steps done, together."""
    runs: list[list[DateStatus]] = []
    for day in dates:
        if runs and runs[-1][-1].steps() == day.steps() and (day.day - runs[-1][-1].day).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def _yes(done: bool) -> str:
    return "yes" if done else "-"
